// protocol.js: the confab wire protocol (docs/PROTOCOL.md, versions 1 and 2)
// for the browser, written from that page alone. Pure functions, no DOM, so
// the tests can check it against the page's worked hex examples.
//
// Frames are plain objects: { type: "SEND2", ref: 2, client_id: 7n,
// target: { kind: 0, name: "" }, body: "hi" }. u64 fields decode to Numbers
// (ids and timestamps stay far below 2^53), except PING/PONG tokens and
// SEND2 client ids, which are BigInts (echoed or compared exactly). The
// encoder takes either.

export const VERSION = 2;

// One schema table mirrors the spec's frame tables: every frame of either
// direction encodes and decodes from it. A "list" field is
// [name, "list", element], counted by a u16; element is a kind or fields.
const SCHEMA = {
  0x01: ["PING", [["token", "u64big"]]],
  0x02: ["PONG", [["token", "u64big"]]],
  0x10: ["HELLO", [["version", "u16"], ["client", "short"]]],
  0x11: ["REGISTER", [["ref", "u32"], ["user", "name"], ["password", "short"]]],
  0x12: ["LOGIN", [["ref", "u32"], ["user", "name"], ["password", "short"],
    ["resume_after", "u64"], ["roster", "flag"]]],
  0x13: ["LOGOUT", [["ref", "u32"]]],
  0x14: ["ROSTER_ACK", [["version", "u64"]]],
  0x15: ["GROUP_CREATE", [["ref", "u32"], ["group", "name"]]],
  0x16: ["GROUP_JOIN", [["ref", "u32"], ["group", "name"]]],
  0x17: ["GROUP_LEAVE", [["ref", "u32"], ["group", "name"]]],
  0x18: ["GROUP_LIST_REQUEST", [["ref", "u32"]]],
  0x19: ["SEND", [["ref", "u32"], ["target", "target"], ["body", "text"]]],
  0x1a: ["HISTORY_REQUEST", [["ref", "u32"], ["target", "target"], ["before", "u64"],
    ["limit", "u16"]]],
  0x1b: ["LOGIN2", [["ref", "u32"], ["user", "name"], ["credential", "u8"],
    ["secret", "blob"], ["device", "opt_name"], ["issue_token", "flag"],
    ["resume", "u8"], ["resume_after", "u64"], ["roster", "flag"]]],
  0x1c: ["SEND2", [["ref", "u32"], ["client_id", "u64big"], ["target", "target"],
    ["body", "text"]]],
  0x1d: ["DELIVERED", [["id", "u64"]]],
  0x1e: ["MARK_READ", [["target", "target"], ["id", "u64"]]],
  0x1f: ["DEVICE_LIST_REQUEST", [["ref", "u32"]]],
  0x20: ["DEVICE_REVOKE", [["ref", "u32"], ["device", "name"]]],
  0x21: ["MODERATE", [["ref", "u32"], ["action", "u8"], ["user", "name"], ["seconds", "u32"],
    ["reason", "text"]]],
  0x22: ["DELETE", [["ref", "u32"], ["id", "u64"], ["reason", "text"]]],
  0x23: ["ANNOUNCE", [["ref", "u32"], ["text", "text"]]],
  0x24: ["GROUP_MODERATE", [["ref", "u32"], ["group", "name"], ["action", "u8"], ["user", "name"],
    ["seconds", "u32"], ["reason", "text"]]],
  0x25: ["BAN_ADDRESS", [["ref", "u32"], ["action", "u8"], ["block", "text"], ["seconds", "u32"],
    ["reason", "text"]]],
  0x40: ["SERVER_HELLO", [["version", "u16"], ["server", "short"],
    ["registration_open", "flag"], ["max_frame", "u32"], ["max_frame_pre_auth", "u32"],
    ["max_body", "u16"], ["msg_rate", "u16"], ["msg_burst", "u16"],
    ["groups_per_user", "u16"], ["history_page_max", "u16"], ["idle_timeout_ms", "u32"]]],
  0x41: ["OK", [["ref", "u32"]]],
  0x42: ["LOGIN_OK", [["ref", "u32"], ["user", "name"]]],
  0x43: ["ROSTER_SNAPSHOT", [["version", "u64"], ["last", "flag"], ["users", "list", "name"]]],
  0x44: ["ROSTER_DELTA", [["version", "u64"], ["presence", "u8"], ["user", "name"]]],
  0x45: ["ACK", [["ref", "u32"], ["id", "u64"], ["ts", "u64"]]],
  0x46: ["MESSAGE", [["id", "u64"], ["ts", "u64"], ["sender", "name"], ["target", "target"],
    ["body", "text"]]],
  0x47: ["GROUP_EVENT", [["change", "u8"], ["group", "name"], ["user", "name"]]],
  0x48: ["GROUP_LIST", [["ref", "u32"],
    ["groups", "list", [["group", "name"], ["members", "u32"], ["is_member", "flag"]]]]],
  0x49: ["HISTORY_PAGE", [["ref", "u32"], ["target", "target"], ["more", "flag"],
    ["messages", "list", [["id", "u64"], ["ts", "u64"], ["sender", "name"], ["body", "text"]]]]],
  0x4a: ["CAUGHT_UP", [["last_id", "u64"]]],
  0x4b: ["MISSED", [["target", "target"], ["first", "u64"], ["last", "u64"], ["count", "u32"]]],
  0x4c: ["ERROR", [["code", "u16"], ["ref", "u32"], ["retry_after_ms", "u32"], ["text", "text"]]],
  0x4d: ["SHUTDOWN", [["retry_after_ms", "u32"], ["reason", "text"]]],
  0x4e: ["LOGIN_OK2", [["ref", "u32"], ["user", "name"], ["device", "opt_name"],
    ["token", "blob"], ["bookmark", "u64"]]],
  0x4f: ["READ_MARKER", [["target", "target"], ["id", "u64"]]],
  0x50: ["DEVICE_LIST", [["ref", "u32"], ["devices", "list",
    [["device", "name"], ["created_ms", "u64"], ["last_seen_ms", "u64"], ["current", "flag"]]]]],
  0x51: ["DELETED", [["id", "u64"], ["by", "name"]]],
  0x52: ["NOTICE", [["text", "text"]]],
};

export const TYPE = {};
for (const [code, [name]] of Object.entries(SCHEMA)) TYPE[name] = Number(code);

export class ProtocolError extends Error {}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;
export function validName(s) { return typeof s === "string" && NAME_RE.test(s); }

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

// ---- encoding ----

class Writer {
  constructor() { this.parts = []; this.len = 0; }
  bytes(b) { this.parts.push(b); this.len += b.length; }
  uint(v, n) {
    const b = new Uint8Array(n);
    let x = BigInt(v);
    if (x < 0n || x >= (1n << BigInt(8 * n))) throw new ProtocolError(`value ${v} out of range`);
    for (let i = n - 1; i >= 0; i--) { b[i] = Number(x & 0xffn); x >>= 8n; }
    this.bytes(b);
  }
  str(s, lenBytes, max) {
    const b = typeof s === "string" ? enc.encode(s) : s;
    if (b.length > max) throw new ProtocolError(`field too long (${b.length} bytes)`);
    this.uint(b.length, lenBytes);
    this.bytes(b);
  }
  name(s) {
    if (!validName(s)) throw new ProtocolError(`not a valid name: ${JSON.stringify(s)}`);
    this.str(s, 1, 32);
  }
  field(kind, v) {
    switch (kind) {
      case "u8": return this.uint(v, 1);
      case "u16": return this.uint(v, 2);
      case "u32": return this.uint(v, 4);
      case "u64": case "u64big": return this.uint(v, 8);
      case "flag": return this.uint(v ? 1 : 0, 1);
      case "short": case "blob": return this.str(v, 1, 255);
      case "text": return this.str(v, 2, 65535);
      case "name": return this.name(v);
      case "opt_name": return v ? this.name(v) : this.uint(0, 1);
      case "target":
        this.uint(v.kind, 1);
        if (v.kind === 0) return this.uint(0, 1);
        if (v.kind === 1 || v.kind === 2) return this.name(v.name);
        throw new ProtocolError(`unknown target kind ${v.kind}`);
      default:
        if (Array.isArray(kind)) { for (const [n, k] of kind) this.field(k, v[n]); return; }
        throw new ProtocolError(`unknown field kind ${kind}`);
    }
  }
}

// One whole frame, length prefix included, as a Uint8Array.
export function encode(frame) {
  const code = TYPE[frame.type];
  if (code === undefined) throw new ProtocolError(`unknown frame type ${frame.type}`);
  const w = new Writer();
  w.uint(code, 1);
  for (const [n, k, el] of SCHEMA[code][1]) {
    if (k === "list") {
      const items = frame[n] || [];
      w.uint(items.length, 2);
      for (const it of items) w.field(el, it);
    } else {
      w.field(k, frame[n]);
    }
  }
  const out = new Uint8Array(4 + w.len);
  new DataView(out.buffer).setUint32(0, w.len);
  let off = 4;
  for (const p of w.parts) { out.set(p, off); off += p.length; }
  return out;
}

// ---- decoding ----

class Reader {
  constructor(b) { this.b = b; this.off = 0; this.dv = new DataView(b.buffer, b.byteOffset, b.length); }
  need(n) { if (this.off + n > this.b.length) throw new ProtocolError("frame too short"); }
  uint(n) {
    this.need(n);
    let v;
    if (n === 1) v = this.dv.getUint8(this.off);
    else if (n === 2) v = this.dv.getUint16(this.off);
    else if (n === 4) v = this.dv.getUint32(this.off);
    else v = this.dv.getBigUint64(this.off);
    this.off += n;
    return v;
  }
  raw(n) { this.need(n); const s = this.b.subarray(this.off, this.off + n); this.off += n; return s; }
  utf8(n) {
    try { return dec.decode(this.raw(n)); } catch (e) {
      if (e instanceof ProtocolError) throw e;
      throw new ProtocolError("bad UTF-8");
    }
  }
  name() {
    const s = this.utf8(this.uint(1));
    if (!validName(s)) throw new ProtocolError(`bad name ${JSON.stringify(s)}`);
    return s;
  }
  field(kind) {
    switch (kind) {
      case "u8": return this.uint(1);
      case "u16": return this.uint(2);
      case "u32": return this.uint(4);
      case "u64": {
        const v = this.uint(8);
        if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ProtocolError("u64 beyond 2^53");
        return Number(v);
      }
      case "u64big": return this.uint(8);
      case "flag": {
        const v = this.uint(1);
        if (v > 1) throw new ProtocolError(`bad flag ${v}`);
        return v === 1;
      }
      case "short": return this.utf8(this.uint(1));
      case "blob": return this.raw(this.uint(1)).slice();
      case "text": return this.utf8(this.uint(2));
      case "name": return this.name();
      case "opt_name": {
        this.need(1);
        if (this.b[this.off] === 0) { this.off++; return ""; }
        return this.name();
      }
      case "target": {
        const kind = this.uint(1);
        if (kind === 0) {
          if (this.uint(1) !== 0) throw new ProtocolError("room target with a name");
          return { kind: 0, name: "" };
        }
        if (kind === 1 || kind === 2) return { kind, name: this.name() };
        throw new ProtocolError(`unknown target kind ${kind}`);
      }
      default: {
        const o = {};
        for (const [n, k] of kind) o[n] = this.field(k);
        return o;
      }
    }
  }
}

// Decodes one frame body (type byte first, no length prefix). An unknown
// type gives { type: "UNKNOWN", code }.
export function decodeBody(body) {
  if (body.length < 1) throw new ProtocolError("empty frame");
  const code = body[0];
  const entry = SCHEMA[code];
  if (!entry) return { type: "UNKNOWN", code };
  const r = new Reader(body);
  r.off = 1;
  const frame = { type: entry[0] };
  for (const [n, k, el] of entry[1]) {
    if (k === "list") {
      const count = r.uint(2);
      const items = [];
      for (let i = 0; i < count; i++) items.push(r.field(el));
      frame[n] = items;
    } else {
      frame[n] = r.field(k);
    }
  }
  if (r.off !== body.length) throw new ProtocolError(`${entry[0]}: ${body.length - r.off} bytes left over`);
  return frame;
}

// A streaming frame reader: push() the bytes of each WebSocket message (a
// frame may span messages, a message may hold several frames) and get the
// whole frames back. The length is checked against the limit as soon as its
// 4 bytes are there, before any of the body is kept, so at most one partial
// frame (at most maxFrame + 4 bytes) is ever buffered.
export class FrameReader {
  constructor(maxFrame = 65536) { this.maxFrame = maxFrame; this.buf = new Uint8Array(0); }
  push(chunk) {
    let data = chunk;
    if (this.buf.length) {
      data = new Uint8Array(this.buf.length + chunk.length);
      data.set(this.buf); data.set(chunk, this.buf.length);
    }
    const frames = [];
    let off = 0;
    while (data.length - off >= 4) {
      const len = new DataView(data.buffer, data.byteOffset + off, 4).getUint32(0);
      if (len < 1) throw new ProtocolError("frame of length 0");
      if (len > this.maxFrame) {
        throw new ProtocolError(`the server sent a frame of ${len} bytes, over the limit of ${this.maxFrame}`);
      }
      if (data.length - off - 4 < len) break;
      frames.push(decodeBody(data.subarray(off + 4, off + 4 + len)));
      off += 4 + len;
    }
    this.buf = data.slice(off);
    return frames;
  }
  get buffered() { return this.buf.length; }
}

// ---- targets and conversation keys ----

export const ROOM = Object.freeze({ kind: 0, name: "" });
export const group = (name) => ({ kind: 1, name });
export const user = (name) => ({ kind: 2, name });

// "all", "#dev", "@bob" (names compared ignoring ASCII case, so keys are lower case).
export function targetKey(t) {
  if (t.kind === 0) return "all";
  return (t.kind === 1 ? "#" : "@") + t.name.toLowerCase();
}
export function parseTarget(s) {
  if (s === "all") return ROOM;
  if (s.length > 1 && (s[0] === "#" || s[0] === "@") && validName(s.slice(1))) {
    return { kind: s[0] === "#" ? 1 : 2, name: s.slice(1) };
  }
  return null;
}

export const toHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
export function fromHex(s) {
  const clean = s.replace(/\s+/g, "");
  if (!/^([0-9a-fA-F]{2})*$/.test(clean)) throw new ProtocolError("not hex");
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.substr(2 * i, 2), 16);
  return out;
}
