// client.js: one confab session over a WebSocket, without any DOM: logs in
// (password once, then the device token), keeps the roster, resumes after
// a reconnect from the newest id it has, and sends exactly once (SEND2,
// resending what has no ACK after every reconnect). The page (app.js)
// listens to its events: client.on = (event) => ...

import { FrameReader, ProtocolError, encode, toHex, fromHex } from "./protocol.js";
import { isFatal, plainWords } from "./errors.js";

const STORE = "confab.creds";
const DEVICE = "confab.device";
const OUTBOX = "confab.outbox.";
const BACKOFF_MIN = 500;
const BACKOFF_MAX = 15000;
const KEEPALIVE = 25000; // ms of silence before the page PINGs the server
const DEAD_AFTER = 10000; // ms more without a byte: the connection is dead

// A SEND2 client id: 63 random bits. (PROTOCOL.md allows 64, but the
// server stores client ids as SQLite integers saturated to i64::MAX, so
// every id of 2^63 or more would be one and the same id: the second such
// send would be taken for a repeat of the first, ACKed and not stored.)
function randomU64() {
  const b = new Uint32Array(2);
  crypto.getRandomValues(b);
  const v = (BigInt(b[0] & 0x7fffffff) << 32n) | BigInt(b[1]);
  return v === 0n ? 1n : v;
}

function deviceName() {
  let d = localStorage.getItem(DEVICE);
  if (!d) {
    const b = new Uint8Array(4);
    crypto.getRandomValues(b);
    d = "web-" + toHex(b);
    localStorage.setItem(DEVICE, d);
  }
  return d;
}

export function wsUrl(loc = location) {
  return (loc.protocol === "https:" ? "wss://" : "ws://") + loc.host + "/ws";
}

export class Client {
  constructor(url) {
    this.url = url;
    this.on = () => {};
    this.ws = null;
    this.phase = "idle"; // idle | connecting | auth | sync | ready | waiting | stopped
    this.creds = JSON.parse(localStorage.getItem(STORE) || "null"); // { user, device, token }
    this.me = this.creds ? this.creds.user : null;
    this.lastId = 0; // the newest MESSAGE (or CAUGHT_UP) id received: the bookmark
    this.nextRef = 1;
    this.pending = new Map(); // ref -> { kind, ... }
    this.outbox = new Map(); // local key -> { cid, target, body, ref }, kept in localStorage
    this.loadOutbox();
    this.attempt = 0;
    this.timer = null;
    this.deliveredTimer = null;
    this.delivered = 0;
    this.limits = { max_frame: 65536, max_body: 4096, history_page_max: 200 };
    this.loginReq = null; // { user, password, register, resolve, reject }
    window.addEventListener("online", () => { if (this.phase === "waiting") this.connectNow(); });
  }

  get loggedIn() { return !!this.creds; }

  // ---- public requests ----

  // Registers (optionally) and logs in with the password, obtaining a device
  // token: only the token is kept. Resolves with the user name.
  loginWithPassword(user, password, register) {
    this.stop();
    return new Promise((resolve, reject) => {
      this.loginReq = { user, password, register, resolve, reject };
      this.open();
    });
  }

  // Logs in with the stored token and keeps the session up.
  start() { if (this.creds) { this.phase = "idle"; this.open(); } }

  // Forgets the token; revokes the device when connected (its sessions,
  // this one included, are then closed by the server).
  logout() {
    const creds = this.creds;
    this.forget();
    if (creds && this.phase === "ready") {
      this.phase = "stopped";
      this.sendFrame({ type: "DEVICE_REVOKE", ref: this.ref({ kind: "revoke" }), device: creds.device });
      setTimeout(() => this.closeSocket(), 3000);
    } else {
      this.stop();
    }
  }

  // Unacknowledged sends survive a reload: resent with the same client id,
  // they are stored once (until the server's dedup window, 24 h).
  saveOutbox() {
    if (!this.creds) return;
    const list = [...this.outbox].map(([key, e]) => [key, String(e.cid), e.target, e.body, e.at]);
    localStorage.setItem(OUTBOX + this.creds.user.toLowerCase(), JSON.stringify(list));
  }

  loadOutbox() {
    if (!this.creds) return;
    const list = JSON.parse(localStorage.getItem(OUTBOX + this.creds.user.toLowerCase()) || "[]");
    const day = Date.now() - 23 * 3600 * 1000;
    for (const [key, cid, target, body, at] of list) {
      if (at > day) this.outbox.set(key, { cid: BigInt(cid), target, body, at, ref: 0 });
    }
  }

  send(target, body) {
    const key = "local-" + toHex(crypto.getRandomValues(new Uint8Array(8)));
    this.outbox.set(key, { cid: randomU64(), target, body, at: Date.now(), ref: 0 });
    this.saveOutbox();
    if (this.phase === "ready") this.transmit(key);
    return key;
  }

  request(kind, frame, extra = {}) {
    if (this.phase !== "ready") return 0;
    const ref = this.ref({ kind, ...extra });
    this.sendFrame({ ...frame, ref });
    return ref;
  }
  groupCreate(g) { return this.request("group", { type: "GROUP_CREATE", group: g }, { group: g, op: "create" }); }
  groupJoin(g) { return this.request("group", { type: "GROUP_JOIN", group: g }, { group: g, op: "join" }); }
  groupLeave(g) { return this.request("group", { type: "GROUP_LEAVE", group: g }, { group: g, op: "leave" }); }
  groupList() { return this.request("groups", { type: "GROUP_LIST_REQUEST" }); }
  history(target, before, limit, why = "older") {
    return this.request("history", { type: "HISTORY_REQUEST", target, before, limit }, { target, why });
  }
  markRead(target, id) { if (this.phase === "ready") this.sendFrame({ type: "MARK_READ", target, id }); }

  // ---- connection lifecycle ----

  open() {
    this.closeSocket();
    clearTimeout(this.timer);
    this.phase = "connecting";
    this.on({ type: "status", phase: "connecting" });
    let ws;
    try {
      ws = new WebSocket(this.url, ["confab.v2"]);
    } catch (e) {
      this.lost(`cannot connect: ${e.message}`);
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.reader = new FrameReader(this.limits.max_frame);
    ws.onopen = () => {
      if (ws !== this.ws) return;
      this.phase = "auth";
      this.keepalive();
      this.sendFrame({ type: "HELLO", version: 2, client: "confab-web" });
    };
    ws.onmessage = (ev) => {
      if (ws !== this.ws) return;
      this.heard = Date.now();
      let frames;
      try {
        frames = this.reader.push(new Uint8Array(ev.data));
      } catch (e) {
        const why = e instanceof ProtocolError ? e.message : String(e);
        this.on({ type: "notice", level: "error", text: `The server sent something this page cannot read (${why}); reconnecting.` });
        this.closeSocket();
        this.lost(why);
        return;
      }
      for (const f of frames) {
        if (ws !== this.ws) return;
        this.handle(f);
      }
    };
    ws.onclose = () => { if (ws === this.ws) { this.ws = null; this.lost("connection closed"); } };
    ws.onerror = () => {};
  }

  // A connection that has gone quiet is checked with a PING; one that does
  // not answer (a dead network, a server gone without a word) is dropped.
  keepalive() {
    clearInterval(this.alive);
    this.heard = Date.now();
    this.alive = setInterval(() => {
      if (!this.ws || this.phase === "connecting") return;
      const quiet = Date.now() - this.heard;
      if (quiet > KEEPALIVE + DEAD_AFTER) { this.closeSocket(); this.lost("no answer from the server"); }
      else if (quiet > KEEPALIVE) this.sendFrame({ type: "PING", token: BigInt(Date.now()) });
    }, 5000);
  }

  closeSocket() {
    clearInterval(this.alive);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      try { ws.close(); } catch (_) { /* closed already */ }
    }
    this.pending.clear();
    for (const e of this.outbox.values()) e.ref = 0;
  }

  stop() {
    clearTimeout(this.timer);
    this.phase = "stopped";
    this.closeSocket();
  }

  forget() {
    if (this.creds) localStorage.removeItem(OUTBOX + this.creds.user.toLowerCase());
    localStorage.removeItem(STORE);
    this.creds = null;
  }

  connectNow() { clearTimeout(this.timer); this.open(); }

  // The connection is gone: a password login fails; a token session
  // reconnects with exponential backoff (or after the server's retry_after).
  lost(why, retryAfter = 0) {
    const wasPhase = this.phase;
    if (wasPhase === "stopped" || wasPhase === "waiting") return;
    this.ws = null;
    retryAfter = Math.max(retryAfter, this.shutdownRetry || 0); // SHUTDOWN's or a fatal ERROR's
    this.shutdownRetry = 0;
    if (this.loginReq) {
      const req = this.loginReq;
      this.loginReq = null;
      this.phase = "idle";
      req.reject(new Error(wasPhase === "connecting" ? "Cannot reach the server." : `The connection was lost (${why}).`));
      return;
    }
    if (!this.creds) { this.phase = "idle"; return; }
    const backoff = Math.min(BACKOFF_MAX, BACKOFF_MIN * 2 ** this.attempt);
    const delay = Math.max(retryAfter, backoff * (0.75 + Math.random() * 0.5));
    this.attempt = Math.min(this.attempt + 1, 10);
    this.phase = "waiting";
    this.on({ type: "status", phase: "waiting", delay, why });
    this.timer = setTimeout(() => this.open(), delay);
  }

  ref(info) {
    const r = this.nextRef;
    this.nextRef = this.nextRef >= 0xfffffff0 ? 1 : this.nextRef + 1;
    this.pending.set(r, info);
    return r;
  }

  sendFrame(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(encode(frame));
  }

  transmit(key) {
    const e = this.outbox.get(key);
    if (!e || this.phase !== "ready") return;
    e.ref = this.ref({ kind: "send", key });
    this.sendFrame({ type: "SEND2", ref: e.ref, client_id: e.cid, target: e.target, body: e.body });
  }

  scheduleDelivered() {
    if (this.deliveredTimer) return;
    this.deliveredTimer = setTimeout(() => {
      this.deliveredTimer = null;
      if (this.phase === "ready" && this.lastId > this.delivered) {
        this.delivered = this.lastId;
        this.sendFrame({ type: "DELIVERED", id: this.lastId });
      }
    }, 1000);
  }

  // ---- frames from the server ----

  handle(f) {
    switch (f.type) {
      case "PING": this.sendFrame({ type: "PONG", token: f.token }); break;
      case "PONG": break;
      case "SERVER_HELLO": this.onHello(f); break;
      case "OK": this.onOk(f); break;
      case "LOGIN_OK2": this.onLoginOk(f); break;
      case "LOGIN_OK": this.onLoginOk({ ...f, device: "", token: new Uint8Array(0), bookmark: 0 }); break;
      case "READ_MARKER": this.on({ type: "read_marker", target: f.target, id: f.id }); break;
      case "ROSTER_SNAPSHOT":
        this.rosterChunk = (this.rosterChunk || []).concat(f.users);
        if (f.last) {
          const users = this.rosterChunk;
          this.rosterChunk = null;
          this.sendFrame({ type: "ROSTER_ACK", version: f.version });
          this.on({ type: "roster", users });
          if (this.phase === "sync") this.onReady();
        }
        break;
      case "ROSTER_DELTA":
        this.sendFrame({ type: "ROSTER_ACK", version: f.version });
        this.on({ type: "presence", user: f.user, online: f.presence === 1 });
        break;
      case "MESSAGE":
        if (f.id > this.lastId) this.lastId = f.id;
        this.on({ type: "message", msg: f });
        this.scheduleDelivered();
        break;
      case "CAUGHT_UP":
        if (f.last_id > this.lastId) this.lastId = f.last_id;
        this.delivered = this.lastId;
        this.sendFrame({ type: "DELIVERED", id: this.lastId });
        this.on({ type: "caught_up", last_id: f.last_id });
        break;
      case "MISSED": this.on({ ...f, type: "missed" }); break;
      case "ACK": this.onAck(f); break;
      case "GROUP_EVENT": this.on({ ...f, type: "group_event" }); break;
      case "GROUP_LIST": this.pending.delete(f.ref); this.on({ type: "groups", groups: f.groups }); break;
      case "HISTORY_PAGE": {
        const req = this.pending.get(f.ref) || { why: "older" };
        this.pending.delete(f.ref);
        this.on({ type: "history", target: f.target, more: f.more, messages: f.messages, why: req.why });
        break;
      }
      case "DELETED": this.on({ type: "deleted", id: f.id, by: f.by }); break;
      case "NOTICE": this.on({ type: "notice", level: "warn", text: `Announcement: ${f.text}` }); break;
      case "ERROR": this.onError(f); break;
      case "SHUTDOWN":
        this.shutdownRetry = f.retry_after_ms;
        this.on({ type: "notice", level: "warn", text: `The server is shutting down${f.reason ? ` (${f.reason})` : ""}; reconnecting in ${Math.ceil(f.retry_after_ms / 1000)} s.` });
        this.closeSocket(); // it closes after this anyway; do not wait for it
        this.lost("server shutdown");
        break;
      default: break; // unknown frames are skipped
    }
  }

  onHello(f) {
    this.limits = f;
    this.reader.maxFrame = f.max_frame;
    const req = this.loginReq;
    if (req && req.register) {
      this.sendFrame({ type: "REGISTER", ref: this.ref({ kind: "register" }), user: req.user, password: req.password });
    } else {
      this.sendLogin();
    }
  }

  sendLogin() {
    const req = this.loginReq;
    const ref = this.ref({ kind: "login" });
    const resume = this.lastId > 0 ? { resume: 0, resume_after: this.lastId } : { resume: 1, resume_after: 0 };
    if (req) {
      this.sendFrame({ type: "LOGIN2", ref, user: req.user, credential: 0, secret: req.password,
        device: deviceName(), issue_token: true, ...resume, roster: true });
    } else {
      this.sendFrame({ type: "LOGIN2", ref, user: this.creds.user, credential: 1,
        secret: fromHex(this.creds.token), device: "", issue_token: false, ...resume, roster: true });
    }
  }

  onOk(f) {
    const req = this.pending.get(f.ref);
    this.pending.delete(f.ref);
    if (!req) return;
    if (req.kind === "register") this.sendLogin();
    else if (req.kind === "group") this.on({ type: "group_ok", op: req.op, group: req.group });
    else if (req.kind === "revoke") this.closeSocket();
  }

  onLoginOk(f) {
    this.pending.delete(f.ref);
    if (this.loginReq) {
      if (f.token.length !== 32) {
        this.loginReq.reject(new Error("The server issued no device token."));
        this.loginReq = null;
        this.stop();
        return;
      }
      this.creds = { user: f.user, device: f.device, token: toHex(f.token) };
      localStorage.setItem(STORE, JSON.stringify(this.creds));
      const req = this.loginReq;
      this.loginReq = null;
      req.resolve(f.user);
    } else {
      this.creds.user = f.user;
    }
    this.me = f.user;
    this.attempt = 0;
    this.shutdownRetry = 0;
    this.phase = "sync";
    this.on({ type: "logged_in", user: f.user, device: f.device });
  }

  onReady() {
    this.phase = "ready";
    this.on({ type: "status", phase: "ready" });
    for (const key of this.outbox.keys()) this.transmit(key);
    this.on({ type: "ready" });
  }

  onAck(f) {
    const req = this.pending.get(f.ref);
    this.pending.delete(f.ref);
    if (!req || req.kind !== "send") return;
    const e = this.outbox.get(req.key);
    if (!e) return;
    this.outbox.delete(req.key);
    this.saveOutbox();
    this.on({ type: "ack", key: req.key, id: f.id, ts: f.ts, target: e.target, body: e.body });
  }

  onError(f) {
    const req = this.pending.get(f.ref);
    if (req) this.pending.delete(f.ref);
    const words = plainWords(f);
    if (req && (req.kind === "login" || req.kind === "register")) return this.onLoginError(f, words);
    if (req && req.kind === "send") {
      const e = this.outbox.get(req.key);
      if (!e) return;
      if ([4, 30, 31, 40].includes(f.code)) { // not stored: send again, same client id
        e.ref = 0;
        setTimeout(() => this.transmit(req.key), Math.max(f.retry_after_ms, 1000));
      } else {
        this.outbox.delete(req.key);
        this.saveOutbox();
        this.on({ type: "send_failed", key: req.key, text: words });
      }
      return;
    }
    if (f.code === 38) { // DEVICE_REVOKED: the token is gone
      const mine = this.phase === "stopped";
      this.forget();
      this.stop();
      if (!mine) this.on({ type: "signed_out", text: words });
      return;
    }
    if (req && req.kind === "history") this.on({ type: "history_failed", target: req.target });
    if (f.code === 30 && f.ref === 0) { // reading paused; nothing refused, nothing to resend
      this.on({ type: "notice", level: "warn", text: words });
      return;
    }
    if (isFatal(f.code)) this.shutdownRetry = Math.max(this.shutdownRetry || 0, f.retry_after_ms);
    this.on({ type: "notice", level: "error", text: words, code: f.code, req });
  }

  onLoginError(f, words) {
    if (this.loginReq) {
      const req = this.loginReq;
      this.loginReq = null;
      this.stop();
      req.reject(new Error(words));
      return;
    }
    if (f.code === 10) { // the stored token is refused
      this.forget();
      this.stop();
      this.on({ type: "signed_out", text: "This browser's sign-in is no longer valid. Log in again with your password." });
      return;
    }
    // LOCKED_OUT, RATE_LIMITED, BUSY, TOO_MANY_DEVICES...: try again later.
    this.on({ type: "notice", level: "error", text: words });
    const retry = f.retry_after_ms;
    this.closeSocket();
    this.lost(words, retry);
  }
}
