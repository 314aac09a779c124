-- A tiny, single-threaded stand-in for a version 2 confab server, for
-- trying confab-chat.lua's version 2 paths without the real one. It is
-- written from docs/PROTOCOL.md like the client, so it checks the client
-- against this reading of the spec only; tests/it/lua_interop.rs checks it
-- against the real server.
--
-- Knows: HELLO, REGISTER, LOGIN2 (password: any registered one; token),
-- SEND2 (exactly once per device and client_id), DELIVERED, MARK_READ,
-- DEVICE_LIST_REQUEST, DEVICE_REVOKE, LOGOUT, PING. One room, no groups, no
-- roster (roster=1 gets an empty snapshot).
--
-- Run: lua5.4 client/lua/test/mock_server.lua PORT [--cut-ack N]
-- (--cut-ack N: close the connection instead of sending the N-th ACK, once.)
-- Prints "listening on 127.0.0.1:PORT" and a line per event on stderr.

local here = (arg and arg[0] or ""):match("^(.*)[/\\]") or "."
package.path = here .. "/../?.lua;" .. package.path
local confab = require("confab")
local socket = require("socket")

local port = tonumber(arg[1] or "0")
local cut_ack = nil
for i = 2, #arg do if arg[i] == "--cut-ack" then cut_ack = tonumber(arg[i + 1]) end end

local server = assert(socket.bind("127.0.0.1", port))
server:settimeout(0)
local _, bound = server:getsockname()
io.stderr:write("listening on 127.0.0.1:", bound, "\n")
io.stderr:setvbuf("line")

local users = {} -- lower name -> { name, password, devices = { lower -> dev }, markers = {} }
local tokens = {} -- token bytes -> { user, device }
local messages = {} -- { id, ts, sender, target, body }
local next_id = 0
local acks_sent = 0
local clients = {} -- sock -> session

local function log(...) io.stderr:write("mock: ", table.concat({ ... }, " "), "\n") end

local function send(c, frame) c.sock:send(confab.encode(frame)) end

local function err(c, code, ref, text)
  send(c, { type = "ERROR", code = code, ref = ref or 0, retry_after_ms = 0, text = text })
end

local function drop(c)
  clients[c.sock] = nil
  c.sock:close()
  log("closed", c.user or "-", c.device and c.device.name or "-")
end

local function random_token()
  local f = io.open("/dev/urandom", "rb")
  local t = f:read(32)
  f:close()
  return t
end

local function handle(c, f)
  if os.getenv("MOCK_TRACE") then log("<-", f.type) end
  local t = f.type
  if t == "HELLO" then
    c.version = f.version
    send(c, { type = "SERVER_HELLO", version = f.version, server = "mock", registration_open = 1,
      max_frame = 65536, max_frame_pre_auth = 1024, max_body = 4096, msg_rate = 20, msg_burst = 50,
      groups_per_user = 64, history_page_max = 200, idle_timeout_ms = 60000 })
  elseif t == "REGISTER" then
    if users[f.user:lower()] then return err(c, 11, f.ref, "name taken") end
    users[f.user:lower()] = { name = f.user, password = f.password, devices = {}, markers = {} }
    send(c, { type = "OK", ref = f.ref })
  elseif t == "LOGIN2" then
    local u = users[f.user:lower()]
    local dev
    if f.credential == 1 then
      local tk = tokens[f.secret]
      if not u or not tk or tk.user ~= u then return err(c, 10, f.ref, "bad credentials") end
      dev = tk.device
    else
      if not u or u.password ~= f.secret then return err(c, 10, f.ref, "bad credentials") end
      if f.device ~= "" then
        dev = u.devices[f.device:lower()]
        if not dev then
          dev = { name = f.device, bookmark = 0, sends = {}, created = 1700000000000 }
          u.devices[f.device:lower()] = dev
        end
      end
    end
    c.user, c.u, c.device = u.name, u, dev
    local token = ""
    if f.issue_token == 1 then
      for k, v in pairs(tokens) do if v.device == dev then tokens[k] = nil end end
      token = random_token()
      tokens[token] = { user = u, device = dev }
    end
    send(c, { type = "LOGIN_OK2", ref = f.ref, user = u.name, device = dev and dev.name or "",
      token = token, bookmark = dev and dev.bookmark or 0 })
    for to, id in pairs(u.markers) do
      send(c, { type = "READ_MARKER", target = confab.parse_target(to), id = id })
    end
    if f.roster == 1 then send(c, { type = "ROSTER_SNAPSHOT", version = 1, last = 1, users = { u.name } }) end
    local after = f.resume == 1 and (dev and dev.bookmark or 0) or f.resume_after
    if after > 0 then
      for _, m in ipairs(messages) do
        if m.id > after then
          send(c, { type = "MESSAGE", id = m.id, ts = m.ts, sender = m.sender, target = m.target, body = m.body })
        end
      end
    end
    send(c, { type = "CAUGHT_UP", last_id = next_id })
    log("login", u.name, dev and dev.name or "-", "after", after)
  elseif t == "ROSTER_ACK" then
  elseif t == "SEND2" then
    if not c.device then return err(c, 14, f.ref, "no device") end
    local m = c.device.sends[f.client_id]
    local repeat_ = m ~= nil
    if not m then
      next_id = next_id + 1
      m = { id = next_id, ts = 1700000000000 + next_id, sender = c.user, target = f.target, body = f.body }
      messages[#messages + 1] = m
      c.device.sends[f.client_id] = m
      for _, o in pairs(clients) do
        if o ~= c and o.user then
          send(o, { type = "MESSAGE", id = m.id, ts = m.ts, sender = m.sender, target = m.target, body = m.body })
        end
      end
    end
    log("send2", f.client_id, repeat_ and "repeat" or "new", m.id, f.body)
    acks_sent = acks_sent + 1
    if cut_ack and acks_sent == cut_ack then
      log("cutting instead of ACK", acks_sent)
      cut_ack = nil
      return drop(c)
    end
    send(c, { type = "ACK", ref = f.ref, id = m.id, ts = m.ts })
  elseif t == "DELIVERED" then
    if not c.device then return err(c, 14, 0, "no device") end
    if f.id > c.device.bookmark then c.device.bookmark = math.min(f.id, next_id) end
    log("delivered", c.device.name, f.id)
  elseif t == "MARK_READ" then
    local to = confab.format_target(f.target)
    c.u.markers[to] = math.max(c.u.markers[to] or 0, f.id)
    for _, o in pairs(clients) do
      if o ~= c and o.u == c.u and o.version == 2 then
        send(o, { type = "READ_MARKER", target = f.target, id = c.u.markers[to] })
      end
    end
  elseif t == "DEVICE_LIST_REQUEST" then
    local list = {}
    for _, d in pairs(c.u.devices) do
      list[#list + 1] = { device = d.name, created_ms = d.created, last_seen_ms = d.created,
        current = d == c.device and 1 or 0 }
    end
    send(c, { type = "DEVICE_LIST", ref = f.ref, devices = list })
  elseif t == "DEVICE_REVOKE" then
    local d = c.u.devices[f.device:lower()]
    if not d then return err(c, 29, f.ref, "no such device") end
    c.u.devices[f.device:lower()] = nil
    for k, v in pairs(tokens) do if v.device == d then tokens[k] = nil end end
    send(c, { type = "OK", ref = f.ref })
    for _, o in pairs(clients) do
      if o.device == d then err(o, 38, 0, "device revoked"); drop(o) end
    end
  elseif t == "LOGOUT" then
    send(c, { type = "OK", ref = f.ref })
    drop(c)
  elseif t == "PING" then
    send(c, { type = "PONG", token = f.token })
  elseif t == "PONG" then
  else
    err(c, 4, f.ref, "not in the mock")
  end
end

while true do
  local socks = { server }
  for s in pairs(clients) do socks[#socks + 1] = s end
  local ready = socket.select(socks, nil, 1)
  for _, s in ipairs(ready) do
    if s == server then
      local cs = server:accept()
      if cs then
        cs:settimeout(0)
        clients[cs] = { sock = cs, decoder = confab.Decoder.new(65536) }
      end
    elseif clients[s] then
      local c = clients[s]
      local data, e, partial = s:receive(65536)
      data = data or partial
      if data and #data > 0 then c.decoder:feed(data) end
      while clients[s] do
        local f, derr = c.decoder:next()
        if not f then
          if derr then err(c, 1, 0, "malformed"); drop(c) end
          break
        end
        handle(c, f)
      end
      if e == "closed" and clients[s] then drop(c) end
    end
  end
end
