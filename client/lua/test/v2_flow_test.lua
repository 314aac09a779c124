-- confab-chat.lua's version 2 paths against test/mock_server.lua (no real
-- server needed): a device login and its token, a SEND2 whose ACK is cut
-- off and resent after --reconnect, one resent from a --state file by the
-- next run, own replayed messages not shown, a login by token at the
-- device's bookmark. The real server is tests/it/lua_interop.rs's job.
--
-- Run: lua5.4 client/lua/test/v2_flow_test.lua
-- Last line: "N passed, M failed"; exit status 1 when M > 0.

local here = (arg and arg[0] or ""):match("^(.*)[/\\]") or "."
local lua = "lua5.4"

local passed, failed = 0, 0
local function check(name, ok, detail)
  if ok then passed = passed + 1
  else failed = failed + 1; print("FAIL " .. name .. (detail and (": " .. detail) or "")) end
end

-- The mock, on a free port, cutting the 2nd ACK it would send.
local tmp = os.tmpname()
local mock = io.popen(string.format("sh -c 'echo $$; exec %s %s/mock_server.lua 0 --cut-ack 2 2>&1' ", lua, here), "r")
local pid = mock:read("l")
local port = mock:read("l"):match("listening on 127%.0%.0%.1:(%d+)")
assert(port, "the mock did not start")

-- Runs confab-chat.lua; returns its lines (parsed) and exit code.
local function chat(args)
  local cmd = string.format("%s %s/../confab-chat.lua --port %s --timeout 5 --no-roster %s 2>/dev/null",
    lua, here, port, args)
  local p = io.popen(cmd, "r")
  local lines = {}
  for line in p:lines() do
    local kind, rest = line:match("^(%S+) ?(.*)$")
    local l = { kind = kind, raw = line }
    for k, v in rest:gmatch("([%w_]+)=(%S*)") do l[k] = v end
    lines[#lines + 1] = l
  end
  local _, _, code = p:close()
  return lines, code
end
local function find(lines, kind, pred)
  for _, l in ipairs(lines) do if l.kind == kind and (not pred or pred(l)) then return l end end
end
local function count(lines, kind)
  local n = 0
  for _, l in ipairs(lines) do if l.kind == kind then n = n + 1 end end
  return n
end
local function dump(lines)
  local t = {}
  for _, l in ipairs(lines) do t[#t + 1] = l.raw end
  return table.concat(t, "\n  ")
end

local state = tmp .. ".state"
os.remove(state)

-- bob sends first (the 1st ACK), so luna's device has a bookmark.
local bob = chat("--user bob --password pw --register --device pc --send all b1")
check("bob sends", find(bob, "ack") ~= nil, dump(bob))

-- luna: a device login with a token; her first send's ACK (the 2nd) is cut.
local l1, c1 = chat("--user luna --password pw --register --device phone --state " .. state ..
  " --reconnect --send all one --send all two")
local tok = find(l1, "token")
check("token issued", tok and tok.device == "phone" and #tok.token == 64 and not tok.token:find("[^0-9a-f]"), dump(l1))
check("reconnected", find(l1, "reconnected", function(l) return l.resent == "1" end) ~= nil, dump(l1))
check("two acks, the first resent", count(l1, "ack") == 2
  and find(l1, "ack", function(l) return l.id == "2" and l.resent == "1" end)
  and find(l1, "ack", function(l) return l.id == "3" and l.resent == "0" end), dump(l1))
check("run 1 exit 0", c1 == 0, tostring(c1))

-- A later run from the state file: by the token, no own message shown.
local l2, c2 = chat("--user luna --state " .. state)
check("state login by token", find(l2, "login", function(l) return l.device == "phone" end) ~= nil, dump(l2))
check("own messages not shown", count(l2, "message") == 0, dump(l2))
check("run 2 exit 0", c2 == 0, tostring(c2))

-- By the token alone: bob's next message, nothing else.
chat("--user bob --password pw --device pc --send all b2")
local l3, c3 = chat("--user luna --token " .. tok.token .. " --listen 5 --count 1")
check("missed message by token", count(l3, "message") == 1
  and find(l3, "message", function(l) return l.from == "bob" end), dump(l3))
check("run 3 exit 0", c3 == 0, tostring(c3))

os.execute("kill " .. pid)
mock:close()
os.remove(state)
os.remove(tmp)

print(string.format("%d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
