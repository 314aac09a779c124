// app.js: the confab page. The protocol lives in client.js and protocol.js;
// this file keeps the conversations and draws them. Message bodies and names
// are text, never markup: the DOM is built with textContent only.

import { Client, wsUrl } from "./client.js";
import { ROOM, group, user, targetKey, validName } from "./protocol.js";

const $ = (id) => document.getElementById(id);
const client = new Client(wsUrl());
const PAGE = 50;

let convs = new Map(); // key -> conversation
let active = "all";
let online = new Map(); // lower-case name -> spelling
let markers = new Map(); // key -> id read up to
let allGroups = [];
let stuck = true; // the view follows new messages unless the user scrolled up
let firstReady = true;
const lc = (s) => s.toLowerCase();
const isMe = (name) => client.me && lc(name) === lc(client.me);

// ---- conversations ----

function conv(target) {
  const key = targetKey(target);
  let c = convs.get(key);
  if (!c) {
    c = { key, target, title: key === "all" ? "all" : key[0] + target.name, msgs: new Map(),
      local: new Map(), more: undefined, loading: false, loaded: false, notes: [] };
    convs.set(key, c);
    if (target.kind === 2) rememberDm(target.name);
  }
  return c;
}

function dmStoreKey() { return "confab.dms." + lc(client.me || ""); }
function rememberDm(name) {
  if (!client.me) return;
  const list = JSON.parse(localStorage.getItem(dmStoreKey()) || "[]");
  if (!list.some((n) => lc(n) === lc(name))) {
    list.push(name);
    localStorage.setItem(dmStoreKey(), JSON.stringify(list));
  }
}

// The conversation a message belongs to: for a DM, the other party.
function convOf(sender, target) {
  if (target.kind !== 2) return conv(target);
  return conv(user(isMe(sender) ? target.name : sender));
}

function addMessage(c, m) {
  if (c.msgs.has(m.id)) return false; // ids are unique: a replayed message is shown once
  c.msgs.set(m.id, { id: m.id, ts: m.ts, sender: m.sender, body: m.body });
  return true;
}

function unread(c) {
  const mark = markers.get(c.key) || 0;
  let n = 0;
  for (const m of c.msgs.values()) if (m.id > mark && !isMe(m.sender)) n++;
  return n;
}

function newestId(c) {
  let max = 0;
  for (const id of c.msgs.keys()) if (id > max) max = id;
  return max;
}

function oldestId(c) {
  let min = 0;
  for (const id of c.msgs.keys()) if (!min || id < min) min = id;
  return min;
}

function loadInitial(c) {
  if (c.loaded || c.loading) return;
  if (client.history(c.target, 0, PAGE, { kind: "initial" })) c.loading = true;
}

function loadOlder(c) {
  if (c.loading || c.more === false) return;
  if (client.history(c.target, oldestId(c), PAGE, { kind: "older" })) { c.loading = true; draw(); }
}

function loadMissed(c, note) {
  if (note.loading) return;
  const before = note.next || note.last + 1;
  if (client.history(c.target, before, Math.min(note.count, client.limits.history_page_max || 200),
    { kind: "missed", note })) { note.loading = true; draw(); }
}

function markRead() {
  const c = convs.get(active);
  if (!c || document.hidden || !stuck || client.phase !== "ready") return;
  const id = newestId(c);
  if (id > (markers.get(c.key) || 0)) {
    markers.set(c.key, id);
    client.markRead(c.target, id);
    draw(false);
  }
}

function select(key) {
  if (!convs.has(key)) return;
  active = key;
  stuck = true;
  $("nav").classList.remove("open");
  $("toggle-nav").setAttribute("aria-expanded", "false");
  loadInitial(convs.get(key));
  draw(true);
  $("input").focus();
}

// ---- events from the client ----

client.on = (ev) => {
  switch (ev.type) {
    case "status": showStatus(ev); break;
    case "logged_in":
      $("whoami").textContent = `${ev.user} · ${ev.device}`;
      conv(ROOM);
      for (const n of JSON.parse(localStorage.getItem(dmStoreKey()) || "[]")) conv(user(n));
      for (const [key, e] of client.outbox) conv(e.target).local.set(key, { key, body: e.body, ts: e.at });
      break;
    case "read_marker": markers.set(targetKey(ev.target), Math.max(ev.id, markers.get(targetKey(ev.target)) || 0)); draw(false); break;
    case "roster":
      online = new Map(ev.users.map((u) => [lc(u), u]));
      draw(false);
      break;
    case "presence":
      if (ev.online) online.set(lc(ev.user), ev.user); else online.delete(lc(ev.user));
      draw(false);
      break;
    case "message": onMessage(ev.msg); break;
    case "missed": {
      const c = ev.target.kind === 2 ? conv(user(ev.target.name)) : conv(ev.target);
      c.notes.push({ first: ev.first, last: ev.last, count: ev.count });
      draw(c.key === active);
      break;
    }
    case "ready":
      client.groupList();
      if (firstReady) {
        firstReady = false;
        for (const c of convs.values()) if (c.key === "all" || c.key[0] === "@") loadInitial(c);
      }
      draw(true);
      break;
    case "caught_up": draw(true); break;
    case "ack": onAck(ev); break;
    case "send_failed": {
      for (const c of convs.values()) {
        const l = c.local.get(ev.key);
        if (l) { l.failed = ev.text; draw(c.key === active); }
      }
      break;
    }
    case "history": onHistory(ev); break;
    case "history_failed": { const c = convs.get(targetKey(ev.target)); if (c) { c.loading = false; c.more = false; draw(c.key === active); } break; }
    case "groups": onGroups(ev.groups); break;
    case "group_ok": onGroupOk(ev); break;
    case "group_event":
      if (isMe(ev.user)) {
        if (ev.change === 1) loadInitial(conv(group(ev.group)));
        else dropGroup(ev.group);
      }
      client.groupList();
      break;
    case "notice": banner(ev.text, ev.level); break;
    case "deleted":
      for (const c of convs.values()) {
        const m = c.msgs.get(ev.id);
        if (m) { m.deletedBy = ev.by; draw(c.key === active); }
      }
      break;
    case "signed_out": resetState(); showLogin(ev.text); break;
    default: break;
  }
};

function onMessage(m) {
  const c = convOf(m.sender, m.target);
  if (!addMessage(c, m)) return;
  if (m.target.kind === 2 && !isMe(m.sender) && document.hidden && "Notification" in window &&
      Notification.permission === "granted") {
    try { new Notification(`confab: ${m.sender}`, { body: m.body, tag: "confab-" + c.key }); } catch (_) { /* not allowed here */ }
  }
  draw(c.key === active);
}

function onAck(ev) {
  const c = conv(ev.target);
  c.local.delete(ev.key);
  addMessage(c, { id: ev.id, ts: ev.ts, sender: client.me, body: ev.body });
  if (c.key === active) { markers.set(c.key, Math.max(markers.get(c.key) || 0, ev.id)); }
  draw(c.key === active);
}

function onHistory(ev) {
  const c = conv(ev.target);
  const why = ev.why || { kind: "older" };
  for (const m of ev.messages) addMessage(c, m);
  if (why.kind === "missed") {
    const note = why.note;
    note.loading = false;
    const ids = ev.messages.map((m) => m.id);
    const min = ids.length ? Math.min(...ids) : 0;
    if (ev.more && min > note.first) { note.next = min; loadMissed(c, note); }
    else c.notes = c.notes.filter((n) => n !== note);
  } else {
    c.loading = false;
    c.loaded = true;
    if (why.kind === "older" || c.more === undefined) c.more = ev.more;
  }
  draw(c.key === active, why.kind === "older" ? "keep-bottom" : "");
}

function onGroups(groups) {
  allGroups = groups;
  const member = new Set(groups.filter((g) => g.is_member).map((g) => lc(g.group)));
  for (const g of groups) if (g.is_member) loadInitial(conv(group(g.group)));
  for (const c of [...convs.values()]) if (c.target.kind === 1 && !member.has(lc(c.target.name))) dropGroup(c.target.name);
  draw(false);
}

function onGroupOk(ev) {
  if (ev.op === "leave") {
    dropGroup(ev.group);
  } else {
    const c = conv(group(ev.group));
    loadInitial(c);
    select(c.key);
  }
  client.groupList();
}

function dropGroup(name) {
  const key = targetKey(group(name));
  convs.delete(key);
  if (active === key) active = "all";
  draw(true);
}

// ---- drawing ----

let drawQueued = false;
let drawMessages = false;
let scrollMode = "";
function draw(messagesToo = true, mode = "") {
  drawMessages = drawMessages || messagesToo;
  if (mode) scrollMode = mode;
  if (drawQueued) return;
  drawQueued = true;
  setTimeout(() => { // not requestAnimationFrame: a hidden tab must keep its DOM (and unread counts) current
    drawQueued = false;
    renderNav();
    if (drawMessages) renderMessages(scrollMode);
    drawMessages = false;
    scrollMode = "";
    markRead();
  }, 0);
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function navButton(c, label, dot) {
  const li = el("li");
  const b = el("button", c && c.key === active ? "active" : "");
  b.type = "button";
  if (dot !== undefined) b.append(el("span", dot ? "dot online" : "dot"));
  b.append(el("span", "label", label));
  if (c) {
    b.dataset.key = c.key;
    const n = unread(c);
    if (n) {
      b.append(el("span", "badge", String(n)));
      b.setAttribute("aria-label", `${label}, ${n} unread`);
    }
    if (c.key === active) b.setAttribute("aria-current", "true");
  }
  li.append(b);
  return [li, b];
}

function renderNav() {
  const focusedKey = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.key : null;
  const list = $("conv-list");
  list.replaceChildren();
  const groups = [...convs.values()].filter((c) => c.target.kind === 1).sort((a, b) => a.key.localeCompare(b.key));
  for (const c of [convs.get("all"), ...groups]) {
    if (!c) continue;
    const [li, b] = navButton(c, c.title);
    b.addEventListener("click", () => select(c.key));
    list.append(li);
  }
  const people = new Map(online);
  for (const c of convs.values()) if (c.target.kind === 2 && !people.has(lc(c.target.name))) people.set(lc(c.target.name), c.target.name);
  const names = [...people.values()].sort((a, b) => (isMe(b) - isMe(a)) || (online.has(lc(b)) - online.has(lc(a))) || a.localeCompare(b));
  const plist = $("people-list");
  plist.replaceChildren();
  for (const name of names) {
    const c = convs.get("@" + lc(name));
    const [li, b] = navButton(c, isMe(name) ? `${name} (you)` : name, online.has(lc(name)));
    b.dataset.key = "@" + lc(name);
    b.title = online.has(lc(name)) ? "online" : "offline";
    b.addEventListener("click", () => select(conv(user(name)).key));
    plist.append(li);
  }
  $("people-title").textContent = `People · ${online.size} online`;
  const glist = $("group-list");
  glist.replaceChildren();
  for (const g of allGroups) {
    const li = el("li", "group-row");
    li.append(el("span", "label", `#${g.group} (${g.members})`));
    const b = el("button", "small secondary", g.is_member ? "Leave" : "Join");
    b.type = "button";
    b.addEventListener("click", () => (g.is_member ? client.groupLeave(g.group) : client.groupJoin(g.group)));
    li.append(b);
    glist.append(li);
  }
  if (!allGroups.length) glist.append(el("li", "muted", "no groups yet"));
  let total = 0;
  for (const c of convs.values()) total += unread(c);
  document.title = total ? `(${total}) confab` : "confab";
  const tb = $("toggle-badge");
  tb.textContent = String(total);
  tb.hidden = !total;
  if (focusedKey) {
    const again = document.querySelector(`.nav button[data-key="${CSS.escape(focusedKey)}"]`);
    if (again) again.focus();
  }
}

function timeText(ts) {
  return new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function messageItem(m, cls) {
  const li = el("li", "msg" + (isMe(m.sender) ? " mine" : "") + (cls ? " " + cls : ""));
  const t = el("time", "", timeText(m.ts));
  t.dateTime = new Date(m.ts).toISOString();
  t.title = new Date(m.ts).toLocaleString();
  const p = el("div");
  // A deleted message (a tombstone's empty body, then DELETED says who).
  const gone = m.deletedBy !== undefined || (m.id !== undefined && m.body === "");
  const text = gone ? el("span", "text deleted", m.deletedBy ? `(deleted by ${m.deletedBy})` : "(deleted)")
    : el("span", "text", m.body);
  p.append(el("span", "who", m.sender), text);
  li.append(t, p);
  return li;
}

function renderMessages(mode) {
  const c = convs.get(active) || convs.get("all");
  const box = $("messages");
  if (!c) { box.replaceChildren(); return; }
  $("conv-title").textContent = c.target.kind === 2 ? `${c.title} (direct messages)` : c.title;
  $("leave-button").hidden = c.target.kind !== 1;
  const fromBottom = box.scrollHeight - box.scrollTop;
  const top = box.scrollTop;
  const items = [];
  items.push(el("li", "older", c.loading ? "Loading older messages…" :
    c.more === false ? "The beginning of this conversation." : "Scroll up for older messages."));
  const msgs = [...c.msgs.values()].sort((a, b) => a.id - b.id);
  const notes = [...c.notes].sort((a, b) => a.first - b.first);
  let day = "";
  let ni = 0;
  for (const m of msgs) {
    while (ni < notes.length && notes[ni].first <= m.id) items.push(noteItem(c, notes[ni++]));
    const d = new Date(m.ts).toLocaleDateString();
    if (d !== day) { day = d; items.push(el("li", "day", d)); }
    const li = messageItem(m);
    li.dataset.id = String(m.id);
    items.push(li);
  }
  while (ni < notes.length) items.push(noteItem(c, notes[ni++]));
  for (const l of c.local.values()) {
    const li = messageItem({ ts: l.ts, sender: client.me || "you", body: l.body }, l.failed ? "failed" : "pending");
    li.dataset.local = l.key;
    li.title = l.failed ? "not sent" : "sending…";
    if (l.failed) li.append(el("span", "fail", `Not sent: ${l.failed}`));
    items.push(li);
  }
  box.replaceChildren(...items);
  if (mode === "jump" || stuck) box.scrollTop = box.scrollHeight;
  else if (mode === "keep-bottom") box.scrollTop = box.scrollHeight - fromBottom;
  else box.scrollTop = top;
  $("jump").hidden = stuck;
}

function noteItem(c, note) {
  const li = el("li", "note");
  li.append(el("span", "", `${note.count} message${note.count === 1 ? "" : "s"} not delivered`));
  const b = el("button", "small", note.loading ? "loading…" : "load them");
  b.type = "button";
  b.disabled = !!note.loading;
  b.addEventListener("click", () => loadMissed(c, note));
  li.append(b);
  return li;
}

function showStatus(ev) {
  const s = $("status");
  s.className = "status " + ev.phase;
  s.textContent = ev.phase === "ready" ? "online" : ev.phase === "waiting"
    ? `offline, reconnecting in ${Math.max(1, Math.round(ev.delay / 1000))} s` : "connecting…";
}

let bannerTimer = null;
function banner(text, level = "error") {
  $("banner-text").textContent = text;
  $("banner").className = "banner" + (level === "warn" ? " warn" : "");
  $("banner").hidden = false;
  clearTimeout(bannerTimer);
  bannerTimer = setTimeout(() => { $("banner").hidden = true; }, 15000);
}

// ---- screens ----

function resetState() {
  convs = new Map();
  online = new Map();
  markers = new Map();
  allGroups = [];
  active = "all";
  firstReady = true;
  client.lastId = 0;
  client.outbox.clear();
}

function showLogin(message = "") {
  $("chat").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message;
  $("login-user").focus();
}

function showChat() {
  $("login").hidden = true;
  $("chat").hidden = false;
  draw(true);
  $("input").focus();
}

async function submitLogin(register) {
  const name = $("login-user").value.trim();
  const password = $("login-password").value;
  if (!validName(name)) {
    $("login-error").textContent = "A user name is 1 to 32 letters, digits, _ - or . and starts with a letter or digit.";
    return;
  }
  if (!password || new TextEncoder().encode(password).length > 255) {
    $("login-error").textContent = "A password is 1 to 255 bytes.";
    return;
  }
  $("login-error").textContent = register ? "Registering…" : "Logging in…";
  $("login-button").disabled = $("register-button").disabled = true;
  try {
    resetState();
    await client.loginWithPassword(name, password, register);
    $("login-password").value = "";
    $("login-error").textContent = "";
    showChat();
  } catch (e) {
    $("login-error").textContent = e.message;
  } finally {
    $("login-button").disabled = $("register-button").disabled = false;
  }
}

// ---- input ----

function sendText(text) {
  const line = text.trim();
  if (!line) return true;
  const cmd = line.match(/^\/(\w+)\s*(.*)$/s);
  if (cmd && cmd[1] !== "me") return command(cmd[1], cmd[2]);
  const c = convs.get(active);
  if (!c) return false;
  return sendTo(c, text);
}

function sendTo(c, body) {
  const max = client.limits.max_body || 4096;
  if (new TextEncoder().encode(body).length > max) { banner(`That message is too long (at most ${max} bytes).`); return false; }
  const key = client.send(c.target, body);
  c.local.set(key, { key, body, ts: Date.now() });
  stuck = true;
  draw(c.key === active, "jump");
  return true;
}

function command(name, rest) {
  const [arg, ...more] = rest.split(/\s+/);
  const needName = () => { if (!validName(arg || "")) { banner(`/${name} needs a valid name.`); return false; } return true; };
  switch (name) {
    case "msg": if (!needName() || !more.length) return false; select(conv(user(arg)).key);
      return sendTo(convs.get(active), rest.slice(arg.length).trim());
    case "join": return needName() && !!client.groupJoin(arg);
    case "create": return needName() && !!client.groupCreate(arg);
    case "leave": {
      const c = convs.get(active);
      const g = arg || (c && c.target.kind === 1 ? c.target.name : "");
      if (!validName(g)) { banner("/leave needs a group."); return false; }
      return !!client.groupLeave(g);
    }
    case "logout": doLogout(); return true;
    default: banner(`Unknown command /${name}. Commands: /msg USER TEXT, /join G, /create G, /leave [G], /logout.`); return false;
  }
}

function doLogout() {
  client.logout();
  resetState();
  showLogin("Logged out. This browser no longer holds a token.");
}

function autosize() {
  const t = $("input");
  t.rows = Math.min(6, Math.max(1, t.value.split("\n").length));
}

function wire() {
  $("login-form").addEventListener("submit", (e) => { e.preventDefault(); submitLogin(false); });
  $("register-button").addEventListener("click", () => submitLogin(true));
  $("compose").addEventListener("submit", (e) => {
    e.preventDefault();
    if (sendText($("input").value)) { $("input").value = ""; autosize(); }
    $("input").focus();
  });
  $("input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $("compose").requestSubmit();
    }
  });
  $("input").addEventListener("input", autosize);
  $("messages").addEventListener("scroll", () => {
    const box = $("messages");
    stuck = box.scrollHeight - box.scrollTop - box.clientHeight < 30;
    $("jump").hidden = stuck;
    if (box.scrollTop < 40) { const c = convs.get(active); if (c) loadOlder(c); }
    if (stuck) markRead();
  });
  $("jump").addEventListener("click", () => { stuck = true; draw(true, "jump"); $("input").focus(); });
  $("group-form").addEventListener("submit", (e) => { e.preventDefault(); groupAction("create"); });
  $("group-join").addEventListener("click", () => groupAction("join"));
  $("leave-button").addEventListener("click", () => {
    const c = convs.get(active);
    if (c && c.target.kind === 1) client.groupLeave(c.target.name);
  });
  $("logout-button").addEventListener("click", doLogout);
  $("banner-close").addEventListener("click", () => { $("banner").hidden = true; $("input").focus(); });
  $("toggle-nav").addEventListener("click", () => {
    const open = $("nav").classList.toggle("open");
    $("toggle-nav").setAttribute("aria-expanded", String(open));
    if (open) { const b = document.querySelector(".nav button"); if (b) b.focus(); }
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && $("nav").classList.contains("open")) { $("nav").classList.remove("open"); $("toggle-nav").focus(); }
  });
  document.addEventListener("visibilitychange", markRead);
  const nb = $("notify-button");
  if (!("Notification" in window)) nb.hidden = true;
  else {
    const label = () => { nb.textContent = Notification.permission === "granted" ? "Notifications on" : Notification.permission === "denied" ? "Notifications blocked" : "Notifications"; nb.title = "Desktop notifications for direct messages while this tab is hidden"; nb.disabled = Notification.permission !== "default"; };
    label();
    nb.addEventListener("click", () => Notification.requestPermission().then(label));
  }
}

function groupAction(op) {
  const name = $("group-name").value.trim();
  if (!validName(name)) { banner("A group name is 1 to 32 letters, digits, _ - or . and starts with a letter or digit."); return; }
  if (!(op === "create" ? client.groupCreate(name) : client.groupJoin(name))) { banner("Not connected; try again in a moment.", "warn"); return; }
  $("group-name").value = "";
}

wire();
if (client.loggedIn) { showChat(); client.start(); } else showLogin();
