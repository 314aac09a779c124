-- confab-chat.lua: a small command-line chat client on client/lua/confab.lua.
--
--   lua5.4 client/lua/confab-chat.lua --host H --port P --user U --password W
--       [--register] [--join g1,g2] [--send TARGET TEXT]... [--listen SECONDS]
--       [--count N] [--resume-after ID] [--no-roster] [--stdin]
--       [--protocol 1|2] [--device NAME | --token HEX] [--reconnect]
--       [--state FILE] [--devices] [--revoke NAME]... [--mark-read TARGET ID]...
--
-- Steps, in order: connect and HELLO; REGISTER (with --register); LOGIN
-- (LOGIN2 in version 2); join each --join group (creating it when it does
-- not exist); print "ready"; resend the sends --state kept without an
-- ACK; each --mark-read; --devices; each --revoke; send each --send in
-- order, waiting for its ACK; with --stdin, read commands from standard
-- input until EOF; listen until --listen seconds have passed or --count
-- messages have arrived; LOGOUT.
--
-- TARGET is "all" (the room), "#group" or "@user".
--
-- Protocol version (docs/PROTOCOL.md, "Version 2"): --protocol 1 or 2;
-- without it, 2 when a version 2 option (--device, --token, --reconnect,
-- --state, --devices, --revoke, --mark-read) is given, else 1 (so a version 1
-- command line behaves, and prints, exactly as it always did).
--   --device NAME  log in by password as device NAME (created at its first
--                  login), asking for a new token, printed as a "token"
--                  line: keep it for --token. Resumes at the device's
--                  bookmark (unless --resume-after). Sends use SEND2.
--   --token HEX    log in by the device token (64 hex digits) instead of
--                  the password, resuming at the device's bookmark (unless
--                  --resume-after). Sends use SEND2.
--   --reconnect    (with --device, --token or --state) when the connection
--                  drops (or SHUTDOWN), connect again, log in by the token
--                  (resuming after the newest id received, or at the
--                  device's bookmark if none), and resend every SEND2 that
--                  has no ACK with its client_id (stored exactly once);
--                  retries with backoff for up to --timeout seconds. Only
--                  sends and listening survive a drop; other requests fail.
--   --state FILE   keep the device's token, its client_id counter, its
--                  SEND2s without an ACK and its own recent message ids in
--                  FILE (written before each SEND2 goes out and after each
--                  ACK). A later run with the same FILE logs in by the saved
--                  token (without --device/--token), resends those SEND2s
--                  with their client_ids ("resend" lines, then their ACKs)
--                  and does not show its own messages when they are replayed.
--   --devices      list the user's devices; --revoke NAME revokes one.
--   --mark-read TARGET ID  sets the read marker of TARGET to ID.
-- In a device session every MESSAGE is acknowledged with DELIVERED (after
-- CAUGHT_UP, then batched: every second or hundred messages, and before
-- LOGOUT), and a MESSAGE whose id was shown already is not shown again.
--
-- Output: one event per line on stdout, "kind key=value ...". When a line
-- has a free text (body=, text=, reason=), it is the last field and runs to
-- the end of the line, with "\" "\n" "\r" "\t" escaped as \\ \n \r \t:
--   hello server=NAME version=1 registration_open=1 max_frame=65536 max_body=4096
--   registered user=alice
--   login user=Alice
--   roster version=7 users=alice,bob
--   online version=8 user=bob
--   offline version=9 user=bob
--   joined group=dev            (created=1 when this client created it)
--   left group=dev
--   group_event change=joined group=dev user=bob
--   ready
--   ack ref=4 id=42 ts=1700000000000 to=#dev
--   message id=42 ts=1700000000000 from=alice to=#dev body=hi there
--   history ref=5 to=@bob more=0 count=2
--   history_item id=41 ts=... from=bob body=...        (newest first)
--   groups ref=6 count=1
--   group name=dev members=2 is_member=1
--   caught_up last_id=42
--   missed to=#dev first=10 last=20 count=5
--   error code=20 name=NO_SUCH_USER ref=3 fatal=0 retry_after_ms=0 text=no user carol
--   shutdown retry_after_ms=5000 reason=bye
--   bye resume_after=42         (logged out; the id to pass to --resume-after next time)
-- Version 2 adds (and adds fields to login, ack and bye in v2 sessions):
--   login user=Alice device=phone bookmark=40   (device= only in a device session)
--   token device=phone token=0123...ef          (64 hex digits, with --device)
--   ack ref=4 id=42 ts=... to=#dev client_id=123456 resent=0   (SEND2)
--   read_marker to=@bob id=42                   (set by another session, or at login)
--   mark_read to=#dev id=42                     (--mark-read sent)
--   devices ref=6 count=1
--   device name=phone created_ms=... last_seen_ms=... current=1
--   revoked device=phone
--   disconnected text=closed                    (--reconnect: the connection dropped)
--   reconnected user=Alice device=phone bookmark=42 resent=1
--   resend client_id=123456 to=#dev           (--state: sent by an earlier run, no ACK)
--   bye resume_after=42 device=phone delivered=42
-- Diagnostics go to stderr.
--
-- Interactive commands (--stdin): "/join g", "/leave g", "/create g",
-- "/list", "/history TARGET [N]", "/quit", "@bob hi", "#dev hi", "/all hi";
-- server operators: "/kick USER [why]", "/ban USER [SECONDS] [why]",
-- "/delete ID [why]", "/announce TEXT";
-- any other line goes to the room. Each command waits for its answer
-- before the next line is read (answers can overtake one another, and a
-- "#dev hi" must not race the "/create dev" before it).
--
-- Exit codes:
--   0  everything succeeded
--   1  usage error
--   2  connection failed or lost, a fatal ERROR, or no answer in time
--   3  REGISTER or LOGIN (LOGIN2) refused
--   4  a request (join, send, ...) was answered with ERROR
--   5  the server sent SHUTDOWN
--   6  --count messages did not arrive within --listen seconds

local here = (arg and arg[0] or ""):match("^(.*)[/\\]") or "."
package.path = here .. "/?.lua;" .. package.path
local confab = require("confab")
local socket = require("socket")

io.stdout:setvbuf("line")

local EXIT = { ok = 0, usage = 1, conn = 2, auth = 3, request = 4, shutdown = 5, count = 6 }

local function usage(msg)
  if msg then io.stderr:write("confab-chat: ", msg, "\n") end
  io.stderr:write([[
usage: lua5.4 confab-chat.lua --host H --port P --user U --password W
         [--register] [--join g1,g2] [--send TARGET TEXT]... [--listen SECONDS]
         [--count N] [--resume-after ID] [--no-roster] [--stdin] [--timeout SECONDS]
         [--protocol 1|2] [--device NAME | --token HEX] [--reconnect]
         [--state FILE] [--devices] [--revoke NAME]... [--mark-read TARGET ID]...
TARGET: all | #group | @user
]])
  os.exit(EXIT.usage)
end

-- Arguments.
local opt = { host = "127.0.0.1", port = confab.DEFAULT_PORT, joins = {}, sends = {},
              listen = nil, count = nil, resume_after = 0, roster = true, timeout = 10,
              revokes = {}, mark_reads = {} }
do
  local i = 1
  local function value(flag)
    i = i + 1
    if arg[i] == nil then usage(flag .. " needs a value") end
    return arg[i]
  end
  local function number(flag)
    local v = tonumber(value(flag))
    if not v or v < 0 then usage(flag .. " needs a non-negative number") end
    return v
  end
  while i <= #arg do
    local a = arg[i]
    if a == "--host" then opt.host = value(a)
    elseif a == "--port" then opt.port = math.tointeger(number(a)) or usage("--port")
    elseif a == "--user" then opt.user = value(a)
    elseif a == "--password" then opt.password = value(a)
    elseif a == "--register" then opt.register = true
    elseif a == "--join" then
      for g in value(a):gmatch("[^,]+") do opt.joins[#opt.joins + 1] = g end
    elseif a == "--send" then
      local target = value(a)
      local text = value(a)
      opt.sends[#opt.sends + 1] = { target, text }
    elseif a == "--listen" then opt.listen = number(a)
    elseif a == "--count" then opt.count = math.tointeger(number(a)) or usage("--count")
    elseif a == "--resume-after" then
      opt.resume_after = math.tointeger(number(a)) or usage("--resume-after")
      opt.resume_after_given = true
    elseif a == "--no-roster" then opt.roster = false
    elseif a == "--stdin" then opt.stdin = true
    elseif a == "--timeout" then opt.timeout = number(a)
    elseif a == "--protocol" then
      opt.protocol = math.tointeger(number(a))
      if not confab.PROTOCOL_VERSIONS[opt.protocol] then usage("--protocol is 1 or 2") end
    elseif a == "--device" then opt.device = value(a); opt.v2 = a
    elseif a == "--token" then opt.token = value(a); opt.v2 = a
    elseif a == "--reconnect" then opt.reconnect = true; opt.v2 = a
    elseif a == "--state" then opt.state = value(a); opt.v2 = a
    elseif a == "--devices" then opt.devices = true; opt.v2 = a
    elseif a == "--revoke" then opt.revokes[#opt.revokes + 1] = value(a); opt.v2 = a
    elseif a == "--mark-read" then
      local target = value(a)
      local id = math.tointeger(number(a)) or usage("--mark-read TARGET ID")
      opt.mark_reads[#opt.mark_reads + 1] = { target, id }
      opt.v2 = a
    elseif a == "-h" or a == "--help" then usage()
    else usage("unknown argument " .. a) end
    i = i + 1
  end
  if not opt.user or not (opt.password or opt.token or opt.state) then
    usage("--user and --password (or --token, or --state) are required")
  end
  if opt.v2 and opt.protocol == 1 then usage(opt.v2 .. " needs protocol version 2") end
  opt.protocol = opt.protocol or (opt.v2 and 2 or 1)
  if opt.device and not confab.valid_name(opt.device) then usage("invalid device name " .. opt.device) end
  if opt.device and opt.token then usage("--device and --token exclude each other (the token names its device)") end
  if opt.token and not confab.parse_token(opt.token) then usage("--token needs 64 hex digits") end
  if opt.register and not opt.password then usage("--register needs --password") end
  if opt.reconnect and not (opt.device or opt.token or opt.state) then
    usage("--reconnect needs --device, --token or --state")
  end
  for _, d in ipairs(opt.revokes) do
    if not confab.valid_name(d) then usage("invalid device name " .. d) end
  end
  for _, m in ipairs(opt.mark_reads) do
    local _, err = confab.parse_target(m[1])
    if err then usage(err) end
  end
  if not confab.valid_name(opt.user) then usage("invalid user name " .. opt.user) end
  for _, g in ipairs(opt.joins) do
    if not confab.valid_name(g) then usage("invalid group name " .. g) end
  end
  for _, s in ipairs(opt.sends) do
    local _, err = confab.parse_target(s[1])
    if err then usage(err) end
    if #s[2] == 0 then usage("empty message for " .. s[1]) end
  end
  if opt.count and not opt.listen then opt.listen = 30 end
end

-- Output.
local function esc(s)
  return (s:gsub("[\\\n\r\t]", { ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }))
end

local function out(kind, ...)
  local parts = { kind }
  local kv = { ... }
  for i = 1, #kv, 2 do
    parts[#parts + 1] = kv[i] .. "=" .. tostring(kv[i + 1])
  end
  io.stdout:write(table.concat(parts, " "), "\n")
end

local function unesc(s)
  return (s:gsub("\\(.)", { n = "\n", r = "\r", t = "\t", ["\\"] = "\\" }))
end

-- --state FILE: what a device keeps between runs (docs/PROTOCOL.md,
-- "Exactly-once sends": the token, the client_id counter and the SEND2s
-- without an ACK; and its own recent ids, not to show them when they are
-- replayed). Lines: "user U", "device D", "token HEX", "next_client_id N",
-- "own ID", "outbox CLIENT_ID TARGET BODY" (BODY escaped as on stdout).
local OWN_KEPT = 1000
local state = { own = {}, outbox = {} }
if opt.state then
  local f = io.open(opt.state, "r")
  if f then
    for line in f:lines() do
      local k, v = line:match("^(%S+) ?(.*)$")
      if k == "user" or k == "device" or k == "token" then state[k] = v
      elseif k == "next_client_id" then state.next_client_id = math.tointeger(tonumber(v))
      elseif k == "own" then state.own[#state.own + 1] = math.tointeger(tonumber(v))
      elseif k == "outbox" then
        local cid, target, body = v:match("^(%d+) (%S+) (.*)$")
        if cid then state.outbox[#state.outbox + 1] = { math.tointeger(tonumber(cid)), target, unesc(body) } end
      end
    end
    f:close()
    if state.user and state.user:lower() ~= opt.user:lower() then
      usage("--state " .. opt.state .. " belongs to user " .. state.user)
    end
    -- Log in by the saved token unless told otherwise.
    if state.token and not opt.device and not opt.token then opt.token = state.token end
  end
  if not opt.token and not opt.device then usage("--state without a saved token needs --device or --token") end
end

-- Writes the state (a new file renamed over the old one).
local function save_state(conn)
  if not opt.state or not conn.token then return end
  local lines = { "user " .. conn.user, "device " .. (conn.device or ""), "token " .. confab.to_hex(conn.token),
                  "next_client_id " .. conn.next_client_id }
  local start = math.max(1, #state.own - OWN_KEPT + 1)
  for i = start, #state.own do lines[#lines + 1] = "own " .. state.own[i] end
  for _, cid in ipairs(conn:unacked()) do
    local e = conn.outbox[cid]
    lines[#lines + 1] = "outbox " .. cid .. " " .. confab.format_target(e.target) .. " " .. esc(e.body)
  end
  local tmp = opt.state .. ".tmp"
  local f = assert(io.open(tmp, "w"))
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
  assert(os.rename(tmp, opt.state))
end

local status = EXIT.ok
local function worse(code)
  if status == EXIT.ok then status = code end
end

local received = 0 -- message events
local requests = {} -- ref -> { what = "send"|"join"|..., arg = ... }

local function print_error(e)
  out("error", "code", e.code, "name", e.name, "ref", e.ref, "fatal", e.fatal and 1 or 0,
      "retry_after_ms", e.retry_after_ms, "text", esc(e.text))
end

-- Prints one event; returns false when the session is over.
local function show(e)
  local t = e.type
  if t == "message" then
    received = received + 1
    out("message", "id", e.id, "ts", e.ts, "from", e.from, "to", e.to, "body", esc(e.body))
  elseif t == "roster" then
    out("roster", "version", e.version, "users", table.concat(e.users, ","))
  elseif t == "online" or t == "offline" then
    out(t, "version", e.version, "user", e.user)
  elseif t == "group_event" then
    out("group_event", "change", e.change, "group", e.group, "user", e.user)
  elseif t == "ack" then
    local r = requests[e.ref] or {}
    if e.client_id then
      out("ack", "ref", e.ref, "id", e.id, "ts", e.ts, "to", e.to, "client_id", e.client_id,
          "resent", e.resent and 1 or 0)
    else
      out("ack", "ref", e.ref, "id", e.id, "ts", e.ts, "to", r.arg or "?")
    end
  elseif t == "ok" then
    local r = requests[e.ref] or {}
    if r.what == "join" or r.what == "create" then out("joined", "group", r.arg, "created", r.what == "create" and 1 or 0)
    elseif r.what == "leave" then out("left", "group", r.arg)
    elseif r.what == "revoke" then out("revoked", "device", r.arg)
    elseif r.what ~= "register" and r.what ~= "logout" then out("ok", "ref", e.ref) end
  elseif t == "group_list" then
    out("groups", "ref", e.ref, "count", #e.groups)
    for _, g in ipairs(e.groups) do out("group", "name", g.group, "members", g.members, "is_member", g.is_member) end
  elseif t == "history" then
    out("history", "ref", e.ref, "to", e.to, "more", e.more and 1 or 0, "count", #e.messages)
    for _, m in ipairs(e.messages) do
      out("history_item", "id", m.id, "ts", m.ts, "from", m.sender, "body", esc(m.body))
    end
  elseif t == "caught_up" then
    out("caught_up", "last_id", e.last_id)
  elseif t == "missed" then
    out("missed", "to", e.to, "first", e.first, "last", e.last, "count", e.count)
  elseif t == "error" then
    print_error(e)
    if e.fatal then worse(EXIT.conn); return false end
  elseif t == "shutdown" then
    out("shutdown", "retry_after_ms", e.retry_after_ms, "reason", esc(e.reason))
    worse(EXIT.shutdown)
    return false
  elseif t == "pong" then
    out("pong", "token", e.token)
  elseif t == "login_ok" then
    out("login", "user", e.user)
  elseif t == "login_ok2" then
    if e.device then out("login", "user", e.user, "device", e.device, "bookmark", e.bookmark)
    else out("login", "user", e.user) end
    if e.token then out("token", "device", e.device or "", "token", e.token) end
  elseif t == "read_marker" then
    out("read_marker", "to", e.to, "id", e.id)
  elseif t == "device_list" then
    out("devices", "ref", e.ref, "count", #e.devices)
    for _, d in ipairs(e.devices) do
      out("device", "name", d.device, "created_ms", d.created_ms, "last_seen_ms", d.last_seen_ms,
          "current", d.current)
    end
  elseif t == "deleted" then
    out("deleted", "id", e.id, "by", e.by)
  elseif t == "notice" then
    out("notice", "text", esc(e.text))
  elseif t == "unknown" then
    io.stderr:write("confab-chat: skipped frame type ", tostring(e.code), "\n")
  end
  return true
end

local conn

local function fail(code, msg)
  io.stderr:write("confab-chat: ", msg, "\n")
  if conn then conn:close() end
  os.exit(code)
end

-- --reconnect: after the connection dropped (or SHUTDOWN, `after_ms`),
-- connects again and logs in by the token, resending the unacknowledged
-- SEND2s (their ACKs are queued for next_event). Returns true, or false
-- when not asked to or it could not within --timeout seconds.
local function recover(why, after_ms)
  if not opt.reconnect or not conn.token then return false end
  out("disconnected", "text", esc(tostring(why)))
  local give_up = socket.gettime() + opt.timeout + (after_ms or 0) / 1000
  local wait = math.max(0.05, (after_ms or 0) / 1000)
  while true do
    if wait > 0 then socket.sleep(wait) end
    local e, resent = conn:reconnect(opt.timeout)
    if e then
      out("reconnected", "user", e.user, "device", e.device or "", "bookmark", e.bookmark, "resent", #resent)
      return true
    end
    local retry_ms = 0
    if type(resent) == "table" then
      if resent.type == "error" then
        print_error(resent)
        -- Only a refusal that says "later" is worth another try.
        if resent.retry_after_ms == 0 and resent.name ~= "BUSY" then return false end
      end
      retry_ms = resent.retry_after_ms or 0
    else
      io.stderr:write("confab-chat: reconnecting: ", tostring(resent), "\n")
    end
    wait = math.max(math.min(wait * 2, 2), retry_ms / 1000)
    if socket.gettime() + wait > give_up then return false end
  end
end

local function is_answer(e, ref)
  return e.ref == ref and (e.type == "ok" or e.type == "ack" or e.type == "login_ok"
    or e.type == "login_ok2" or e.type == "error" or e.type == "group_list" or e.type == "history"
    or e.type == "device_list")
end

local reconnects = 0

-- conn:next_event, surviving drops and SHUTDOWN with --reconnect (the
-- shutdown line is printed; the session goes on).
local function next_ev(timeout)
  local deadline = timeout and socket.gettime() + timeout or nil
  while true do
    local left = deadline and math.max(0, deadline - socket.gettime()) or nil
    local e, err = conn:next_event(left)
    if e and e.type == "shutdown" and opt.reconnect then
      out("shutdown", "retry_after_ms", e.retry_after_ms, "reason", esc(e.reason))
      if not recover("shutdown", e.retry_after_ms) then return e end
      reconnects = reconnects + 1
    elseif not e and err ~= "timeout" and opt.reconnect then
      if not recover(err) then return nil, err end
      reconnects = reconnects + 1
    else
      return e, err
    end
  end
end

-- Reads and prints events until the answer to `w` arrives; returns it.
-- `w` is a request's ref, or { cid = client_id } for a SEND2, whose answer
-- may come on a later connection (--reconnect): a reconnect while waiting
-- for any other answer is a failure.
-- Exits on a fatal error, SHUTDOWN, a closed connection or a timeout.
local function await(w)
  local deadline = socket.gettime() + opt.timeout
  local cid = type(w) == "table" and w.cid or nil
  local what = cid and ("the ACK of client_id " .. cid) or ("the answer to request " .. w)
  local connection = reconnects
  while true do
    local e, err = next_ev(math.max(0, deadline - socket.gettime()))
    if not e then fail(EXIT.conn, "waiting for " .. what .. ": " .. err) end
    if reconnects ~= connection then
      if not cid then fail(EXIT.conn, "the connection dropped while waiting for " .. what) end
      connection, deadline = reconnects, socket.gettime() + opt.timeout
    end
    local answer
    if cid then answer = e.client_id == cid and (e.type == "ack" or e.type == "error")
    else answer = is_answer(e, w) end
    if answer and e.type == "error" and not e.fatal then
      requests[e.ref] = nil
      return e
    end
    if not show(e) then fail(status, "session ended by the server") end
    if answer then
      requests[e.ref] = nil
      return e
    end
  end
end

local function request(what, arg, ref, err)
  if not ref then fail(EXIT.conn, what .. ": " .. tostring(err)) end
  requests[ref] = { what = what, arg = arg }
  return ref
end

-- Connect, HELLO.
local err
conn, err = confab.connect(opt.host, opt.port, { timeout = opt.timeout })
if not conn then fail(EXIT.conn, err) end
if opt.state then
  if state.next_client_id and state.next_client_id > 0 then conn.next_client_id = state.next_client_id end
  for _, id in ipairs(state.own) do conn.own_ids[id] = true end
  -- The saved sends belong to the saved device: with --device (a new
  -- token, maybe another device) they are kept only for the same device.
  if not opt.device or (state.device or ""):lower() == opt.device:lower() then
    for _, o in ipairs(state.outbox) do conn:restore_send(o[1], o[2], o[3]) end
  end
  conn.on_outbox = function(what, _, id)
    if what == "ack" then state.own[#state.own + 1] = id end
    save_state(conn)
  end
end
local sh, herr = conn:hello("confab-chat.lua", opt.timeout, opt.protocol)
if not sh then
  if type(herr) == "table" then print_error(herr) end
  fail(EXIT.conn, "HELLO: " .. (type(herr) == "table" and herr.name or tostring(herr)))
end
out("hello", "server", sh.server, "version", sh.version, "registration_open", sh.registration_open,
    "max_frame", sh.max_frame, "max_body", sh.max_body)

-- REGISTER, LOGIN.
if opt.register then
  local e = await(request("register", opt.user,
    conn:request({ type = "REGISTER", user = opt.user, password = opt.password })))
  if e.type == "error" then print_error(e); fail(EXIT.auth, "REGISTER refused: " .. e.name) end
  out("registered", "user", opt.user)
end
do
  -- conn:login also waits out RosterSync; the events it read meanwhile
  -- (the roster, replayed messages) come from next_event, in order.
  local e, lerr
  if opt.protocol == 1 then
    e, lerr = conn:login({ user = opt.user, password = opt.password,
      resume_after = opt.resume_after, roster = opt.roster }, opt.timeout)
  else
    -- With a device (or a token) resume at its bookmark unless told where.
    local resume = ((opt.device or opt.token) and not opt.resume_after_given) and "device" or "after"
    e, lerr = conn:login2({ user = opt.user, password = opt.password, token = opt.token,
      device = opt.device, issue_token = opt.device ~= nil, resume = resume,
      resume_after = opt.resume_after, roster = opt.roster }, opt.timeout)
  end
  if not e then
    if type(lerr) ~= "table" then fail(EXIT.conn, "LOGIN: " .. tostring(lerr)) end
    if lerr.type == "shutdown" then show(lerr); fail(status, "LOGIN: server shutting down") end
    print_error(lerr)
    fail(lerr.fatal and EXIT.conn or EXIT.auth, "LOGIN refused: " .. lerr.name)
  end
  show(e)
  save_state(conn)
end

-- Join (or create) groups. Two clients racing to create the same group:
-- the loser gets GROUP_EXISTS and joins.
local function join(g)
  for _ = 1, 3 do
    local e = await(request("join", g, conn:group_join(g)))
    if e.type ~= "error" or e.name == "ALREADY_MEMBER" then
      if e.type == "error" then out("joined", "group", g, "created", 0) end
      return
    end
    if e.name ~= "NO_SUCH_GROUP" then print_error(e); worse(EXIT.request); return end
    e = await(request("create", g, conn:group_create(g)))
    if e.type ~= "error" then return end
    if e.name ~= "GROUP_EXISTS" then print_error(e); worse(EXIT.request); return end
  end
end
for _, g in ipairs(opt.joins) do join(g) end

out("ready")

-- The sends an earlier run (--state) got no ACK for, with their client_ids.
if next(conn.outbox) then
  for _, cid in ipairs(conn:unacked()) do
    out("resend", "client_id", cid, "to", confab.format_target(conn.outbox[cid].target))
  end
  local cids, rerr = conn:resend_and_wait(opt.timeout)
  if not cids then
    if type(rerr) == "table" then show(rerr) end
    fail(status ~= EXIT.ok and status or EXIT.conn, "resending: " .. (type(rerr) == "table" and rerr.type or tostring(rerr)))
  end
  -- Their answers (in any order) and what came with them are queued.
  while #conn.pending > 0 do
    local e = conn:next_event(0)
    if not e then break end
    if e.type == "error" and e.client_id and not e.fatal then print_error(e); worse(EXIT.request)
    elseif not show(e) then fail(status, "session ended by the server") end
  end
end

-- Read markers, devices.
for _, m in ipairs(opt.mark_reads) do
  local ok, merr = conn:mark_read(m[1], m[2])
  if not ok then fail(EXIT.conn, "MARK_READ: " .. tostring(merr)) end
  out("mark_read", "to", m[1], "id", m[2])
end
if opt.devices then
  local e = await(request("devices", nil, conn:device_list()))
  if e.type == "error" then print_error(e); worse(EXIT.request) end
end
local revoked_self = false
for _, d in ipairs(opt.revokes) do
  local own = conn.device and conn.device:lower() == d:lower()
  local e = await(request("revoke", d, conn:device_revoke(d)))
  if e.type == "error" then print_error(e); worse(EXIT.request)
  elseif own then revoked_self = true; break end
end
if revoked_self then
  -- The server closes this session with ERROR DEVICE_REVOKED (after the
  -- OK): print what is left and stop, without LOGOUT.
  while true do
    local e = conn:next_event(opt.timeout)
    if not e then break end
    if e.type == "error" and e.name == "DEVICE_REVOKED" then print_error(e); break end
    if not show(e) then break end
  end
  conn:close()
  out("bye", "resume_after", conn.bookmark)
  os.exit(status)
end

-- Sends a message: SEND2 in a device session (its answer is awaited by
-- client_id, as it may come after a reconnect), else SEND.
local function send_message(target, text)
  if conn.device then
    local ref, a, b = conn:send2(target, text)
    if ref then requests[ref] = { what = "send", arg = target }
    elseif not opt.reconnect then fail(EXIT.conn, "send: " .. tostring(a)) end
    return { cid = ref and a or b }
  end
  return request("send", target, conn:send(target, text))
end

-- Sends, one at a time.
for _, s in ipairs(opt.sends) do
  local e = await(send_message(s[1], s[2]))
  if e.type == "error" then print_error(e); worse(EXIT.request) end
end

-- Interactive / scripted commands from stdin.
local function handle_line(line)
  local cmd, rest = line:match("^/(%a+)%s*(.*)$")
  local function target_send(target, text)
    local t, terr = confab.parse_target(target)
    if not t then io.stderr:write("confab-chat: ", terr, "\n"); return end
    if #text == 0 then return end
    return send_message(t, text)
  end
  if cmd == "join" or cmd == "create" or cmd == "leave" then
    if not confab.valid_name(rest) then io.stderr:write("confab-chat: invalid group name\n"); return end
    local method = cmd == "join" and conn.group_join or cmd == "create" and conn.group_create or conn.group_leave
    return request(cmd, rest, method(conn, rest))
  elseif cmd == "list" then
    return request("list", nil, conn:group_list())
  elseif cmd == "history" then
    local target, n = rest:match("^(%S+)%s*(%d*)$")
    if not target or not confab.parse_target(target) then io.stderr:write("confab-chat: /history TARGET [N]\n"); return end
    return request("history", target, conn:history(target, 0, tonumber(n) or 0))
  elseif cmd == "kick" or cmd == "ban" then
    -- /kick USER [reason], /ban USER [SECONDS] [reason] (server operators).
    local user, tail = rest:match("^@?([%w_.%-]+)%s*(.*)$")
    if not user or not confab.valid_name(user) then io.stderr:write("confab-chat: /", cmd, " USER ...\n"); return end
    if cmd == "kick" then return request("kick", user, conn:kick(user, tail)) end
    local secs, why = tail:match("^(%d+)%s*(.*)$")
    return request("ban", user, conn:ban(user, tonumber(secs) or 0, secs and why or tail))
  elseif cmd == "delete" then
    local id, why = rest:match("^(%d+)%s*(.*)$")
    if not id then io.stderr:write("confab-chat: /delete ID [reason]\n"); return end
    return request("delete", id, conn:delete(tonumber(id), why))
  elseif cmd == "announce" then
    if #rest == 0 then io.stderr:write("confab-chat: /announce TEXT\n"); return end
    return request("announce", nil, conn:announce(rest))
  elseif cmd == "all" then
    return target_send("all", rest)
  elseif cmd == "quit" then
    return "quit"
  elseif cmd then
    io.stderr:write("confab-chat: unknown command /", cmd, "\n")
  else
    local target, text = line:match("^([@#][%w_.%-]+)%s+(.*)$")
    if target then return target_send(target, text)
    elseif #line > 0 then return target_send("all", line) end
  end
end

local function drain_ready()
  -- Everything already received, without blocking.
  while true do
    local e, derr = next_ev(0)
    if not e then
      if derr == "timeout" then return true end
      fail(status ~= EXIT.ok and status or EXIT.conn, "connection " .. derr)
    end
    if not show(e) then fail(status, "session ended by the server") end
  end
end

if opt.stdin then
  local stdin = { getfd = function() return 0 end, dirty = function() return false end }
  while true do
    drain_ready()
    -- Wake up for a DELIVERED that is due (drain_ready sends it).
    local wait = conn.flush_at and math.max(0, conn.flush_at - socket.gettime()) or nil
    local readable = socket.select({ conn.sock, stdin }, nil, wait)
    if readable[stdin] then
      local line = io.stdin:read("l")
      local ref = line and handle_line(line)
      if line == nil or ref == "quit" then break end
      if ref then
        local e = await(ref)
        if e.type == "error" then print_error(e); worse(EXIT.request) end
      end
    end
  end
end

-- Listen.
if opt.listen then
  local deadline = socket.gettime() + opt.listen
  while not (opt.count and received >= opt.count) do
    local left = deadline - socket.gettime()
    if left <= 0 then break end
    local e, lerr = next_ev(left)
    if not e then
      if lerr ~= "timeout" then fail(EXIT.conn, "connection " .. lerr) end
      break
    end
    if not show(e) then fail(status, "session ended by the server") end
  end
  if opt.count and received < opt.count then
    io.stderr:write("confab-chat: ", received, " of ", opt.count, " messages arrived\n")
    worse(EXIT.count)
  end
else
  drain_ready()
end

-- LOGOUT: events up to its OK are still printed. A device session says
-- DELIVERED first (after CAUGHT_UP, which ends every login's replay: wait
-- for it): the OK comes once its bookmark is stored.
if conn.device and not conn.caught_up then
  local deadline = socket.gettime() + opt.timeout
  while not conn.caught_up do
    local e, cerr = next_ev(math.max(0, deadline - socket.gettime()))
    if not e then
      if cerr ~= "timeout" then fail(EXIT.conn, "connection " .. cerr) end
      fail(EXIT.conn, "no CAUGHT_UP within " .. opt.timeout .. " s")
    end
    if not show(e) then fail(status, "session ended by the server") end
  end
end
conn:flush_delivered()
local ref = request("logout", nil, conn:request({ type = "LOGOUT" }))
local e = await(ref)
if e.type == "error" then print_error(e); worse(EXIT.request) end
conn:close()
if conn.device then
  out("bye", "resume_after", conn.bookmark, "device", conn.device, "delivered", conn.delivered_sent)
else
  out("bye", "resume_after", conn.bookmark)
end
os.exit(status)
