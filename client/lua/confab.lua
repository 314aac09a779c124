-- confab.lua: a confab client library for Lua 5.4, written from
-- docs/PROTOCOL.md alone.
--
-- Layers, each usable on its own:
--   * the codec: M.encode(frame) -> bytes and M.decode_body(type, body) ->
--     frame, driven by one schema table (SCHEMA) that mirrors the spec's
--     frame table, so every frame of either direction encodes and decodes;
--   * M.Decoder: a streaming decoder (feed bytes, take whole frames; the
--     length is checked against the limit before the body is buffered);
--   * M.connect(host, port): a connection over LuaSocket with request
--     methods and an event loop, next_event(timeout).
--
-- Frames are plain tables: { type = "SEND", ref = 2, target = {...}, body = "hi" }.
-- Targets are { kind = "room" }, { kind = "group", name = "dev" } or
-- { kind = "user", name = "bob" }; M.parse_target / M.format_target convert
-- them to and from the short forms "all", "#dev" and "@bob".
-- u64 fields are Lua integers; values of 2^63 and more keep their bits but
-- read as negative (only PING tokens could be that large, and they are
-- echoed unchanged).

local M = {}

-- The newest version this client speaks (HELLO's default); it speaks 1 too.
M.PROTOCOL_VERSION = 2
M.PROTOCOL_VERSIONS = { [1] = true, [2] = true }
M.DEFAULT_PORT = 7878

-- Field kinds. "list" fields are { name, "list", count_kind, element } where
-- element is either a field kind (a list of scalars) or a list of fields
-- (a list of records).
local SCHEMA = {
  [0x01] = { "PING", "both", { { "token", "u64" } } },
  [0x02] = { "PONG", "both", { { "token", "u64" } } },
  [0x10] = { "HELLO", "c2s", { { "version", "u16" }, { "client", "short" } } },
  [0x11] = { "REGISTER", "c2s", { { "ref", "u32" }, { "user", "name" }, { "password", "short" } } },
  [0x12] = { "LOGIN", "c2s", {
    { "ref", "u32" }, { "user", "name" }, { "password", "short" },
    { "resume_after", "u64" }, { "roster", "flag" } } },
  [0x13] = { "LOGOUT", "c2s", { { "ref", "u32" } } },
  [0x14] = { "ROSTER_ACK", "c2s", { { "version", "u64" } } },
  [0x15] = { "GROUP_CREATE", "c2s", { { "ref", "u32" }, { "group", "name" } } },
  [0x16] = { "GROUP_JOIN", "c2s", { { "ref", "u32" }, { "group", "name" } } },
  [0x17] = { "GROUP_LEAVE", "c2s", { { "ref", "u32" }, { "group", "name" } } },
  [0x18] = { "GROUP_LIST_REQUEST", "c2s", { { "ref", "u32" } } },
  [0x19] = { "SEND", "c2s", { { "ref", "u32" }, { "target", "target" }, { "body", "text" } } },
  [0x1A] = { "HISTORY_REQUEST", "c2s", {
    { "ref", "u32" }, { "target", "target" }, { "before", "u64" }, { "limit", "u16" } } },
  [0x40] = { "SERVER_HELLO", "s2c", {
    { "version", "u16" }, { "server", "short" }, { "registration_open", "flag" },
    { "max_frame", "u32" }, { "max_frame_pre_auth", "u32" }, { "max_body", "u16" },
    { "msg_rate", "u16" }, { "msg_burst", "u16" }, { "groups_per_user", "u16" },
    { "history_page_max", "u16" }, { "idle_timeout_ms", "u32" } } },
  [0x41] = { "OK", "s2c", { { "ref", "u32" } } },
  [0x42] = { "LOGIN_OK", "s2c", { { "ref", "u32" }, { "user", "name" } } },
  [0x43] = { "ROSTER_SNAPSHOT", "s2c", {
    { "version", "u64" }, { "last", "flag" }, { "users", "list", "u16", "name" } } },
  [0x44] = { "ROSTER_DELTA", "s2c", { { "version", "u64" }, { "presence", "u8" }, { "user", "name" } } },
  [0x45] = { "ACK", "s2c", { { "ref", "u32" }, { "id", "u64" }, { "ts", "u64" } } },
  [0x46] = { "MESSAGE", "s2c", {
    { "id", "u64" }, { "ts", "u64" }, { "sender", "name" }, { "target", "target" }, { "body", "text" } } },
  [0x47] = { "GROUP_EVENT", "s2c", { { "change", "u8" }, { "group", "name" }, { "user", "name" } } },
  [0x48] = { "GROUP_LIST", "s2c", {
    { "ref", "u32" },
    { "groups", "list", "u16", { { "group", "name" }, { "members", "u32" }, { "is_member", "flag" } } } } },
  [0x49] = { "HISTORY_PAGE", "s2c", {
    { "ref", "u32" }, { "target", "target" }, { "more", "flag" },
    { "messages", "list", "u16", { { "id", "u64" }, { "ts", "u64" }, { "sender", "name" }, { "body", "text" } } } } },
  [0x4A] = { "CAUGHT_UP", "s2c", { { "last_id", "u64" } } },
  [0x4B] = { "MISSED", "s2c", { { "target", "target" }, { "first", "u64" }, { "last", "u64" }, { "count", "u32" } } },
  [0x4C] = { "ERROR", "s2c", {
    { "code", "u16" }, { "ref", "u32" }, { "retry_after_ms", "u32" }, { "text", "text" } } },
  [0x4D] = { "SHUTDOWN", "s2c", { { "retry_after_ms", "u32" }, { "reason", "text" } } },
  -- Version 2 (docs/PROTOCOL.md, "Frames added in version 2").
  [0x1B] = { "LOGIN2", "c2s", {
    { "ref", "u32" }, { "user", "name" }, { "credential", "u8" }, { "secret", "blob" },
    { "device", "opt_name" }, { "issue_token", "flag" }, { "resume", "u8" },
    { "resume_after", "u64" }, { "roster", "flag" } } },
  [0x1C] = { "SEND2", "c2s", {
    { "ref", "u32" }, { "client_id", "u64" }, { "target", "target" }, { "body", "text" } } },
  [0x1D] = { "DELIVERED", "c2s", { { "id", "u64" } } },
  [0x1E] = { "MARK_READ", "c2s", { { "target", "target" }, { "id", "u64" } } },
  [0x1F] = { "DEVICE_LIST_REQUEST", "c2s", { { "ref", "u32" } } },
  [0x20] = { "DEVICE_REVOKE", "c2s", { { "ref", "u32" }, { "device", "name" } } },
  [0x21] = { "MODERATE", "c2s", {
    { "ref", "u32" }, { "action", "u8" }, { "user", "name" }, { "seconds", "u32" }, { "reason", "text" } } },
  [0x22] = { "DELETE", "c2s", { { "ref", "u32" }, { "id", "u64" }, { "reason", "text" } } },
  [0x23] = { "ANNOUNCE", "c2s", { { "ref", "u32" }, { "text", "text" } } },
  [0x24] = { "GROUP_MODERATE", "c2s", {
    { "ref", "u32" }, { "group", "name" }, { "action", "u8" }, { "user", "name" }, { "seconds", "u32" },
    { "reason", "text" } } },
  [0x25] = { "BAN_ADDRESS", "c2s", {
    { "ref", "u32" }, { "action", "u8" }, { "block", "text" }, { "seconds", "u32" }, { "reason", "text" } } },
  [0x4E] = { "LOGIN_OK2", "s2c", {
    { "ref", "u32" }, { "user", "name" }, { "device", "opt_name" }, { "token", "blob" },
    { "bookmark", "u64" } } },
  [0x4F] = { "READ_MARKER", "s2c", { { "target", "target" }, { "id", "u64" } } },
  [0x50] = { "DEVICE_LIST", "s2c", {
    { "ref", "u32" },
    { "devices", "list", "u16", {
      { "device", "name" }, { "created_ms", "u64" }, { "last_seen_ms", "u64" }, { "current", "flag" } } } } },
  [0x51] = { "DELETED", "s2c", { { "id", "u64" }, { "by", "name" } } },
  [0x52] = { "NOTICE", "s2c", { { "text", "text" } } },
}

-- LOGIN2's credential and resume fields.
M.CREDENTIAL = { password = 0, token = 1 }
M.RESUME = { after = 0, device = 1 }

-- M.TYPE.SEND == 0x19, M.TYPE_NAME[0x19] == "SEND", M.DIRECTION.SEND == "c2s".
M.TYPE, M.TYPE_NAME, M.DIRECTION = {}, {}, {}
for code, spec in pairs(SCHEMA) do
  M.TYPE[spec[1]] = code
  M.TYPE_NAME[code] = spec[1]
  M.DIRECTION[spec[1]] = spec[2]
end

M.ERROR_CODES = {
  [1] = { "MALFORMED_FRAME", true }, [2] = { "FRAME_TOO_LARGE", true },
  [3] = { "UNSUPPORTED_VERSION", true }, [4] = { "WRONG_STATE", false },
  [5] = { "UNKNOWN_FRAME_TYPE", false }, [10] = { "BAD_CREDENTIALS", false },
  [11] = { "NAME_TAKEN", false }, [12] = { "REGISTRATION_CLOSED", false },
  [13] = { "LOCKED_OUT", false }, [14] = { "NO_DEVICE", false },
  [15] = { "TOO_MANY_DEVICES", false }, [20] = { "NO_SUCH_USER", false },
  [21] = { "NO_SUCH_GROUP", false }, [22] = { "GROUP_EXISTS", false },
  [23] = { "NOT_A_MEMBER", false }, [24] = { "ALREADY_MEMBER", false },
  [25] = { "TOO_MANY_GROUPS", false }, [26] = { "GROUP_FULL", false },
  [27] = { "BAD_BODY", false }, [28] = { "SERVER_GROUPS_FULL", false },
  [29] = { "NO_SUCH_DEVICE", false }, [30] = { "RATE_LIMITED", false },
  [31] = { "BUSY", false }, [32] = { "TOO_MANY_CONNECTIONS", true },
  [33] = { "AUTH_TIMEOUT", true }, [34] = { "IDLE_TIMEOUT", true },
  [35] = { "FRAME_TIMEOUT", true }, [36] = { "SLOW_CONSUMER", true },
  [37] = { "FLOODING", true }, [38] = { "DEVICE_REVOKED", true }, [40] = { "STORAGE_ERROR", false },
  [41] = { "KICKED", true }, [42] = { "BANNED", true }, [43] = { "MUTED", false },
  [44] = { "NOT_OPERATOR", false }, [45] = { "NO_SUCH_MESSAGE", false },
  [46] = { "NOT_GROUP_MODERATOR", false }, [47] = { "BAD_ADDRESS", false },
}
M.ERROR = {}
for code, e in pairs(M.ERROR_CODES) do M.ERROR[e[1]] = code end

--- The name and fatality of an error code; unknown codes are non-fatal.
function M.error_name(code)
  local e = M.ERROR_CODES[code]
  if e then return e[1], e[2] end
  return "UNKNOWN_" .. tostring(code), false
end

---------------------------------------------------------------------------
-- Field rules

--- True when s is a valid user or group name (1-32 bytes of A-Z a-z 0-9 _ - .,
--- the first a letter or digit).
function M.valid_name(s)
  return type(s) == "string" and #s >= 1 and #s <= 32
    and s:find("^[A-Za-z0-9][A-Za-z0-9_.%-]*$") ~= nil
end

local function valid_utf8(s)
  return utf8.len(s) ~= nil
end

local TARGET_KIND = { room = 0, group = 1, user = 2 }
local TARGET_KIND_NAME = { [0] = "room", [1] = "group", [2] = "user" }

--- "all" (or "room"), "#group", "@user" -> a target table, or nil, error.
function M.parse_target(s)
  if s == "all" or s == "room" then return { kind = "room" } end
  local sigil, name = s:sub(1, 1), s:sub(2)
  local kind = (sigil == "#" and "group") or (sigil == "@" and "user") or nil
  if not kind then return nil, "target must be all, #group or @user: " .. s end
  if not M.valid_name(name) then return nil, "invalid name in target: " .. s end
  return { kind = kind, name = name }
end

--- A target table -> "all", "#group" or "@user".
function M.format_target(t)
  if t.kind == "room" then return "all" end
  return (t.kind == "group" and "#" or "@") .. t.name
end

--- Bytes -> lowercase hex ("\x11\xab" -> "11ab"): how tokens are shown and kept.
function M.to_hex(bytes)
  return (bytes:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

--- Hex (either case, no separators) -> bytes, or nil when it is not hex.
function M.from_hex(hex)
  if type(hex) ~= "string" or #hex % 2 ~= 0 or hex:find("[^0-9a-fA-F]") then return nil end
  return (hex:gsub("..", function(h) return string.char(tonumber(h, 16)) end))
end

--- A device token (64 hex digits, docs/PROTOCOL.md "Devices and tokens")
--- -> its 32 bytes, or nil.
function M.parse_token(hex)
  if type(hex) ~= "string" or #hex ~= 64 then return nil end
  return M.from_hex(hex)
end

---------------------------------------------------------------------------
-- Encoding

local function encode_field(out, kind, v, fname)
  if kind == "u8" then out[#out + 1] = string.pack(">I1", v)
  elseif kind == "u16" then out[#out + 1] = string.pack(">I2", v)
  elseif kind == "u32" then out[#out + 1] = string.pack(">I4", v)
  elseif kind == "u64" then out[#out + 1] = string.pack(">I8", v)
  elseif kind == "flag" then out[#out + 1] = string.pack(">I1", v and v ~= 0 and 1 or 0)
  elseif kind == "short" then
    assert(type(v) == "string" and #v <= 255, fname .. ": short text of at most 255 bytes expected")
    out[#out + 1] = string.pack(">s1", v)
  elseif kind == "text" then
    assert(type(v) == "string" and #v <= 65535, fname .. ": text of at most 65535 bytes expected")
    out[#out + 1] = string.pack(">s2", v)
  elseif kind == "name" then
    assert(M.valid_name(v), fname .. ": invalid name " .. tostring(v))
    out[#out + 1] = string.pack(">s1", v)
  elseif kind == "blob" then
    assert(type(v) == "string" and #v <= 255, fname .. ": blob of at most 255 bytes expected")
    out[#out + 1] = string.pack(">s1", v)
  elseif kind == "opt_name" then
    -- nil or "" is "none": a single zero byte.
    if v == nil or v == "" then out[#out + 1] = "\0"
    else encode_field(out, "name", v, fname) end
  elseif kind == "target" then
    assert(type(v) == "table" and TARGET_KIND[v.kind], fname .. ": target table expected")
    if v.kind == "room" then
      out[#out + 1] = "\0\0"
    else
      out[#out + 1] = string.pack(">I1", TARGET_KIND[v.kind])
      encode_field(out, "name", v.name, fname)
    end
  else
    error("unknown field kind " .. kind)
  end
end

local function encode_fields(out, fields, t)
  for _, f in ipairs(fields) do
    local fname, kind = f[1], f[2]
    local v = t[fname]
    if kind == "list" then
      v = v or {}
      encode_field(out, f[3], #v, fname)
      for _, item in ipairs(v) do
        if type(f[4]) == "table" then encode_fields(out, f[4], item)
        else encode_field(out, f[4], item, fname) end
      end
    else
      assert(v ~= nil or kind == "opt_name", "field " .. fname .. " missing")
      encode_field(out, kind, v, fname)
    end
  end
end

--- Encodes a frame table into its complete bytes, length prefix included.
--- Raises an error on a missing or invalid field (a caller bug).
function M.encode(frame)
  local code = M.TYPE[frame.type]
  assert(code, "unknown frame type " .. tostring(frame.type))
  local out = { string.pack(">I1", code) }
  encode_fields(out, SCHEMA[code][3], frame)
  local body = table.concat(out)
  return string.pack(">I4", #body) .. body
end

---------------------------------------------------------------------------
-- Decoding

-- A bounds-checked reader over one frame's fields. Errors are raised as
-- { malformed = "why" } tables and caught in decode_body.
local function fail(why) error({ malformed = why }, 0) end

local function take(r, n, what)
  if r.pos + n - 1 > #r.s then fail("frame ends inside " .. what) end
  local v = r.s:sub(r.pos, r.pos + n - 1)
  r.pos = r.pos + n
  return v
end

local INT_SIZE = { u8 = 1, u16 = 2, u32 = 4, u64 = 8 }

local function decode_field(r, kind, fname)
  local size = INT_SIZE[kind]
  if size then
    return (string.unpack(">I" .. size, take(r, size, fname)))
  elseif kind == "flag" then
    local v = string.byte(take(r, 1, fname))
    if v > 1 then fail(fname .. ": flag is " .. v) end
    return v
  elseif kind == "short" or kind == "text" then
    local n = string.unpack(kind == "short" and ">I1" or ">I2",
      take(r, kind == "short" and 1 or 2, fname))
    local s = take(r, n, fname)
    if not valid_utf8(s) then fail(fname .. ": invalid UTF-8") end
    return s
  elseif kind == "name" or kind == "opt_name" then
    local n = string.byte(take(r, 1, fname))
    if n == 0 and kind == "opt_name" then return "" end -- none
    local s = take(r, n, fname)
    if not M.valid_name(s) then fail(fname .. ": invalid name") end
    return s
  elseif kind == "blob" then
    return take(r, string.byte(take(r, 1, fname)), fname)
  elseif kind == "target" then
    local k = string.byte(take(r, 1, fname))
    local kname = TARGET_KIND_NAME[k]
    if not kname then fail(fname .. ": unknown target kind " .. k) end
    if kname == "room" then
      local n = string.byte(take(r, 1, fname))
      if n ~= 0 then fail(fname .. ": room target with a name") end
      return { kind = "room" }
    end
    return { kind = kname, name = decode_field(r, "name", fname) }
  end
  error("unknown field kind " .. kind)
end

local function decode_fields(r, fields)
  local t = {}
  for _, f in ipairs(fields) do
    local fname, kind = f[1], f[2]
    if kind == "list" then
      local n = decode_field(r, f[3], fname)
      local items = {}
      for i = 1, n do
        if type(f[4]) == "table" then items[i] = decode_fields(r, f[4])
        else items[i] = decode_field(r, f[4], fname) end
      end
      t[fname] = items
    else
      t[fname] = decode_field(r, kind, fname)
    end
  end
  return t
end

--- Decodes the fields of one frame of type `code` (body = the bytes after
--- the type byte). Returns the frame table; for an unknown type
--- { type = "UNKNOWN", code = code, body = body }; for a malformed frame
--- nil and the reason.
function M.decode_body(code, body)
  local spec = SCHEMA[code]
  if not spec then return { type = "UNKNOWN", code = code, body = body } end
  local r = { s = body, pos = 1 }
  local ok, t = pcall(decode_fields, r, spec[3])
  if not ok then
    if type(t) == "table" and t.malformed then return nil, spec[1] .. ": " .. t.malformed end
    error(t, 0)
  end
  if r.pos <= #body then
    return nil, spec[1] .. ": " .. (#body - r.pos + 1) .. " bytes left over"
  end
  t.type = spec[1]
  return t
end

--- Decodes one complete frame (length prefix included) that must fill
--- `bytes` exactly. Returns the frame, or nil and the reason.
function M.decode(bytes)
  if #bytes < 5 then return nil, "shorter than a frame header" end
  local len = string.unpack(">I4", bytes)
  if len < 1 then return nil, "length 0" end
  if #bytes ~= 4 + len then return nil, "length field says " .. len .. ", have " .. (#bytes - 4) end
  return M.decode_body(bytes:byte(5), bytes:sub(6))
end

---------------------------------------------------------------------------
-- Streaming decoder

local Decoder = {}
Decoder.__index = Decoder
M.Decoder = Decoder

--- A streaming decoder; `limit` is the largest `length` accepted.
function Decoder.new(limit)
  return setmetatable({ buf = "", limit = limit or 65536 }, Decoder)
end

function Decoder:feed(bytes)
  if #bytes > 0 then self.buf = self.buf .. bytes end
end

--- Takes the next whole frame out of the buffer.
--- Returns the frame; nil when more bytes are needed; or nil, err where
--- err is { too_large = length } or { malformed = reason } (both mean the
--- stream is unusable from here on, except for a malformed frame whose
--- length was sound, which has been consumed).
function Decoder:next()
  if #self.buf < 4 then return nil end
  local len = string.unpack(">I4", self.buf)
  if len > self.limit then return nil, { too_large = len } end
  if len < 1 then return nil, { malformed = "length 0" } end
  if #self.buf < 4 + len then return nil end
  local code = self.buf:byte(5)
  local body = self.buf:sub(6, 4 + len)
  self.buf = self.buf:sub(5 + len)
  local frame, why = M.decode_body(code, body)
  if not frame then return nil, { malformed = why } end
  return frame
end

---------------------------------------------------------------------------
-- Events: what next_event returns, built from S->C frames.

local function message_event(f)
  return { type = "message", id = f.id, ts = f.ts, from = f.sender, target = f.target,
           to = M.format_target(f.target), body = f.body }
end

local function error_event(f)
  local name, fatal = M.error_name(f.code)
  return { type = "error", code = f.code, name = name, fatal = fatal, ref = f.ref,
           retry_after_ms = f.retry_after_ms, text = f.text }
end

---------------------------------------------------------------------------
-- Connection

local Conn = {}
Conn.__index = Conn
M.Conn = Conn

--- Connects to host:port. opts: { timeout = seconds for connect and each
--- write (default 10), client = name sent in HELLO }.
--- Returns a connection or nil, error. Does not send HELLO.
local function open_socket(socket, host, port, timeout)
  local sock = socket.tcp()
  sock:settimeout(timeout)
  local ok, err = sock:connect(host, port)
  if not ok then sock:close(); return nil, "connect " .. host .. ":" .. port .. ": " .. tostring(err) end
  sock:setoption("tcp-nodelay", true)
  return sock
end

--- A random first SEND2 client_id: 62 random bits from /dev/urandom (the
--- clock when that is missing), so that ids stay unique per device across
--- runs without any saved state; later sends count up from it.
--- (docs/PROTOCOL.md, "Exactly-once sends": unique per device, never 0.)
function M.random_client_id()
  local f = io.open("/dev/urandom", "rb")
  local v
  if f then
    local b = f:read(8)
    f:close()
    if b and #b == 8 then v = string.unpack(">I8", b) end
  end
  if not v then
    local socket = require("socket")
    math.randomseed(math.floor(socket.gettime() * 1e6), os.clock() * 1e6)
    v = math.random(0, math.maxinteger)
  end
  v = v & 0x3FFFFFFFFFFFFFFF
  if v == 0 then v = 1 end
  return v
end

function M.connect(host, port, opts)
  local socket = require("socket")
  opts = opts or {}
  local sock, err = open_socket(socket, host, port, opts.timeout or 10)
  if not sock then return nil, err end
  return setmetatable({
    socket = socket,
    sock = sock,
    host = host,
    port = port,
    io_timeout = opts.timeout or 10,
    -- Before SERVER_HELLO we do not know the server's limits; 65 536 is
    -- the default max_frame.
    decoder = Decoder.new(65536),
    next_ref = 1,
    pending = {}, -- events read while waiting for an answer, FIFO
    closed = false,
    roster = {}, -- lower-cased name -> name as registered
    roster_version = nil,
    snapshot = nil, -- chunks being collected { version, users }
    -- The resume_after for the next login (docs/PROTOCOL.md, "Conversations
    -- and message ids"): CAUGHT_UP's last_id, raised by room and group
    -- messages only, since DMs can overtake older room/group messages.
    bookmark = 0,
    server = nil, -- the SERVER_HELLO frame
    user = nil, -- the name LOGIN_OK returned
    version = nil, -- the protocol version SERVER_HELLO confirmed
    client_name = nil, -- what HELLO said
    -- Version 2 (docs/PROTOCOL.md, "Version 2").
    device = nil, -- the device LOGIN_OK2 named (nil: not a device session)
    token = nil, -- the device token (32 bytes), issued or logged in with
    device_bookmark = 0, -- LOGIN_OK2's bookmark
    login_roster = true, -- whether the last login asked for the roster
    next_client_id = opts.first_client_id or M.random_client_id(),
    outbox = {}, -- client_id -> { client_id, target, body, ref, resends }: SEND2s without an answer
    outbox_ref = {}, -- ref -> client_id, for this connection's SEND2s
    on_outbox = nil, -- function(what, entry, id): "add" (before it is sent), "ack", "error"
    own_ids = {}, -- ids of this client's own SEND2 messages (from ACKs): not shown as MESSAGEs
    seen = {}, -- ids of the MESSAGEs handled: a repeat is dropped
    read_markers = {}, -- "all" / "#g" / "@u" -> id
    caught_up = false, -- CAUGHT_UP arrived on this connection
    delivered_sent = 0, -- the highest DELIVERED sent
    delivered_max = 0, -- the highest id that DELIVERED may say
    undelivered = 0, -- live messages since the last DELIVERED
    flush_at = nil, -- when the pending DELIVERED is due
  }, Conn)
end

-- DELIVERED batching (docs/PROTOCOL.md, "Device bookmarks": "every second
-- or every hundred messages is plenty").
M.DELIVERED_EVERY_S = 1
M.DELIVERED_EVERY_N = 100

--- Sends one frame table. Returns true or nil, err.
function Conn:send_frame(frame)
  if self.closed then return nil, "closed" end
  local data = M.encode(frame)
  self.sock:settimeout(self.io_timeout)
  local i = 0
  while i < #data do
    local last, err, partial = self.sock:send(data, i + 1)
    if last then i = last
    else
      if partial and partial > i then i = partial end
      if err ~= "timeout" or i == 0 then self:_close(); return nil, err end
    end
  end
  return true
end

function Conn:_close()
  if not self.closed then
    self.closed = true
    self.sock:close()
  end
end

function Conn:close() self:_close() end

--- Sends a request that carries a ref; returns the ref (or nil, err).
function Conn:request(frame)
  -- Nothing more is said after LOGOUT (a DELIVERED then would be lost).
  if frame.type == "LOGOUT" then self:flush_delivered(); self.logging_out = true end
  local ref = self.next_ref
  self.next_ref = (ref % 0xFFFFFFFF) + 1 -- never 0
  frame.ref = ref
  local ok, err = self:send_frame(frame)
  if not ok then return nil, err end
  return ref
end

-- Reads bytes until one frame is decoded or the deadline passes.
-- Returns frame; or nil, "timeout" | "closed" | error text.
function Conn:_read_frame(deadline)
  while true do
    local frame, err = self.decoder:next()
    if frame then return frame end
    if err then
      self:_close()
      if err.too_large then return nil, "frame too large: " .. err.too_large end
      return nil, "malformed frame from server: " .. err.malformed
    end
    if self.closed then return nil, "closed" end
    local wait = deadline and math.max(0, deadline - self.socket.gettime()) or nil
    local ready = self.socket.select({ self.sock }, nil, wait)
    if not ready[1] and not ready[self.sock] then
      if deadline and self.socket.gettime() >= deadline then return nil, "timeout" end
    else
      self.sock:settimeout(0)
      local data, rerr, partial = self.sock:receive(65536)
      data = data or partial
      if data and #data > 0 then self.decoder:feed(data) end
      -- On "closed", frames that arrived before the close are still
      -- returned by the decoder at the top of the loop.
      if rerr == "closed" then
        self:_close()
      elseif rerr and rerr ~= "timeout" then
        self:_close()
        return nil, rerr
      end
    end
  end
end

local function sorted_users(set)
  local users = {}
  for _, name in pairs(set) do users[#users + 1] = name end
  table.sort(users, function(a, b) return a:lower() < b:lower() end)
  return users
end

-- Turns one S->C frame into an event, doing the protocol's chores (PONG,
-- ROSTER_ACK, roster bookkeeping). Returns nil for frames that produce no
-- event (PING, a snapshot chunk that is not the last).
function Conn:_handle(f)
  local t = f.type
  if t == "PING" then
    self:send_frame({ type = "PONG", token = f.token })
    return nil
  elseif t == "PONG" then
    return { type = "pong", token = f.token }
  elseif t == "MESSAGE" then
    -- Messages arrive in id order, so the newest id is the resume point.
    if f.id > self.bookmark then self.bookmark = f.id end
    self:_delivered(f.id)
    -- Ids are unique: a repeat (a replay after a lost bookmark, or our
    -- own SEND2 replayed at the next login) is shown once only.
    if self.seen[f.id] or self.own_ids[f.id] then return nil end
    self.seen[f.id] = true
    return message_event(f)
  elseif t == "ROSTER_SNAPSHOT" then
    if not self.snapshot or self.snapshot.version ~= f.version then
      self.snapshot = { version = f.version, users = {} }
    end
    for _, u in ipairs(f.users) do self.snapshot.users[u:lower()] = u end
    if f.last == 0 then return nil end
    self.roster, self.roster_version = self.snapshot.users, f.version
    self.snapshot = nil
    self:send_frame({ type = "ROSTER_ACK", version = f.version })
    return { type = "roster", version = f.version, users = sorted_users(self.roster) }
  elseif t == "ROSTER_DELTA" then
    -- Deltas continue from the snapshot's version without gaps; one from
    -- before our snapshot is stale and is ignored.
    if self.roster_version and f.version <= self.roster_version then return nil end
    self.roster_version = f.version
    if f.presence == 1 then self.roster[f.user:lower()] = f.user
    else self.roster[f.user:lower()] = nil end
    self:send_frame({ type = "ROSTER_ACK", version = f.version })
    return { type = f.presence == 1 and "online" or "offline", user = f.user, version = f.version }
  elseif t == "ACK" then
    local e = { type = "ack", ref = f.ref, id = f.id, ts = f.ts }
    local cid = self.outbox_ref[f.ref]
    if cid then
      local entry = self.outbox[cid]
      self.outbox_ref[f.ref], self.outbox[cid] = nil, nil
      self.own_ids[f.id] = true
      e.client_id, e.target, e.to, e.resent = cid, entry.target, M.format_target(entry.target), entry.resends > 0
      if self.on_outbox then self.on_outbox("ack", entry, f.id) end
    end
    return e
  elseif t == "OK" then
    return { type = "ok", ref = f.ref }
  elseif t == "LOGIN_OK" then
    self.user = f.user
    if self.server then self.decoder.limit = math.max(self.server.max_frame, self.decoder.limit) end
    return { type = "login_ok", ref = f.ref, user = f.user }
  elseif t == "LOGIN_OK2" then
    self.user = f.user
    if self.server then self.decoder.limit = math.max(self.server.max_frame, self.decoder.limit) end
    self.device = f.device ~= "" and f.device or nil
    if #f.token > 0 then self.token = f.token end
    self.device_bookmark = f.bookmark
    return { type = "login_ok2", ref = f.ref, user = f.user, device = self.device, bookmark = f.bookmark,
             token = #f.token > 0 and M.to_hex(f.token) or nil }
  elseif t == "READ_MARKER" then
    local to = M.format_target(f.target)
    self.read_markers[to] = f.id
    return { type = "read_marker", target = f.target, to = to, id = f.id }
  elseif t == "DEVICE_LIST" then
    return { type = "device_list", ref = f.ref, devices = f.devices }
  elseif t == "DELETED" then
    return { type = "deleted", id = f.id, by = f.by }
  elseif t == "NOTICE" then
    return { type = "notice", text = f.text }
  elseif t == "SERVER_HELLO" then
    self.server = f
    self.decoder.limit = math.max(f.max_frame, f.max_frame_pre_auth)
    local e = { type = "server_hello" }
    for k, v in pairs(f) do if k ~= "type" then e[k] = v end end
    return e
  elseif t == "GROUP_EVENT" then
    return { type = "group_event", change = f.change == 1 and "joined" or "left",
             group = f.group, user = f.user }
  elseif t == "GROUP_LIST" then
    return { type = "group_list", ref = f.ref, groups = f.groups }
  elseif t == "HISTORY_PAGE" then
    return { type = "history", ref = f.ref, target = f.target, to = M.format_target(f.target),
             more = f.more == 1, messages = f.messages }
  elseif t == "CAUGHT_UP" then
    if f.last_id > self.bookmark then self.bookmark = f.last_id end
    self.caught_up = true
    if f.last_id > self.delivered_max then self.delivered_max = f.last_id end
    self:flush_delivered()
    return { type = "caught_up", last_id = f.last_id }
  elseif t == "MISSED" then
    return { type = "missed", target = f.target, to = M.format_target(f.target),
             first = f.first, last = f.last, count = f.count }
  elseif t == "ERROR" then
    local e = error_event(f)
    local cid = f.ref ~= 0 and self.outbox_ref[f.ref]
    if cid then
      -- The SEND2 was refused, not stored: it leaves the outbox.
      local entry = self.outbox[cid]
      self.outbox_ref[f.ref], self.outbox[cid] = nil, nil
      e.client_id, e.target, e.to = cid, entry.target, M.format_target(entry.target)
      if self.on_outbox then self.on_outbox("error", entry) end
    end
    return e
  elseif t == "SHUTDOWN" then
    return { type = "shutdown", retry_after_ms = f.retry_after_ms, reason = f.reason }
  elseif t == "UNKNOWN" then
    -- Later protocol versions may add frames; skip them.
    return { type = "unknown", code = f.code, body = f.body }
  end
  -- A C->S frame from the server: a server bug; report it and go on.
  return { type = "unknown", code = M.TYPE[t], frame = f }
end

--- Waits up to `timeout` seconds (nil: forever) for the next event.
--- Returns an event table, or nil and "timeout" or "closed" (or another
--- error text when the stream broke).
--- Events: message, roster, online, offline, group_event, ack, ok,
--- login_ok, server_hello, group_list, history, error, missed, caught_up,
--- deleted, notice, shutdown, pong, unknown. PINGs are answered here and roster changes
--- acknowledged here, so call next_event regularly.
function Conn:next_event(timeout)
  while #self.pending > 0 do
    local e = table.remove(self.pending, 1)
    -- A replayed MESSAGE of our own that was queued before its ACK came.
    if not (e.type == "message" and self.own_ids[e.id]) then return e end
  end
  local deadline = timeout and (self.socket.gettime() + timeout) or nil
  while true do
    -- Wake up for a DELIVERED that is due.
    local until_ = deadline
    if self.flush_at and (not until_ or self.flush_at < until_) then until_ = self.flush_at end
    local f, err = self:_read_frame(until_)
    if not f then
      if err ~= "timeout" then return nil, err end
      if self.flush_at and self.socket.gettime() >= self.flush_at then self:flush_delivered() end
      if deadline and self.socket.gettime() >= deadline then return nil, err end
    else
      local e = self:_handle(f)
      if e then return e end
    end
  end
end

-- A MESSAGE with this id has been processed: DELIVERED is due once
-- CAUGHT_UP has come (then for every live message, batched).
function Conn:_delivered(id)
  if not self.device then return end
  if id > self.delivered_max then self.delivered_max = id end
  if not self.caught_up then return end
  self.undelivered = self.undelivered + 1
  local now = self.socket.gettime()
  if not self.flush_at then self.flush_at = now + M.DELIVERED_EVERY_S end
  if self.undelivered >= M.DELIVERED_EVERY_N or now >= self.flush_at then self:flush_delivered() end
end

--- Sends DELIVERED with the newest id processed, if it is newer than the
--- last one sent (device sessions only, after CAUGHT_UP). Called by the
--- event loop on its own; call it before closing.
function Conn:flush_delivered()
  self.flush_at, self.undelivered = nil, 0
  if not self.device or not self.caught_up or self.closed or self.logging_out then return true end
  if self.delivered_max <= self.delivered_sent then return true end
  local ok, err = self:send_frame({ type = "DELIVERED", id = self.delivered_max })
  if not ok then return nil, err end
  self.delivered_sent = self.delivered_max
  return true
end

-- The event types that answer a request (they carry its ref).
local ANSWERS = { ok = true, ack = true, login_ok = true, login_ok2 = true, group_list = true, history = true,
  device_list = true, error = true }

--- Waits for the answer to request `ref` (ok, ack, login_ok, group_list,
--- history or error with that ref). Other events that arrive meanwhile are
--- kept for next_event. Returns the answer event, or nil and an error.
--- A fatal error or SHUTDOWN, whatever its ref, ends the wait: it is
--- returned as the second value (and not kept for next_event).
function Conn:wait(ref, timeout)
  local deadline = self.socket.gettime() + (timeout or 10)
  -- Answers already queued by an earlier wait.
  for i, e in ipairs(self.pending) do
    if ANSWERS[e.type] and e.ref == ref then return table.remove(self.pending, i) end
  end
  while true do
    local f, err = self:_read_frame(deadline)
    if not f then return nil, err end
    local e = self:_handle(f)
    if e then
      if ANSWERS[e.type] and e.ref == ref then return e end
      if (e.type == "error" and e.fatal) or e.type == "shutdown" then return nil, e end
      self.pending[#self.pending + 1] = e
    end
  end
end

-- Answer-or-error helper: returns the event when it is of `want`, else
-- nil and the error event (or the error text).
local function expect(self, ref, err, want, timeout)
  if not ref then return nil, err end
  local e, werr = self:wait(ref, timeout)
  if not e then return nil, werr end
  if e.type ~= want then return nil, e end
  return e
end

--- Sends HELLO (version 1 or 2; default M.PROTOCOL_VERSION, 2) and waits
--- for SERVER_HELLO. Returns the server_hello event (the server's limits)
--- or nil and an error (event or text; UNSUPPORTED_VERSION from a server
--- that does not speak it).
function Conn:hello(client, timeout, version)
  version = version or M.PROTOCOL_VERSION
  self.client_name = client or "confab-lua"
  local ok, err = self:send_frame({ type = "HELLO", version = version, client = self.client_name })
  if not ok then return nil, err end
  local deadline = self.socket.gettime() + (timeout or 10)
  while true do
    local f, ferr = self:_read_frame(deadline)
    if not f then return nil, ferr end
    local e = self:_handle(f)
    if e and e.type == "server_hello" then self.version = e.version; return e end
    if e and e.type == "error" then return nil, e end
    if e then self.pending[#self.pending + 1] = e end
  end
end

--- REGISTER; returns true, or nil and the error event (NAME_TAKEN, ...).
function Conn:register(user, password, timeout)
  local ref, err = self:request({ type = "REGISTER", user = user, password = password })
  local e, eerr = expect(self, ref, err, "ok", timeout)
  if not e then return nil, eerr end
  return true
end

--- LOGIN{user=, password=, resume_after=0, roster=true}. Returns the
--- login_ok event (its `user` is the name as registered), or nil and the
--- error event. With the roster, it also waits for the whole snapshot and
--- acknowledges it: until then the session is in RosterSync, where the
--- server refuses other requests with WRONG_STATE. The roster event, the
--- replay and CAUGHT_UP follow from next_event.
function Conn:login(args, timeout)
  local roster = args.roster == nil or args.roster
  local ref, err = self:request({
    type = "LOGIN", user = args.user, password = args.password,
    resume_after = args.resume_after or 0, roster = roster and 1 or 0,
  })
  local deadline = self.socket.gettime() + (timeout or 10)
  self.login_roster, self.caught_up = roster, false
  local ok, lerr = expect(self, ref, err, "login_ok", timeout)
  if not ok or not roster then return ok, lerr end
  return self:_await_roster(ok, deadline)
end

-- After a login with the roster: waits for the whole snapshot, which
-- _handle acknowledges; the roster event it gives (and whatever came with
-- it) stays queued for next_event. Returns `ok` or nil, error.
function Conn:_await_roster(ok, deadline)
  self.roster_version = nil
  while self.roster_version == nil do
    local f, ferr = self:_read_frame(deadline)
    if not f then return nil, ferr end
    local e = self:_handle(f)
    if e then
      if (e.type == "error" and e.fatal) or e.type == "shutdown" then return nil, e end
      self.pending[#self.pending + 1] = e
    end
  end
  return ok
end

--- LOGIN2 (version 2 sessions): by password, { user=, password=,
--- device= (optional), issue_token= (needs a device), ... }, or by token,
--- { user=, token= (32 bytes or 64 hex digits), ... }; both take
--- resume = "device" (the device's bookmark; the default with a device or
--- a token) or "after" with resume_after = N (the default otherwise), and
--- roster (default true). Returns the login_ok2 event (user, device,
--- bookmark, token as 64 hex digits when one was issued) or nil and the
--- error event; like login, it waits out RosterSync.
function Conn:login2(args, timeout)
  local roster = args.roster == nil or args.roster
  local token = args.token
  if token and #token == 64 then token = M.parse_token(token) end
  if args.token and not token then return nil, "a token is 64 hex digits" end
  local device = not token and args.device or nil
  local resume = args.resume or ((device or token) and "device" or "after")
  -- What would make the LOGIN2 malformed (and the connection closed).
  if resume == "device" and not (device or token) then return nil, "resume = device needs a device or a token" end
  if args.issue_token and not device then return nil, "issue_token needs a device (and a password)" end
  local frame = {
    type = "LOGIN2", user = args.user,
    credential = token and M.CREDENTIAL.token or M.CREDENTIAL.password,
    secret = token or args.password,
    device = device,
    issue_token = (device and args.issue_token) and 1 or 0,
    resume = M.RESUME[resume],
    resume_after = resume == "after" and (args.resume_after or 0) or 0,
    roster = roster and 1 or 0,
  }
  assert(frame.resume, "resume is \"device\" or \"after\"")
  local ref, err = self:request(frame)
  local deadline = self.socket.gettime() + (timeout or 10)
  self.login_roster, self.caught_up = roster, false
  self.outbox_ref = {}
  local ok, lerr = expect(self, ref, err, "login_ok2", timeout)
  if ok and token then self.token = token end
  if not ok or not roster then return ok, lerr end
  return self:_await_roster(ok, deadline)
end

--- SEND2 (device sessions): like send, with the next client_id. The
--- message stays in the outbox until its ACK (or ERROR) comes, and
--- reconnect sends it again with the same client_id. Returns the ref (nil
--- when the connection is gone: the send is still in the outbox) and the
--- client_id (on failure: nil, the error, the client_id); the ack event
--- carries client_id.
function Conn:send2(target, body)
  if type(target) == "string" then
    local t, err = M.parse_target(target)
    if not t then return nil, err end
    target = t
  end
  local cid = self.next_client_id
  self.next_client_id = cid < 0x7FFFFFFFFFFFFFFF and cid + 1 or 1
  local entry = { client_id = cid, target = target, body = body, resends = 0 }
  self.outbox[cid] = entry
  -- Saved before it goes out: a crash after this point cannot lose it.
  if self.on_outbox then self.on_outbox("add", entry) end
  local ref, err = self:request({ type = "SEND2", client_id = cid, target = target, body = body })
  entry.ref = ref
  if not ref then return nil, err, cid end
  self.outbox_ref[ref] = cid
  return ref, cid
end

--- The outbox's client_ids, oldest first.
function Conn:unacked()
  local ids = {}
  for cid in pairs(self.outbox) do ids[#ids + 1] = cid end
  table.sort(ids, function(a, b) return math.ult(a, b) end)
  return ids
end

--- Sends every SEND2 of the outbox again, oldest first, with its
--- client_id (and a new ref). Returns their client_ids, or nil and an error.
--- reconnect does this; call it after a login when the outbox was filled
--- from saved state (M.outbox_entry).
function Conn:resend()
  local resent = self:unacked()
  for _, cid in ipairs(resent) do
    local entry = self.outbox[cid]
    entry.resends = entry.resends + 1
    local ref, err = self:request({ type = "SEND2", client_id = cid, target = entry.target, body = entry.body })
    if not ref then return nil, err end
    entry.ref = ref
    self.outbox_ref[ref] = cid
  end
  return resent
end

--- Puts a SEND2 that an earlier run sent without getting its ACK back into
--- the outbox (target as "all" / "#g" / "@u" or a table); resend sends it.
function Conn:restore_send(client_id, target, body)
  if type(target) == "string" then target = assert(M.parse_target(target)) end
  self.outbox[client_id] = { client_id = client_id, target = target, body = body, resends = 0 }
  if math.ult(self.next_client_id, client_id + 1) then self.next_client_id = client_id + 1 end
end

--- Connects again (same host and port), says HELLO version 2 and logs in
--- by the device's token, resuming after conn.bookmark (the newest id
--- received; the device's bookmark when that is 0), then sends
--- every SEND2 of the outbox again with its client_id and waits for their
--- answers (the server answers a repeat with the original ACK and stores
--- nothing). Events read meanwhile (the replay, the ACKs) stay queued for
--- next_event; our own replayed messages are left out of them. Returns the
--- login_ok2 event and the resent client_ids, or nil and an error.
function Conn:reconnect(timeout)
  assert(self.token and self.user, "reconnect needs a device token")
  self:_close()
  local sock, err = open_socket(self.socket, self.host, self.port, self.io_timeout)
  if not sock then return nil, err end
  self.sock, self.closed, self.logging_out = sock, false, false
  self.decoder = Decoder.new(65536)
  self.roster, self.roster_version, self.snapshot = {}, nil, nil
  self.flush_at, self.undelivered = nil, 0
  local sh, herr = self:hello(self.client_name, timeout, 2)
  if not sh then return nil, herr end
  -- Where to resume: after the newest id this client has (its own
  -- bookmark, never behind the device's), else at the device's bookmark.
  -- (Both are "0" for a device that has seen nothing: then, as for any
  -- resume from 0, only offline direct messages are replayed.)
  local ok, lerr = self:login2({ user = self.user, token = self.token,
    resume = self.bookmark > 0 and "after" or "device", resume_after = self.bookmark,
    roster = self.login_roster }, timeout)
  if not ok then return nil, lerr end
  local resent, rerr = self:resend_and_wait(timeout)
  if not resent then return nil, rerr end
  return ok, resent
end

--- resend, then reads until every resent SEND2 is answered, keeping the
--- events for next_event (the ACKs among them): so a replayed MESSAGE of
--- one of them, which the login's replay may have brought before its ACK,
--- is known as our own before next_event would show it. Returns the
--- resent client_ids, or nil and an error.
function Conn:resend_and_wait(timeout)
  local resent, rerr = self:resend()
  if not resent then return nil, rerr end
  local deadline = self.socket.gettime() + (timeout or 10)
  while next(self.outbox_ref) do
    local f, ferr = self:_read_frame(deadline)
    if not f then return nil, ferr end
    local e = self:_handle(f)
    if e then
      if (e.type == "error" and e.fatal) or e.type == "shutdown" then return nil, e end
      self.pending[#self.pending + 1] = e
    end
  end
  return resent
end

--- MARK_READ: the user has read `target` up to `id` (no answer; the
--- user's other sessions get READ_MARKER).
function Conn:mark_read(target, id)
  if type(target) == "string" then
    local t, err = M.parse_target(target)
    if not t then return nil, err end
    target = t
  end
  local to = M.format_target(target)
  if not self.read_markers[to] or self.read_markers[to] < id then self.read_markers[to] = id end
  return self:send_frame({ type = "MARK_READ", target = target, id = id })
end

--- DEVICE_LIST_REQUEST / DEVICE_REVOKE: each returns the ref; the answer
--- is a device_list / ok / error event with that ref.
function Conn:device_list() return self:request({ type = "DEVICE_LIST_REQUEST" }) end
function Conn:device_revoke(device) return self:request({ type = "DEVICE_REVOKE", device = device }) end

--- MODERATE, for server operators: kick(user, reason) closes the user's
--- sessions; ban(user, seconds, reason) also refuses their logins for
--- `seconds` (0 or nil: until lifted). Each returns the ref; the answer is
--- an ok or an error event (NOT_OPERATOR) with that ref.
function Conn:kick(user, reason)
  return self:request({ type = "MODERATE", action = 0, user = user, seconds = 0, reason = reason or "" })
end
function Conn:ban(user, seconds, reason)
  return self:request({ type = "MODERATE", action = 1, user = user, seconds = seconds or 0, reason = reason or "" })
end
--- DELETE (a message by id) and ANNOUNCE (a server notice), for server
--- operators; each returns the ref. Everyone who may see the message gets
--- a "DELETED" frame; everyone logged in gets a "NOTICE".
function Conn:delete(id, reason)
  return self:request({ type = "DELETE", id = id, reason = reason or "" })
end
function Conn:announce(text)
  return self:request({ type = "ANNOUNCE", text = text })
end
--- BAN_ADDRESS, for server operators: ban the block (`10.0.0.0/8`,
--- `2001:db8::/32`, one address) for `seconds` (0 for good), or lift its
--- ban with `lift` true. Returns the ref.
function Conn:ban_address(block, seconds, reason, lift)
  return self:request({ type = "BAN_ADDRESS", action = lift and 1 or 0, block = block,
                        seconds = seconds or 0, reason = reason or "" })
end
--- GROUP_MODERATE, for a group's owner or moderators (and operators):
--- action 0 remove, 1 mute (for `seconds`, 0 until lifted), 2 unmute,
--- 3 appoint a moderator, 4 dismiss one. Returns the ref.
function Conn:group_moderate(group, action, user, seconds, reason)
  return self:request({ type = "GROUP_MODERATE", group = group, action = action, user = user,
                        seconds = seconds or 0, reason = reason or "" })
end

--- SEND to "all", "#group" or "@user" (or a target table). Returns the ref;
--- the answer is an ack (or error) event with that ref: next_event or wait.
function Conn:send(target, body)
  if type(target) == "string" then
    local t, err = M.parse_target(target)
    if not t then return nil, err end
    target = t
  end
  return self:request({ type = "SEND", target = target, body = body })
end

--- Group requests and the group list: each returns the ref; the answer is
--- an ok / group_list / error event with that ref.
function Conn:group_create(group) return self:request({ type = "GROUP_CREATE", group = group }) end
function Conn:group_join(group) return self:request({ type = "GROUP_JOIN", group = group }) end
function Conn:group_leave(group) return self:request({ type = "GROUP_LEAVE", group = group }) end
function Conn:group_list() return self:request({ type = "GROUP_LIST_REQUEST" }) end

--- HISTORY_REQUEST for a target ("all", "#g", "@u" or a table); before 0 =
--- from the newest, limit 0 = the server's page maximum. Returns the ref;
--- the answer is a history event.
function Conn:history(target, before, limit)
  if type(target) == "string" then
    local t, err = M.parse_target(target)
    if not t then return nil, err end
    target = t
  end
  return self:request({ type = "HISTORY_REQUEST", target = target, before = before or 0, limit = limit or 0 })
end

--- Sends PING with a token; the answer is a pong event.
function Conn:ping(token) return self:send_frame({ type = "PING", token = token or 0 }) end

--- LOGOUT: waits for the OK, then closes. Returns true or nil, error.
function Conn:logout(timeout)
  local ref, err = self:request({ type = "LOGOUT" })
  local e, eerr = expect(self, ref, err, "ok", timeout)
  self:_close()
  if not e then return nil, eerr end
  return true
end

--- The online users, sorted ignoring case (empty without roster=1).
function Conn:online() return sorted_users(self.roster) end

return M
