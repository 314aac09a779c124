#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain, only when it
# is missing: lua5.4 and LuaSocket (the Lua client's interop test), tmux (the
# terminal client's end-to-end test), irssi (the IRC gateway's real-client test), python3 (scripts/shape.py), and
# cargo-fuzz (the fuzz smoke run).
# Works as root or through sudo; never prompts.
set -euo pipefail

need_apt=()
command -v lua5.4 >/dev/null 2>&1 || need_apt+=(lua5.4)
if ! lua5.4 -e 'require("socket")' >/dev/null 2>&1; then need_apt+=(lua-socket); fi
command -v tmux >/dev/null 2>&1 || need_apt+=(tmux)
command -v irssi >/dev/null 2>&1 || need_apt+=(irssi)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)

if [ ${#need_apt[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "install-deps: need ${need_apt[*]} but am not root and have no sudo" >&2; exit 1
    fi
  fi
  echo "install-deps: installing ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "install-deps: installing cargo-fuzz" >&2
  cargo install --locked cargo-fuzz >/dev/null
fi
