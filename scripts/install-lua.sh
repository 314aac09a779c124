#!/bin/sh
# Installs what client/lua needs: the lua5.4 interpreter and LuaSocket.
# Idempotent: does nothing (not even apt-get update) when both are
# present. Non-interactive; runs apt-get directly as root, through sudo
# otherwise (when sudo exists).
set -eu

have_lua() {
  command -v lua5.4 >/dev/null 2>&1 && lua5.4 -e 'require("socket")' >/dev/null 2>&1
}

if have_lua; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo -n"
else
  echo "install-lua.sh: not root and no sudo; install lua5.4 and lua-socket by hand" >&2
  exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-lua.sh: apt-get not found; install lua5.4 and lua-socket (LuaSocket for Lua 5.4) by hand" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends lua5.4 lua-socket

if ! have_lua; then
  echo "install-lua.sh: lua5.4 with LuaSocket still not usable after apt-get install" >&2
  exit 1
fi
