"""irctest controller for confab-server's IRC gateway.

Copy (or symlink) this file into an irctest checkout as
irctest/controllers/confab.py and run irctest with
``--controller irctest.controllers.confab`` (see README.md here).

Each test starts a fresh confab-server on a fresh data dir, serving IRC on
the port irctest picked (and IRC over WebSocket on the web port, for the
websocket module). ``--irc-guests`` lets clients that register with
NICK/USER only (most irctest cases) get an account named for their nick;
``registerUser`` creates real accounts with ``confab-server user add``,
which the tests then log in to with SASL PLAIN.
"""

import os
import shutil
import subprocess
import time
from typing import Optional, Type

from irctest.basecontrollers import (
    BaseServerController,
    DirectoryBasedController,
    NotImplementedByController,
    ProcessStopped,
)
from irctest.cases import BaseServerTestCase
from irctest.specifications import Capabilities

BIN = os.environ.get("CONFAB_SERVER_BIN") or shutil.which("confab-server") or "confab-server"

# Generous limits: irctest opens many clients from one address and sends
# bursts that a public server would pace.
FLAGS = [
    "--hash-memory-kib", "8",
    "--hash-passes", "1",
    "--pre-auth-burst", "100",
    "--pre-auth-rate", "100",
    "--max-pre-auth-per-source", "1000",
    "--max-per-source", "1000",
    "--msg-burst", "1000",
    "--msg-rate", "1000",
    "--register-source-burst", "10000",
    "--register-source-every", "0",
    "--register-server-burst", "10000",
    "--register-server-every", "0",
    "--lockout-after", "1000",
    "--sync", "normal",
    "--log-level", "warn",
    "--server-name", "My.Little.Server",
]


class ConfabController(BaseServerController, DirectoryBasedController):
    software_name = "confab"
    _port_wait_interval = 0.01
    supported_sasl_mechanisms = {"PLAIN"}
    supports_sts = False

    capabilities = frozenset(
        (
            Capabilities.ACCOUNT_TAG,
            Capabilities.BATCH,
            Capabilities.ECHO_MESSAGE,
            Capabilities.LABELED_RESPONSE,
            Capabilities.MESSAGE_TAGS,
            Capabilities.MULTI_PREFIX,
            Capabilities.SERVER_TIME,
        )
    )

    isupport = {"CASEMAPPING": "ascii", "UTF8ONLY": None, "MSGREFTYPES": "msgid,timestamp"}

    def run(
        self,
        hostname: str,
        port: int,
        *,
        password: Optional[str],
        ssl: bool,
        run_services: bool,
        faketime: Optional[str],
        websocket_hostname: Optional[str] = None,
        websocket_port: Optional[int] = None,
    ) -> None:
        if password is not None:
            raise NotImplementedByController("server password")
        if ssl:
            raise NotImplementedByController("TLS")
        if self.test_config.account_registration_requires_email:
            # confab accounts have no email.
            raise NotImplementedByController("account registration with email")
        assert self.proc is None
        self.create_config()
        assert self.directory
        self.port = port
        self.data_dir = self.directory / "data"
        args = [
            BIN,
            "--data-dir", str(self.data_dir),
            "--listen", "127.0.0.1:0",
            "--irc-listen", f"{hostname}:{port}",
            "--irc-guests",
            "--irc-quiet-room",
        ] + FLAGS
        if websocket_port is not None:
            # IRC over WebSocket is served on the web port. irctest binds
            # 0.0.0.0; plaintext is served on loopback only, which the
            # client's ws://0.0.0.0 reaches.
            args += ["--web-listen", f"127.0.0.1:{websocket_port}"]
        # irctest drops the server's output unless IRCTEST_DEBUG_LOGS is
        # set: keep its stderr, so a server that did not start says why
        # (check_is_alive below) instead of only "process returned 1".
        self.stderr_path = self.directory / "stderr.log"
        if self.debug_mode:
            self.proc = self.execute(args)
        else:
            with open(self.stderr_path, "wb") as stderr:
                self.proc = self.execute(args, stderr=stderr)

    def check_is_alive(self) -> None:
        try:
            super().check_is_alive()
        except ProcessStopped as e:
            path = getattr(self, "stderr_path", None)
            said = path.read_text(errors="replace")[-2000:] if path and path.exists() else ""
            raise ProcessStopped(f"{e}: {said.strip()}") from None

    def wait_for_services(self) -> None:
        pass

    def registerUser(
        self,
        case: BaseServerTestCase,
        username: str,
        password: Optional[str] = None,
    ) -> None:
        assert password
        base = [BIN, "--data-dir", str(self.data_dir), "--hash-memory-kib", "8",
                "--hash-passes", "1", "user"]
        # A guest of --irc-guests may have the account already. The test
        # registers the name now, as a new person would, so the guest's
        # account goes and a new one is made: it reads none of the
        # guest's direct messages (accounts' history_from). The server may
        # still be opening the database: try again for a few seconds.
        for _ in range(50):
            added = subprocess.run(
                base + ["add", username, "--password", password],
                capture_output=True, text=True,
            )
            if added.returncode == 0:
                return
            if "taken" in added.stderr:
                subprocess.run(base + ["del", username], check=True, capture_output=True)
                continue
            if "password" in added.stderr:
                break
            time.sleep(0.1)
        raise RuntimeError(f"user add {username}: {added.stderr}")


def get_irctest_controller_class() -> Type[ConfabController]:
    return ConfabController
