"""The browser client (web/static/) end to end, in Debian's Chromium driven
by Playwright: two browser users and a `confab listen` bot chat in the
room, a group and a DM; the server restarts and the pages catch up with no
duplicates; a foreign origin cannot connect; a bad server cannot make the
page buffer without bound. Screenshots go to docs/screenshots/.

Run: python3 -m pytest tests/browser -q (binaries from $CONFAB_BIN_DIR,
default target/debug)."""

import http.server
import re
import struct
import threading
import time

import pytest
from playwright.sync_api import sync_playwright

from harness import ROOT, WAIT, Listener, Server, confab, launch

MS = WAIT * 1000
SHOTS = ROOT / "docs" / "screenshots"
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def server():
    s = Server().start()
    yield s
    s.cleanup()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


# ---- page helpers ----

_USERS = []


class User:
    def __init__(self, browser, server, name, password, viewport=(1280, 800), state=None):
        _USERS.append(self)
        self.name, self.password = name, password
        self.context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                           storage_state=state)
        self.page = self.context.new_page()
        self.dialogs, self.errors = [], []
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(server.url)

    def register(self):
        p = self.page
        p.fill("#login-user", self.name)
        p.fill("#login-password", self.password)
        p.click("#register-button")
        self.wait_ready()
        return self

    def wait_ready(self):
        self.page.wait_for_selector("#status.ready", timeout=MS)

    def open(self, key):
        self.page.click(f".nav button[data-key='{key}']")
        self.page.wait_for_selector(f".nav button.active[data-key='{key}']", state="attached", timeout=MS)

    def send(self, text, acked=True):
        self.page.fill("#input", text)
        self.page.press("#input", "Enter")
        if acked:
            self.wait_text(text)

    def count(self, text, selector="#messages li.msg[data-id] .text"):
        return self.page.evaluate(
            "([s, t]) => [...document.querySelectorAll(s)].filter(e => e.textContent === t).length",
            [selector, text])

    def wait_text(self, text):
        try:
            self.page.wait_for_function(
                "t => [...document.querySelectorAll('#messages li.msg[data-id] .text')]"
                ".some(e => e.textContent === t)", arg=text, timeout=MS)
        except Exception as e:
            raise AssertionError(f"{self.name}'s page never showed {text!r}; it shows "
                                 f"{self.page.inner_text('#chat')!r}; page errors: {self.errors}") from e

    def badge(self, key):
        b = self.page.locator(f".nav button[data-key='{key}'] .badge")
        return int(b.text_content()) if b.count() else 0

    def wait_badge(self, key, n):
        try:
            self._wait_badge(key, n)
        except Exception as e:
            raise AssertionError(f"{self.name}'s page shows {self.badge(key)} unread on {key}, not {n}") from e

    def _wait_badge(self, key, n):
        self.page.wait_for_function(
            "([k, n]) => { const b = document.querySelector(`.nav button[data-key='${k}'] .badge`);"
            " return b && Number(b.textContent) === n; }", arg=[key, n], timeout=MS)


def bot_saw(bot, body, to, sender):
    return bot.wait_for(lambda e: e.get("event") == "message" and e["body"] == body
                        and e["to"] == to and e["from"] == sender, f"{sender}'s {body!r} to {to}")


# ---- the codec against the worked examples of PROTOCOL.md ----

def test_codec_round_trips_every_worked_example(browser, server):
    spec = (ROOT / "docs" / "PROTOCOL.md").read_text()
    examples = re.findall(r"### Example: ([^\n]+)\n.*?```hex\n(.*?)```", spec, re.S)
    assert len(examples) >= 20, "PROTOCOL.md's worked examples were not found"
    u = User(browser, server, "codec", "x")
    results = u.page.evaluate("""async (examples) => {
        const P = await import('/protocol.js');
        return examples.map(([name, hex]) => {
            const bytes = P.fromHex(hex);
            const frames = new P.FrameReader(1 << 20).push(bytes);
            return [name, frames.length, frames[0].type, P.toHex(P.encode(frames[0])) === P.toHex(bytes)];
        });
    }""", [[n, h] for n, h in examples])
    for name, count, ftype, same in results:
        assert count == 1 and same, f"example {name}: decoded {count} frame(s) of {ftype}, re-encoded same={same}"
    # A frame split across WebSocket messages, and two frames in one.
    split = u.page.evaluate("""async () => {
        const P = await import('/protocol.js');
        const ping = P.encode({ type: 'PING', token: 5n });
        const r = new P.FrameReader(64);
        const a = r.push(ping.subarray(0, 3)).length, b = r.push(ping.subarray(3)).length;
        const two = new Uint8Array(ping.length * 2); two.set(ping); two.set(ping, ping.length);
        return [a, b, r.push(two).length, r.buffered];
    }""")
    assert split == [0, 1, 2, 0], split
    # The length is checked before any body is buffered.
    bounded = u.page.evaluate("""async () => {
        const P = await import('/protocol.js');
        const r = new P.FrameReader(65536);
        try { r.push(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x46])); return 'accepted'; }
        catch (e) { return (e instanceof P.ProtocolError) + ' ' + r.buffered; }
    }""")
    assert bounded == "true 0", bounded
    u.context.close()


# ---- the whole chat, with a restart ----

def test_two_pages_and_a_bot_chat_restart_and_catch_up(browser, server):
    try:
        _scenario(browser, server)
    except Exception:
        # What the server logged and what each page held, to tell a page's
        # fault from the server's.
        print("the server's log, last lines:\n" + "\n".join(server.log[-40:]))
        for u in _USERS:
            if not u.page.is_closed():
                print(f"{u.name}'s messages:", u.page.inner_html("#messages")[-2000:])
        raise


def _scenario(browser, server):
    bot = Listener(server, "carol", "carol-pw")
    bot.wait_for(lambda e: e.get("event") == "caught_up", "caught_up")
    alice = User(browser, server, "alice", "alice-pw").register()
    bob = User(browser, server, "bob", "bob-pw").register()

    # Presence: both pages list both users online.
    for u in (alice, bob):
        u.page.wait_for_selector(".nav #people-list button[data-key='@alice'] .dot.online", timeout=MS)
        u.page.wait_for_selector(".nav #people-list button[data-key='@bob'] .dot.online", timeout=MS)

    # The token is stored; the password is not, anywhere in storage.
    stored = alice.page.evaluate("JSON.stringify(Object.assign({}, localStorage))")
    assert "alice-pw" not in stored
    assert re.search(r'"token\\":\\"[0-9a-f]{64}\\"', stored), stored

    # The room.
    alice.send("hello room")
    bob.wait_text("hello room")
    bot_saw(bot, "hello room", "all", "alice")

    # A group: alice creates it, bob joins from the page, carol from the CLI.
    alice.page.fill("#group-name", "dev")
    alice.page.click("#group-create")
    alice.page.wait_for_selector(".nav button.active[data-key='#dev']", timeout=MS)
    bob.page.fill("#group-name", "dev")
    bob.page.click("#group-join")
    bob.page.wait_for_selector(".nav button.active[data-key='#dev']", timeout=MS)
    confab(server, "group", "join", "--user", "carol", "--password", "carol-pw", "dev")
    alice.open("all")
    bob.send("standup in 5")
    alice.wait_badge("#dev", 1)
    bot_saw(bot, "standup in 5", "#dev", "bob")
    alice.open("#dev")
    alice.wait_text("standup in 5")
    alice.page.wait_for_function("() => !document.querySelector(\".nav button[data-key='#dev'] .badge\")",
                                 timeout=MS)

    # A direct message: bob sees it, carol never does. Bob turned on
    # notifications and his tab is hidden: he is notified.
    bob.context.grant_permissions(["notifications"], origin=server.url.rstrip("/"))
    bob.page.reload()
    bob.wait_ready()
    assert bob.page.text_content("#notify-button") == "Notifications on"
    bob.page.evaluate("""() => {
        window.shown = [];
        const Real = window.Notification;
        window.Notification = class extends Real {
            constructor(title, options) { window.shown.push([title, options.body]); super(title, options); }
        };
        Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
    }""")
    alice.open("@bob")
    alice.send("psst, bob: the password is swordfish")
    bob.page.wait_for_function("() => window.shown.length > 0", timeout=MS)
    assert bob.page.evaluate("window.shown") == [["confab: alice", "psst, bob: the password is swordfish"]]
    bob.page.evaluate("() => { delete document.hidden; }")
    bob.wait_badge("@alice", 1)
    bob.open("@alice")
    bob.wait_text("psst, bob: the password is swordfish")
    # Shift+Enter is a new line; Enter sends; the input keeps the focus.
    bob.page.fill("#input", "line one")
    bob.page.press("#input", "Shift+Enter")
    bob.page.type("#input", "line two")
    bob.page.press("#input", "Enter")
    alice.wait_text("line one\nline two")
    assert bob.page.evaluate("document.activeElement.id") == "input"
    assert bob.page.input_value("#input") == ""
    # Keyboard only: Tab reaches the Send button with a visible focus ring;
    # a conversation is a <button> that Enter opens.
    bob.page.keyboard.press("Tab")
    assert bob.page.evaluate("document.activeElement.id") == "send-button"
    assert bob.page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    bob.page.keyboard.press("Shift+Tab")
    assert bob.page.evaluate("document.activeElement.id") == "input"
    assert bob.page.locator("button:not([type])").count() == 0, "a button without a type"
    bob.page.focus(".nav button[data-key='all']")
    bob.page.keyboard.press("Enter")
    bob.page.wait_for_function("() => document.getElementById('conv-title').textContent === 'all'",
                               timeout=MS)
    assert bob.page.evaluate("document.activeElement.id") == "input", "opening a conversation moves the focus to the input"

    # Markup in a body is text.
    alice.open("all")
    bob.send(XSS)
    bot_saw(bot, XSS, "all", "bob")
    alice.wait_text(XSS)
    for u in (alice, bob):
        assert u.count(XSS) == 1
        assert u.page.locator("#messages img").count() == 0, "a message body became an <img>"
    bot_saw(bot, XSS, "all", "bob")
    # Messages arrive in id order, so by now carol would have the DM.
    assert not [e for e in bot.messages() if "swordfish" in e["body"]], "the DM reached a third party"
    assert [e["body"] for e in bot.messages()] == ["hello room", "standup in 5", XSS]

    # Unread counts on the desktop screenshot: alice looks at the room.
    bob.open("#dev")
    bob.send("the build on main is green again")
    bob.send("reviewing the tmux test now")
    bob.open("@alice")
    bob.send("lunch at noon?")
    confab(server, "send", "--user", "carol", "--password", "carol-pw", "--to", "all", "deployed 1.4 to staging")
    alice.wait_text("deployed 1.4 to staging")
    alice.wait_badge("#dev", 2)
    alice.wait_badge("@bob", 1)
    SHOTS.mkdir(parents=True, exist_ok=True)
    alice.page.screenshot(path=str(SHOTS / "page-desktop.png"))

    # The server stops (the pages are told, SHUTDOWN) and starts again on
    # the same ports while the browsers are offline; meanwhile carol posts
    # and bob writes a message that can only be sent later.
    bot_ids = [e["id"] for e in bot.messages()]
    assert server.stop() == 0, "the server did not stop cleanly"
    for u in (alice, bob):
        u.page.wait_for_selector("#status.waiting", timeout=MS)
        u.page.wait_for_function("() => document.getElementById('banner-text').textContent"
                                 ".includes('shutting down')", timeout=MS)
        u.context.set_offline(True)
    server.start(tcp=server.tcp, web=server.web)
    confab(server, "send", "--user", "carol", "--password", "carol-pw", "--to", "all", "while you were away")
    confab(server, "send", "--user", "carol", "--password", "carol-pw", "--to", "#dev", "dev while away")
    bob.open("all")
    bob.send("queued while offline", acked=False)
    bob.page.wait_for_selector("#messages li.msg.pending", timeout=MS)
    assert bob.page.locator("#messages li.msg.pending").count() == 1
    for u in (alice, bob):
        u.context.set_offline(False)
    for u in (alice, bob):
        u.wait_ready()
        u.open("all")
        u.wait_text("while you were away")
        u.wait_text("queued while offline")
        u.open("#dev")
        u.wait_text("dev while away")
    for u in (alice, bob):
        u.open("all")
        for body in ("hello room", XSS, "deployed 1.4 to staging", "while you were away", "queued while offline"):
            assert u.count(body) == 1, f"{u.name} shows {body!r} {u.count(body)} times"
        assert u.page.locator("#messages li.msg[data-local]").count() == 0, "a send is still pending"
        u.open("#dev")
        for body in ("standup in 5", "dev while away"):
            assert u.count(body) == 1, f"{u.name} shows {body!r} {u.count(body)} times"
    history = confab(server, "history", "--user", "carol", "--password", "carol-pw", "--to", "all").stdout
    assert history.count('"queued while offline"') == 1, "the resent SEND2 was stored more than once"
    assert bot_ids, "carol's listener saw messages before the restart"

    # Older history by scrolling up, on a phone-sized screen.
    lines = "".join(f"bulk {i}\n" for i in range(1, 71))
    confab(server, "send", "--user", "carol", "--password", "carol-pw", "--to", "#dev", "-", input_text=lines)
    phone = User(browser, server, "alice", "alice-pw", viewport=(390, 844),
                 state=alice.context.storage_state())
    phone.wait_ready()
    assert not phone.page.locator("#nav").is_visible(), "the conversation list is not collapsed at 390 px"
    phone.page.click("#toggle-nav")
    phone.page.wait_for_selector("#nav.open", state="visible", timeout=MS)
    phone.open("#dev")
    assert not phone.page.locator("#nav").is_visible(), "the list stays open after choosing a conversation"
    phone.wait_text("bulk 70")
    assert phone.count("standup in 5") == 0, "the first page already held everything"
    phone.page.wait_for_function("() => { const m = document.getElementById('messages');"
                                 " m.scrollTop = 0; return [...m.querySelectorAll('.text')]"
                                 ".some(e => e.textContent === 'bulk 1'); }", timeout=MS, polling=200)
    assert phone.count("bulk 1") == 1 and phone.count("standup in 5") == 1
    phone.page.click("#toggle-nav")
    phone.open("all")
    phone.wait_text("queued while offline")
    phone.page.screenshot(path=str(SHOTS / "page-phone.png"))

    # Logging out forgets the token and revokes the device: alice's other
    # page (the same browser's token) is signed out too.
    phone.page.click("#logout-button")
    phone.page.wait_for_selector("#login", state="visible", timeout=MS)
    assert phone.page.evaluate("localStorage.getItem('confab.creds')") is None
    alice.page.wait_for_selector("#login", state="visible", timeout=MS)
    assert "revoked" in alice.page.text_content("#login-error") or "Log in again" in alice.page.text_content("#login-error")

    for u in (alice, bob, phone):
        assert not u.dialogs, f"{u.name}'s page opened dialogs: {u.dialogs}"
        assert not u.errors, f"{u.name}'s page logged errors: {u.errors}"
        u.context.close()
    bot.stop()


# ---- a foreign origin ----

class _Handler(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


def test_a_page_of_another_origin_cannot_connect(browser, server):
    script = f"""<!doctype html><title>waiting</title><script>
      const ws = new WebSocket('ws://{server.web}/ws', 'confab.v2');
      ws.onopen = () => {{ document.title = 'open'; }};
      ws.onclose = () => {{ if (document.title !== 'open') document.title = 'refused'; }};
    </script>"""
    handler = type("H", (_Handler,), {"body": script.encode()})
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        ctx = browser.new_context()
        page = ctx.new_page()
        page.goto(f"http://127.0.0.1:{other.server_address[1]}/")
        page.wait_for_function("() => document.title !== 'waiting'", timeout=MS)
        assert page.title() == "refused", "a page of another origin opened the WebSocket"
        # The same script from the server's own origin does connect.
        own = ctx.new_page()
        own.goto(server.url)
        assert own.evaluate(f"""() => new Promise(r => {{
            const ws = new WebSocket('ws://{server.web}/ws', 'confab.v2');
            ws.onopen = () => {{ r(ws.protocol); ws.close(); }}; ws.onclose = () => r('refused'); }})""") == "confab.v2"
        ctx.close()
    finally:
        other.shutdown()


# ---- a server that misbehaves (Playwright stands in for it at /ws) ----

def _frame(t, body):
    return struct.pack(">IB", len(body) + 1, t) + body


def _name(s):
    return bytes([len(s)]) + s.encode()


def _text(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


ROOM_T = b"\x00\x00"


def test_bad_server_frames_are_shown_and_bounded(browser, server):
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(server.url)
    page.evaluate("localStorage.setItem('confab.creds', JSON.stringify("
                  "{user: 'mock', device: 'web-mock', token: '11'.repeat(32)}))")
    sockets, closed, history_refs, sends = [], [], [], []

    def on_message(ws, m):
        t, ref = m[4], m[5:9]
        if t == 0x10:  # HELLO
            ws.send(_frame(0x40, struct.pack(">H", 2) + _name("mock") + b"\x01" +
                           struct.pack(">IIHHHHHI", 65536, 1024, 4096, 20, 50, 64, 200, 60000)))
        elif t == 0x1B:  # LOGIN2 by token: logged in, roster, caught up, 3 missed
            ws.send(_frame(0x4E, ref + _name("mock") + b"\x00" + b"\x00" + struct.pack(">Q", 0)) +
                    _frame(0x43, struct.pack(">QBH", 1, 1, 1) + _name("mock")) +
                    _frame(0x4A, struct.pack(">Q", 9)) +
                    _frame(0x4B, ROOM_T + struct.pack(">QQI", 5, 9, 3)))
        elif t == 0x1C:  # SEND2: the first copy goes unanswered, a repeat is ACKed
            sends.append(m[9:17])
            if len(sends) > 1:
                ws.send(_frame(0x45, ref + struct.pack(">QQ", 20, 1_700_000_000_000)))
        elif t == 0x18:  # GROUP_LIST_REQUEST
            ws.send(_frame(0x48, ref + struct.pack(">H", 0)))
        elif t == 0x1A:  # HISTORY_REQUEST
            before = struct.unpack(">Q", m[11:19])[0]
            history_refs.append(before)
            msgs = [(i, f"missed {i}") for i in (9, 7, 5) if i < before] if before else [(2, "older one")]
            body = b"".join(struct.pack(">QQ", i, 1_700_000_000_000) + _name("bob") + _text(s) for i, s in msgs)
            ws.send(_frame(0x49, ref + ROOM_T + b"\x00" + struct.pack(">H", len(msgs)) + body))

    def handler(ws):
        sockets.append(ws)
        ws.on_message(lambda m: on_message(ws, m))
        ws.on_close(lambda code, reason: closed.append(code))

    page.route_web_socket("**/ws", handler)
    page.reload()
    page.wait_for_selector("#status.ready", timeout=MS)
    # MISSED: "N messages not delivered", and a button that loads them.
    note = page.wait_for_selector("#messages li.note", timeout=MS)
    assert note.text_content().startswith("3 messages not delivered")
    page.click("#messages li.note button")
    for i in (5, 7, 9):
        page.wait_for_selector(f"#messages li.msg[data-id='{i}']", timeout=MS)
    assert page.locator("#messages li.note").count() == 0
    assert 10 in history_refs, f"the missed range was not asked for: {history_refs}"
    # A send with no ACK when the connection drops is sent again after the
    # reconnect, with the same client id (so the server stores it once).
    page.fill("#input", "retry me")
    page.press("#input", "Enter")
    deadline = time.monotonic() + WAIT
    while not sends and time.monotonic() < deadline:
        page.wait_for_timeout(50)  # polls Playwright's events, not a fixed wait
    sockets[-1].close()
    page.wait_for_selector("#messages li.msg[data-id='20']", timeout=MS)
    assert len(sends) == 2 and sends[0] == sends[1], f"resent with other client ids: {sends}"
    assert page.locator("#messages li.msg[data-local]").count() == 0
    # Errors and SHUTDOWN in plain words.
    ws = sockets[-1]
    ws.send(_frame(0x4C, struct.pack(">HII", 31, 0, 2000) + _text("busy")))
    page.wait_for_function("() => document.getElementById('banner-text').textContent.includes('busy')",
                           timeout=MS)
    assert "Try again in 2 s" in page.text_content("#banner-text")
    # A length prefix of 4 GiB: shown, and the page closes the socket
    # instead of buffering; then it reconnects by itself.
    ws.send(b"\xff\xff\xff\xff\x46")
    page.wait_for_function("() => document.getElementById('banner-text').textContent"
                           ".includes('cannot read')", timeout=MS)
    deadline = time.monotonic() + WAIT
    while (not closed or len(sockets) < 2) and time.monotonic() < deadline:
        page.wait_for_timeout(50)  # polls Playwright's events, not a fixed wait
    assert closed, "the page kept the socket open after an oversized frame"
    assert len(sockets) >= 2, "the page did not reconnect"
    page.wait_for_selector("#status.ready", timeout=MS)
    sockets[-1].send(_frame(0x4D, struct.pack(">I", 60000) + _text("maintenance")))
    page.wait_for_function("() => document.getElementById('banner-text').textContent"
                           ".includes('shutting down (maintenance)')", timeout=MS)
    page.wait_for_selector("#status.waiting", timeout=MS)
    assert "reconnecting in 60 s" in page.text_content("#status"), page.text_content("#status")
    ctx.close()


# ---- size and first paint ----

def test_page_size_and_first_paint(browser, server):
    files = sorted(p for p in (ROOT / "web" / "static").rglob("*") if p.is_file())
    total = sum(p.stat().st_size for p in files)
    ctx = browser.new_context()
    page = ctx.new_page()
    t0 = time.monotonic()
    page.goto(server.url)
    page.wait_for_selector("#login-user", state="visible", timeout=MS)
    paint = page.evaluate("""() => Object.fromEntries(performance.getEntriesByType('paint')
                               .map(e => [e.name, e.startTime]))""")
    transferred = page.evaluate("""() => performance.getEntriesByType('navigation')
        .concat(performance.getEntriesByType('resource')).reduce((s, e) => s + e.transferSize, 0)""")
    print(f"\npage: {len(files)} files, {total} bytes on disk, {transferred} bytes transferred; "
          f"first paint {paint.get('first-paint', -1):.0f} ms, first contentful paint "
          f"{paint.get('first-contentful-paint', -1):.0f} ms; loaded in {1000 * (time.monotonic() - t0):.0f} ms")
    assert total < 150 * 1024, f"the page is {total} bytes"
    assert 0 < transferred < 150 * 1024, f"{transferred} bytes transferred"
    assert "first-contentful-paint" in paint
    ctx.close()


# ---- an operator's deletion and announcement ----

def test_a_deleted_message_shows_who_deleted_it_and_an_announcement_shows_in_the_banner(browser, server):
    import subprocess
    from harness import binary, clean_env
    u = User(browser, server, "pia", "pia-pw").register()
    confab(server, "send", "--user", "oscar", "--password", "oscar-pw", "--register", "--to", "all",
           "buy my coins")
    u.wait_text("buy my coins")
    msg_id = u.page.evaluate(
        "() => [...document.querySelectorAll('#messages li.msg[data-id]')]"
        ".find(li => li.textContent.includes('buy my coins')).dataset.id")

    def operator(*args):
        out = subprocess.run([binary("confab-server"), "--data-dir", str(server.data_dir), *args],
                             capture_output=True, text=True, timeout=WAIT, env=clean_env(server.tmp))
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert f"deleted message {msg_id}" in operator("delete", msg_id, "--reason", "spam")
    u.wait_text("(deleted by operator)")
    assert u.count("buy my coins") == 0, "the body is hidden"
    operator("announce", "maintenance at noon")
    u.page.wait_for_function(
        "() => !document.getElementById('banner').hidden && "
        "document.getElementById('banner-text').textContent.includes('Announcement: maintenance at noon')",
        timeout=MS)
    assert not u.errors, u.errors
    u.context.close()
