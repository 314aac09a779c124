"""What the browser tests share: a confab-server of our own (its log read
for the `web listening on ADDR` line), headless `confab` clients, and a
Chromium launched by Playwright from Debian's package (never a download).

Binaries come from $CONFAB_BIN_DIR (default target/debug, as
scripts/test.sh builds them)."""

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("CONFAB_BIN_DIR", ROOT / "target" / "debug"))
CHROMIUM = os.environ.get("CONFAB_CHROMIUM", "/usr/bin/chromium")
WAIT = 20  # seconds for anything the tests wait for

# Cheap password hashing and relaxed fsync, as tests/it/harness.rs FAST;
# every test client comes from loopback, so the per-address limits go up.
FAST = [
    "--hash-memory-kib", "64", "--hash-passes", "1", "--sync", "normal",
    "--max-per-source", "10000", "--max-pre-auth-per-source", "10000",
    "--auth-queue-per-source", "256", "--register-source-burst", "65535",
    "--register-server-burst", "65535",
]

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def binary(name):
    path = BIN_DIR / name
    if not path.is_file():
        raise RuntimeError(f"{path} is missing: run `cargo build --workspace --bins` first "
                           "(or set CONFAB_BIN_DIR)")
    return str(path)


def clean_env(home):
    """No CONFAB_* from the caller's environment; a config dir of our own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONFAB_")}
    env["HOME"] = str(home)
    env["CONFAB_CONFIG_DIR"] = str(Path(home) / "confab-config")
    return env


class Server:
    """confab-server on a temp data dir; start() waits for both log lines."""

    def __init__(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="confab-browser-"))
        self.data_dir = self.tmp / "data"
        self.proc = None
        self.log = []
        self.tcp = None  # "127.0.0.1:PORT"
        self.web = None

    def start(self, tcp="127.0.0.1:0", web="127.0.0.1:0", extra=()):
        args = [binary("confab-server"), "--listen", tcp, "--web-listen", web,
                "--data-dir", str(self.data_dir), *FAST, *extra]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     env=clean_env(self.tmp), text=True)
        found = queue.Queue()

        def read(proc):
            for line in proc.stderr:
                self.log.append(line.rstrip("\n"))
                m = re.search(r"(web )?listening on (\S+)", line)
                if m:
                    found.put(("web" if m.group(1) else "tcp", m.group(2)))

        threading.Thread(target=read, args=(self.proc,), daemon=True).start()
        got = {}
        deadline = time.monotonic() + WAIT
        while len(got) < 2:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise RuntimeError("confab-server did not log both `listening on` lines; its log:\n"
                                   + "\n".join(self.log))
            try:
                kind, addr = found.get(timeout=min(left, 0.5))
                got[kind] = addr
            except queue.Empty:
                pass
        self.tcp, self.web = got["tcp"], got["web"]
        return self

    @property
    def url(self):
        return f"http://{self.web}/"

    @property
    def tcp_port(self):
        return self.tcp.rsplit(":", 1)[1]

    def stop(self):
        """SIGTERM (the graceful shutdown: clients get SHUTDOWN), then wait."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def confab(server, *args, input_text=None, timeout=WAIT, check=True):
    """One headless `confab` command against the server's TCP port."""
    host, port = server.tcp.rsplit(":", 1)
    out = subprocess.run([binary("confab"), *args, "--host", host, "--port", port],
                         input=input_text, capture_output=True, text=True, timeout=timeout,
                         env=clean_env(server.tmp))
    if check and out.returncode != 0:
        raise AssertionError(f"confab {' '.join(args)} exited {out.returncode}: {out.stderr}")
    return out


class Listener:
    """`confab listen`: its JSON lines, collected as they come."""

    def __init__(self, server, user, password):
        host, port = server.tcp.rsplit(":", 1)
        env = clean_env(server.tmp)
        env["CONFAB_PASSWORD"] = password
        self.proc = subprocess.Popen(
            [binary("confab"), "listen", "--host", host, "--port", port, "--user", user, "--register"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.events = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            event = json.loads(line)
            with self.cond:
                self.events.append(event)
                self.cond.notify_all()

    def wait_for(self, pred, what):
        deadline = time.monotonic() + WAIT
        with self.cond:
            while True:
                for e in self.events:
                    if pred(e):
                        return e
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"confab listen never printed {what}; it printed {self.events}")
                self.cond.wait(left)

    def messages(self):
        with self.cond:
            return [e for e in self.events if e.get("event") == "message"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=WAIT)


def launch(playwright):
    """Debian's Chromium. Playwright's launch() gives every browser a fresh,
    temporary user-data-dir of its own (and refuses a --user-data-dir
    argument), so no profile is shared between runs."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
