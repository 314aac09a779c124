#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain, only when it
# is missing: lua5.4 and LuaSocket (the Lua client's interop test), tmux (the
# terminal client's end-to-end test), irssi (the IRC gateway's real-client
# test), python3 (scripts/shape.py), chromium and the pinned Python packages
# of tests/browser/requirements.txt (Playwright and pytest: the browser
# client's tests; Playwright drives Debian's chromium, no browser is
# downloaded), promtool (Debian package prometheus: the metrics test runs
# `promtool check metrics`), postgresql and redis-server (the cluster
# tests: scripts/services.sh runs them on loopback ports of their own), and
# cargo-fuzz (the fuzz smoke run).
# Works as root or through sudo; never prompts.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v lua5.4 >/dev/null 2>&1 || need_apt+=(lua5.4)
if ! lua5.4 -e 'require("socket")' >/dev/null 2>&1; then need_apt+=(lua-socket); fi
command -v tmux >/dev/null 2>&1 || need_apt+=(tmux)
command -v irssi >/dev/null 2>&1 || need_apt+=(irssi)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip)
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v psql >/dev/null 2>&1 || need_apt+=(postgresql-client)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)

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

# The browser tests' Python packages, at the pinned versions, when any is
# missing or at another version. Debian's own python3 refuses system-wide
# pip installs (PEP 668) unless told to.
if ! python3 - <<'PY' >/dev/null 2>&1
import importlib.metadata as m, pathlib, sys
for line in pathlib.Path("tests/browser/requirements.txt").read_text().splitlines():
    line = line.split("#")[0].strip()
    if line:
        name, version = line.split("==")
        if m.version(name) != version:
            sys.exit(1)
PY
then
  echo "install-deps: installing tests/browser/requirements.txt" >&2
  pip_flags=(-q)
  if python3 -m pip install --help 2>/dev/null | grep -q -- --break-system-packages; then
    pip_flags+=(--break-system-packages)
  fi
  python3 -m pip install "${pip_flags[@]}" -r tests/browser/requirements.txt >/dev/null
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "install-deps: installing cargo-fuzz" >&2
  cargo install --locked cargo-fuzz >/dev/null
fi
