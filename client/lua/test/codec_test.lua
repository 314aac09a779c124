-- Checks the Lua codec against the worked examples of docs/PROTOCOL.md.
--
-- For every "### Example: NAME" heading followed by a ```hex block, the
-- bytes are decoded with the Lua decoder (one shot and streamed byte by
-- byte) and compared with the values the example's prose describes
-- (EXPECTED below, written from that prose); every example is re-encoded
-- and must come out byte for byte (the spec asks this of C->S frames; the
-- schema-driven encoder does it for both directions). An example without an
-- entry here, or an entry without an example, is a failure.
-- Then a few negative cases the spec's framing rules require.
--
-- Run: lua5.4 client/lua/test/codec_test.lua [path/to/PROTOCOL.md]
-- Last line: "N passed, M failed"; exit status 1 when M > 0.

local here = (arg and arg[0] or ""):match("^(.*)[/\\]") or "."
package.path = here .. "/../?.lua;" .. package.path
local confab = require("confab")

local spec_path = arg[1] or (here .. "/../../../docs/PROTOCOL.md")

local TS = 1700000000000

local EXPECTED = {
  HELLO = { type = "HELLO", version = 1, client = "lua" },
  LOGIN = { type = "LOGIN", ref = 1, user = "alice", password = "pw", resume_after = 0, roster = 1 },
  LOGIN_OK = { type = "LOGIN_OK", ref = 1, user = "Alice" },
  ROSTER_SNAPSHOT = { type = "ROSTER_SNAPSHOT", version = 7, last = 1, users = { "alice", "bob" } },
  ROSTER_DELTA = { type = "ROSTER_DELTA", version = 8, presence = 0, user = "bob" },
  SEND = { type = "SEND", ref = 2, target = { kind = "group", name = "dev" }, body = "hi" },
  ACK = { type = "ACK", ref = 2, id = 42, ts = TS },
  MESSAGE = { type = "MESSAGE", id = 42, ts = TS, sender = "alice", target = { kind = "room" }, body = "hi" },
  ERROR = { type = "ERROR", code = 20, ref = 3, retry_after_ms = 0, text = "no user carol" },
  ["ERROR RATE_LIMITED"] = { type = "ERROR", code = 30, ref = 5, retry_after_ms = 60000, text = "try again in 60 s" },
  ["ERROR SERVER_GROUPS_FULL"] = { type = "ERROR", code = 28, ref = 6, retry_after_ms = 0, text = "no more groups" },
  PING = { type = "PING", token = 5 },
  SHUTDOWN = { type = "SHUTDOWN", retry_after_ms = 5000, reason = "bye" },
  HISTORY_REQUEST = { type = "HISTORY_REQUEST", ref = 4, target = { kind = "user", name = "bob" }, before = 0, limit = 50 },
  -- Version 2. An opt_name that is none decodes as "".
  ["HELLO v2"] = { type = "HELLO", version = 2, client = "lua" },
  ["LOGIN2 by password"] = { type = "LOGIN2", ref = 1, user = "alice", credential = 0, secret = "pw",
    device = "laptop", issue_token = 1, resume = 0, resume_after = 0, roster = 1 },
  ["LOGIN2 by token"] = { type = "LOGIN2", ref = 1, user = "alice", credential = 1, secret = string.rep("\x11", 32),
    device = "", issue_token = 0, resume = 1, resume_after = 0, roster = 0 },
  LOGIN_OK2 = { type = "LOGIN_OK2", ref = 1, user = "Alice", device = "laptop", token = string.rep("\x11", 32),
    bookmark = 0 },
  SEND2 = { type = "SEND2", ref = 2, client_id = 7, target = { kind = "room" }, body = "hi" },
  DELIVERED = { type = "DELIVERED", id = 42 },
  MARK_READ = { type = "MARK_READ", target = { kind = "group", name = "dev" }, id = 42 },
  READ_MARKER = { type = "READ_MARKER", target = { kind = "user", name = "bob" }, id = 42 },
  DEVICE_LIST_REQUEST = { type = "DEVICE_LIST_REQUEST", ref = 3 },
  DEVICE_LIST = { type = "DEVICE_LIST", ref = 3, devices = {
    { device = "laptop", created_ms = TS, last_seen_ms = TS, current = 1 } } },
  DEVICE_REVOKE = { type = "DEVICE_REVOKE", ref = 4, device = "laptop" },
  MODERATE = { type = "MODERATE", ref = 5, action = 1, user = "bob", seconds = 3600, reason = "spam" },
  DELETE = { type = "DELETE", ref = 6, id = 42, reason = "spam" },
  ANNOUNCE = { type = "ANNOUNCE", ref = 7, text = "back soon" },
  GROUP_MODERATE = { type = "GROUP_MODERATE", ref = 8, group = "dev", action = 1, user = "bob", seconds = 600,
    reason = "spam" },
  BAN_ADDRESS = { type = "BAN_ADDRESS", ref = 9, action = 0, block = "10.0.0.0/8", seconds = 3600,
    reason = "spam" },
  DELETED = { type = "DELETED", id = 42, by = "alice" },
  NOTICE = { type = "NOTICE", text = "back soon" },
  ["ERROR DEVICE_REVOKED"] = { type = "ERROR", code = 38, ref = 0, retry_after_ms = 0, text = "device revoked" },
}

local passed, failed = 0, 0
local function check(name, ok, detail)
  if ok then
    passed = passed + 1
  else
    failed = failed + 1
    print("FAIL " .. name .. (detail and (": " .. detail) or ""))
  end
end

local function show(v)
  if type(v) ~= "table" then return string.format("%q", v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. "=" .. show(v[k]) end
  return "{" .. table.concat(parts, ", ") .. "}"
end

local function deep_equal(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b end
  for k, v in pairs(a) do if not deep_equal(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

local function hex_to_bytes(hex)
  local clean = hex:gsub("%s+", "")
  if #clean % 2 ~= 0 or clean:find("[^0-9a-fA-F]") then return nil end
  return (clean:gsub("..", function(h) return string.char(tonumber(h, 16)) end))
end

local function to_hex(s)
  return (s:gsub(".", function(c) return string.format("%02x ", c:byte()) end))
end

-- Parse the markdown: each "### Example: NAME" and the first ```hex block
-- after it (before the next heading).
local f = assert(io.open(spec_path, "r"), "cannot open " .. spec_path)
local md = f:read("a")
f:close()

local examples, order = {}, {}
do
  local current, in_hex, hex = nil, false, {}
  for line in (md .. "\n"):gmatch("([^\n]*)\n") do
    local name = line:match("^###%s+Example:%s*(.-)%s*$")
    if name then
      current = name
    elseif line:match("^#") then
      current = nil
    elseif in_hex then
      if line:match("^```") then
        in_hex = false
        if examples[current] then
          check("example " .. current .. " unique", false, "two examples with this name")
        end
        examples[current] = table.concat(hex, " ")
        order[#order + 1] = current
        current = nil
      else
        hex[#hex + 1] = line
      end
    elseif current and line:match("^```hex%s*$") then
      in_hex, hex = true, {}
    end
  end
end

check("examples found", #order > 0, "no ### Example: blocks in " .. spec_path)

for _, name in ipairs(order) do
  local bytes = hex_to_bytes(examples[name])
  local want = EXPECTED[name]
  if not bytes then
    check(name .. " hex", false, "not valid hex")
  elseif not want then
    check(name .. " expected values", false, "example has no entry in EXPECTED")
  else
    -- One shot.
    local frame, err = confab.decode(bytes)
    check(name .. " decodes", frame ~= nil, err)
    if frame then
      check(name .. " fields", deep_equal(frame, want), "got " .. show(frame) .. ", want " .. show(want))
    end
    -- Streamed one byte at a time: nothing until the last byte, then the frame.
    local d = confab.Decoder.new(65536)
    local early
    for i = 1, #bytes - 1 do
      d:feed(bytes:sub(i, i))
      if d:next() ~= nil then early = i end
    end
    d:feed(bytes:sub(-1))
    local streamed = d:next()
    check(name .. " streams", early == nil and deep_equal(streamed, want),
      early and ("frame after " .. early .. " bytes") or ("got " .. show(streamed)))
    -- Re-encode from the expected values.
    local ok, enc = pcall(confab.encode, want)
    check(name .. " re-encodes", ok and enc == bytes,
      ok and ("got " .. to_hex(enc) .. "\n     want " .. to_hex(bytes)) or enc)
    -- "ERROR RATE_LIMITED" is an example of an ERROR frame: its type is
    -- the heading's first word.
    check(name .. " direction known", confab.DIRECTION[want.type] ~= nil)
  end
end

for name in pairs(EXPECTED) do
  check(name .. " example present", examples[name] ~= nil, "EXPECTED has an entry the spec lacks")
end

-- Framing rules from the spec (negative cases).
do
  local function body_err(code, body)
    local fr, why = confab.decode_body(code, body)
    return fr == nil and why ~= nil
  end
  -- Too-large length is refused from the 4 length bytes alone.
  local d = confab.Decoder.new(1024)
  d:feed(string.pack(">I4", 1025))
  local fr, err = d:next()
  check("too large before body", fr == nil and err and err.too_large == 1025, show(err))
  local d2 = confab.Decoder.new(1024)
  d2:feed(string.pack(">I4", 1024))
  local r2, e2 = d2:next()
  check("length == limit accepted (needs more bytes)", r2 == nil and e2 == nil, show(e2))
  -- Bytes left over / too few.
  check("leftover bytes", body_err(0x01, string.pack(">I8I1", 5, 0)))
  check("too few bytes", body_err(0x01, string.pack(">I4", 5)))
  -- Flag other than 0/1.
  check("bad flag", body_err(0x43, string.pack(">I8I1I2", 1, 2, 0)))
  -- Unknown target kind; room target with a name.
  check("bad target kind", body_err(0x4B, "\3\3bob" .. string.pack(">I8I8I4", 1, 2, 1)))
  check("room with a name", body_err(0x4B, "\0\3bob" .. string.pack(">I8I8I4", 1, 2, 1)))
  -- Names: bad characters, leading punctuation, too long.
  check("bad name char", body_err(0x42, string.pack(">I4s1", 1, "al ce")))
  check("name leading dot", body_err(0x42, string.pack(">I4s1", 1, ".alice")))
  check("name too long", body_err(0x42, string.pack(">I4s1", 1, string.rep("a", 33))))
  check("name 32 ok", not body_err(0x42, string.pack(">I4s1", 1, string.rep("a", 32))))
  check("empty name", body_err(0x42, string.pack(">I4s1", 1, "")))
  -- Bad UTF-8 in text.
  check("bad utf8", body_err(0x4D, string.pack(">I4s2", 0, "\xff\xfe")))
  -- Unknown type is skipped, not an error.
  local u = confab.decode(string.pack(">I4I1", 3, 0x7e) .. "xy")
  check("unknown type", u and u.type == "UNKNOWN" and u.code == 0x7e and u.body == "xy", show(u))
  -- Encoder refuses invalid names (clients check names before sending).
  check("encoder checks names", not pcall(confab.encode, { type = "GROUP_JOIN", ref = 1, group = "bad name" }))
  -- Targets in short form.
  check("parse_target", deep_equal(confab.parse_target("#dev"), { kind = "group", name = "dev" })
    and deep_equal(confab.parse_target("@bob"), { kind = "user", name = "bob" })
    and deep_equal(confab.parse_target("all"), { kind = "room" })
    and confab.parse_target("bob") == nil)
  -- Several frames in one feed come out one by one.
  local d3 = confab.Decoder.new(65536)
  d3:feed(confab.encode({ type = "PING", token = 1 }) .. confab.encode({ type = "PONG", token = 2 }))
  local a, b, c = d3:next(), d3:next(), d3:next()
  check("two frames in one feed", a and a.token == 1 and b and b.type == "PONG" and c == nil)
  -- Version 2 field encodings: a blob need not be UTF-8; opt_name none is
  -- one zero byte and encodes from nil or ""; a bad name is still malformed.
  check("blob not utf8", not body_err(0x4E, string.pack(">I4s1I1s1I8", 1, "Alice", 0, "\xff\xfe", 0)))
  check("opt_name none from nil", confab.encode({ type = "LOGIN2", ref = 1, user = "a", credential = 1,
    secret = "x", issue_token = 0, resume = 1, resume_after = 0, roster = 0 }) ==
    confab.encode({ type = "LOGIN2", ref = 1, user = "a", credential = 1, secret = "x", device = "",
      issue_token = 0, resume = 1, resume_after = 0, roster = 0 }))
  check("opt_name bad name", body_err(0x4E, string.pack(">I4s1s1s1I8", 1, "Alice", ".x", "", 0)))
  check("DEVICE_LIST bad current flag", body_err(0x50, string.pack(">I4I2s1I8I8I1", 3, 1, "laptop", 1, 1, 2)))
  -- Tokens: 64 hex digits <-> 32 bytes, shown lowercase.
  local tok = string.rep("\xab", 31) .. "\x01"
  check("token hex round trip", confab.to_hex(tok) == string.rep("ab", 31) .. "01"
    and confab.parse_token(confab.to_hex(tok)) == tok and confab.parse_token(string.rep("AB", 32)) == string.rep("\xab", 32))
  check("token hex refused", confab.parse_token("ab") == nil and confab.parse_token(string.rep("g", 64)) == nil)
  -- The v2 error codes.
  check("v2 error codes", confab.error_name(14) == "NO_DEVICE" and confab.error_name(15) == "TOO_MANY_DEVICES"
    and confab.error_name(29) == "NO_SUCH_DEVICE" and select(2, confab.error_name(38)) == true)
  -- u64 round trip of the top bit (PING tokens are echoed unchanged).
  local big = string.pack(">I4I1", 9, 1) .. "\xff\xff\xff\xff\xff\xff\xff\xff"
  local p = confab.decode(big)
  check("u64 all ones round trip", p and confab.encode({ type = "PONG", token = p.token }):sub(6) == big:sub(6))
end

print(string.format("%d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
