-- confab-chat.lua: a small command-line chat client on client/lua/confab.lua.
--
--   lua5.4 client/lua/confab-chat.lua --host H --port P --user U --password W
--       [--register] [--join g1,g2] [--send TARGET TEXT]... [--listen SECONDS]
--       [--count N] [--resume-after ID] [--no-roster] [--stdin]
--
-- Steps, in order: connect and HELLO; REGISTER (with --register); LOGIN;
-- join each --join group (creating it when it does not exist); print
-- "ready"; send each --send in order, waiting for its ACK; with --stdin,
-- read commands from standard input until EOF; listen until --listen
-- seconds have passed or --count messages have arrived; LOGOUT.
--
-- TARGET is "all" (the room), "#group" or "@user".
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
-- Diagnostics go to stderr.
--
-- Interactive commands (--stdin): "/join g", "/leave g", "/create g",
-- "/list", "/history TARGET [N]", "/quit", "@bob hi", "#dev hi", "/all hi";
-- any other line goes to the room. Each command waits for its answer
-- before the next line is read (answers can overtake one another, and a
-- "#dev hi" must not race the "/create dev" before it).
--
-- Exit codes:
--   0  everything succeeded
--   1  usage error
--   2  connection failed or lost, a fatal ERROR, or no answer in time
--   3  REGISTER or LOGIN refused
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
TARGET: all | #group | @user
]])
  os.exit(EXIT.usage)
end

-- Arguments.
local opt = { host = "127.0.0.1", port = confab.DEFAULT_PORT, joins = {}, sends = {},
              listen = nil, count = nil, resume_after = 0, roster = true, timeout = 10 }
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
    elseif a == "--resume-after" then opt.resume_after = math.tointeger(number(a)) or usage("--resume-after")
    elseif a == "--no-roster" then opt.roster = false
    elseif a == "--stdin" then opt.stdin = true
    elseif a == "--timeout" then opt.timeout = number(a)
    elseif a == "-h" or a == "--help" then usage()
    else usage("unknown argument " .. a) end
    i = i + 1
  end
  if not opt.user or not opt.password then usage("--user and --password are required") end
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
    out("ack", "ref", e.ref, "id", e.id, "ts", e.ts, "to", r.arg or "?")
  elseif t == "ok" then
    local r = requests[e.ref] or {}
    if r.what == "join" or r.what == "create" then out("joined", "group", r.arg, "created", r.what == "create" and 1 or 0)
    elseif r.what == "leave" then out("left", "group", r.arg)
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

-- Reads and prints events until the answer to `ref` arrives; returns it.
-- Exits on a fatal error, SHUTDOWN, a closed connection or a timeout.
local function await(ref)
  local deadline = socket.gettime() + opt.timeout
  while true do
    local e, err = conn:next_event(math.max(0, deadline - socket.gettime()))
    if not e then fail(EXIT.conn, "waiting for the answer to request " .. ref .. ": " .. err) end
    local answer = e.ref == ref and (e.type == "ok" or e.type == "ack" or e.type == "login_ok"
      or e.type == "error" or e.type == "group_list" or e.type == "history")
    if answer and e.type == "error" and not e.fatal then
      requests[ref] = nil
      return e
    end
    if not show(e) then fail(status, "session ended by the server") end
    if answer then
      requests[ref] = nil
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
local sh, herr = conn:hello("confab-chat.lua", opt.timeout)
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
  local e, lerr = conn:login({ user = opt.user, password = opt.password,
    resume_after = opt.resume_after, roster = opt.roster }, opt.timeout)
  if not e then
    if type(lerr) ~= "table" then fail(EXIT.conn, "LOGIN: " .. tostring(lerr)) end
    if lerr.type == "shutdown" then show(lerr); fail(status, "LOGIN: server shutting down") end
    print_error(lerr)
    fail(lerr.fatal and EXIT.conn or EXIT.auth, "LOGIN refused: " .. lerr.name)
  end
  show(e)
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

-- Sends, one at a time.
for _, s in ipairs(opt.sends) do
  local e = await(request("send", s[1], conn:send(s[1], s[2])))
  if e.type == "error" then print_error(e); worse(EXIT.request) end
end

-- Interactive / scripted commands from stdin.
local function handle_line(line)
  local cmd, rest = line:match("^/(%a+)%s*(.*)$")
  local function target_send(target, text)
    local t, terr = confab.parse_target(target)
    if not t then io.stderr:write("confab-chat: ", terr, "\n"); return end
    if #text == 0 then return end
    return request("send", target, conn:send(t, text))
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
    local e, derr = conn:next_event(0)
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
    local readable = socket.select({ conn.sock, stdin }, nil, nil)
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
    local e, lerr = conn:next_event(left)
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

-- LOGOUT: events up to its OK are still printed.
local ref = request("logout", nil, conn:request({ type = "LOGOUT" }))
local e = await(ref)
if e.type == "error" then print_error(e); worse(EXIT.request) end
conn:close()
out("bye", "resume_after", conn.bookmark)
os.exit(status)
