//! The control socket: `confab-server status`, `kick`, `ban`, `mute`,
//! `user del` ... reach the running server through a Unix socket in the
//! data dir (`control.sock`, owner-only), so that what they change takes
//! effect at once.
//!
//! One request per connection: a line of tab-separated fields (the
//! command line strips tabs and newlines from reasons), answered with
//! lines, the first `ok` or `error: <why>`, then the connection closes.
//!
//! | request | effect |
//! |---|---|
//! | `status` | the lines of [`status_lines`] |
//! | `kick NAME REASON` | the account's sessions get ERROR KICKED |
//! | `ban NAME UNTIL_MS REASON` | sessions closed, logins refused (`UNTIL_MS` empty: for good) |
//! | `unban NAME`, `unmute NAME` | lifted |
//! | `op NAME`, `deop NAME` | the account may send MODERATE, or no longer |
//! | `mute NAME UNTIL_MS REASON` | SENDs refused |
//! | `deleted ID BY SENDER TARGET` | message `ID` (from `SENDER` to `TARGET`: `room`, `group:NAME` or `user:NAME`), tombstoned in the database, is hidden by the clients that see it |
//! | `announce TEXT` | every session logged in gets a NOTICE |
//! | `group ACTION GROUP NAME SECONDS REASON` | a group action the command line committed (`group-remove`, `group-mute`, ...) takes effect |
//! | `revoked ID...` | the sessions of these devices (revoked in the database) get ERROR DEVICE_REVOKED |
//! | `unlock`, `unlock user NAME`, `unlock address IP` | failed-login lockouts (and flood bars) forgotten (on every node of a cluster) |
//! | `ban-address NET UNTIL_MS REASON` | connections from the block closed and turned away |
//! | `unban-address NET` | lifted |
//!
//! The socket only changes the running hub: whatever must outlive a
//! restart (bans, mutes, the audit log) the command line has written to
//! the database before it asks. On one node of several, a sanction, an
//! operator change, a revocation and a group action are also told to the
//! other nodes on the bus, whose hubs apply them alike (`Hub::order`).

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_io::Async;
use confab_engine::effect::StoredMessage;
use confab_engine::hub::Applied;
use confab_engine::{MessageId, Name, Remote, Target};
use futures_lite::io::{AsyncBufReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use futures_lite::{AsyncReadExt, FutureExt};
use log::{info, warn};

use crate::reload::Reload;
use crate::sanctions::until;
use crate::shared::Shared;

/// The socket's file name in the data dir.
pub const SOCKET: &str = "control.sock";

/// The longest request line read.
const MAX_LINE: u64 = 4096;
/// How long a request or its answer may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The bound socket; removes its file when dropped.
pub struct Listener {
    listener: Async<UnixListener>,
    path: PathBuf,
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds `data_dir/control.sock`, owner-only. A socket file left by a
/// server that is gone is replaced; one a running server answers on is
/// an error (two servers on one data dir).
pub fn bind(data_dir: &Path) -> io::Result<Listener> {
    let path = data_dir.join(SOCKET);
    if path.exists() {
        if UnixStream::connect(&path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                "another server is running on this data dir",
            ));
        }
        std::fs::remove_file(&path)?;
    }
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(Listener {
        listener: Async::new(listener)?,
        path,
    })
}

/// Answers requests until dropped.
pub(crate) async fn serve(
    listener: Listener,
    shared: Arc<Shared>,
    started: Instant,
    reloader: Option<Arc<dyn Reload>>,
) {
    info!("control socket {}", listener.path.display());
    loop {
        let stream = match listener.listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                warn!("control socket: accepting failed: {e}");
                async_io::Timer::after(Duration::from_millis(100)).await;
                continue;
            }
        };
        let shared = shared.clone();
        // One at a time: requests are rare and each is one short lock hold.
        let answered = answer(stream, &shared, started, reloader.as_deref())
            .or(async {
                async_io::Timer::after(TIMEOUT).await;
                Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"))
            })
            .await;
        if let Err(e) = answered {
            warn!("control socket: {e}");
        }
    }
}

async fn answer(
    stream: Async<UnixStream>,
    shared: &Shared,
    started: Instant,
    reloader: Option<&dyn Reload>,
) -> io::Result<()> {
    let mut line = String::new();
    let mut reader = AsyncBufReader::new((&stream).take(MAX_LINE));
    reader.read_line(&mut line).await?;
    let whole = line.ends_with('\n');
    let line = line.trim_end_matches(['\r', '\n']);
    let executed = match (line, reloader) {
        _ if !whole => Err(format!("a request is one line of at most {MAX_LINE} bytes")),
        ("reload", Some(r)) => crate::reload::apply(shared, r),
        ("reload", None) => Err("this server has no config file to reload".to_owned()),
        _ => execute(line, shared, started),
    };
    let lines = match executed {
        Ok(mut lines) => {
            lines.insert(0, "ok".to_owned());
            lines
        }
        Err(e) => e.lines().map(|l| format!("error: {l}")).collect(),
    };
    let mut out = lines.join("\n");
    out.push('\n');
    let mut writer = &stream;
    writer.write_all(out.as_bytes()).await?;
    writer.flush().await
}

fn execute(line: &str, shared: &Shared, started: Instant) -> Result<Vec<String>, String> {
    let fields: Vec<&str> = line.split('\t').collect();
    let name = |i: usize| -> Result<Name, String> {
        let field = fields.get(i).copied().unwrap_or("");
        Name::new(field).map_err(|e| format!("bad user name {field:?}: {e}"))
    };
    let text = |i: usize| fields.get(i).copied().unwrap_or("").to_owned();
    match fields.first().copied().unwrap_or("") {
        "status" => Ok(status_lines(shared, started)),
        "kick" => {
            let (user, reason) = (name(1)?, text(2));
            let log = format!("kicked {user}: {reason}");
            order(shared, Remote::Kick { user, reason }, &log)
        }
        "ban" | "mute" => {
            let (user, reason) = (name(1)?, text(3));
            let left = until(fields.get(2).copied().unwrap_or(""))?;
            if fields[0] == "ban" {
                let log = format!("banned {user}: {reason}");
                order(shared, Remote::Ban { user, left, reason }, &log)
            } else {
                let log = format!("muted {user}: {reason}");
                order(shared, Remote::Mute { user, left, reason }, &log)
            }
        }
        "op" | "deop" => {
            let user = name(1)?;
            let operator = fields[0] == "op";
            let log = format!("{} {user}", fields[0]);
            order(shared, Remote::Operator { user, operator }, &log)
        }
        "unban" => order(shared, Remote::Unban { user: name(1)? }, "unban"),
        "unmute" => order(shared, Remote::Unmute { user: name(1)? }, "unmute"),
        "deleted" => {
            let id = fields.get(1).copied().unwrap_or("");
            let id = id
                .parse::<u64>()
                .map_err(|_| format!("bad message id {id:?}"))?;
            let (by, sender) = (name(2)?, name(3)?);
            let target = match fields.get(4).copied().unwrap_or("").split_once(':') {
                None if fields.get(4) == Some(&"room") => Target::Room,
                Some(("group", g)) => Target::Group(name_of(g)?),
                Some(("user", u)) => Target::User(name_of(u)?),
                _ => return Err("the target is room, group:NAME or user:NAME".to_owned()),
            };
            let tombstone = StoredMessage {
                id: MessageId(id),
                timestamp_ms: 0,
                sender,
                target,
                body: String::new(),
                kind: confab_engine::MessageKind::Message,
                tags: confab_engine::ClientTags::default(),
            };
            let n = shared.with_core(|core, _| core.hub.tell_deleted(&tombstone, &by));
            info!("control: {by} deleted message {id} ({n} sessions told)");
            Ok(vec![format!("sessions {n}")])
        }
        "unlock" => {
            let (user, source) = match (fields.get(1).copied(), fields.get(2).copied()) {
                (None | Some(""), _) => (None, None),
                (Some("user"), _) => (Some(name(2)?), None),
                (Some("address"), Some(ip)) => {
                    let ip: std::net::IpAddr =
                        ip.parse().map_err(|e| format!("bad address {ip:?}: {e}"))?;
                    (None, Some(crate::source::source_of(ip)))
                }
                _ => return Err("unlock takes nothing, user NAME or address IP".to_owned()),
            };
            let log = format!("unlocked {user:?} {source:?}");
            order(shared, Remote::Unlock { user, source }, &log)
        }
        "ban-address" => {
            let (text, net) = crate::source::parse_net(fields.get(1).copied().unwrap_or(""))?;
            let left = until(fields.get(2).copied().unwrap_or(""))?;
            let reason = text_of(&fields, 3);
            let log = format!("banned the addresses {text}: {reason}");
            order(shared, Remote::BanAddress { net, left, reason }, &log)
        }
        "unban-address" => {
            let (_, net) = crate::source::parse_net(fields.get(1).copied().unwrap_or(""))?;
            order(shared, Remote::UnbanAddress { net }, "unban-address")
        }
        "group" => {
            use confab_engine::frame::GroupAction;
            let action = match fields.get(1).copied().unwrap_or("") {
                "group-remove" => GroupAction::Remove,
                "group-mute" => GroupAction::Mute,
                "group-unmute" => GroupAction::Unmute,
                "group-appoint" => GroupAction::Appoint,
                "group-dismiss" => GroupAction::Dismiss,
                other => return Err(format!("unknown group action {other:?}")),
            };
            let (group, user) = (name(2)?, name(3)?);
            let seconds = fields.get(4).copied().unwrap_or("0");
            let seconds: u32 = seconds
                .parse()
                .map_err(|_| format!("bad seconds {seconds:?}"))?;
            let op = confab_engine::effect::GroupOp::Moderate {
                group,
                user,
                action,
                seconds,
                reason: text(5),
                by: name_of("operator")?,
            };
            if let Some(cluster) = &shared.effects.cluster {
                cluster.group(op.clone());
            }
            shared.with_core(|core, now| core.hub.handle_group_committed(now, op, None));
            info!("control: {} {user} in #{group}", action.as_str());
            Ok(Vec::new())
        }
        "revoked" => {
            let mut devices = Vec::new();
            for id in &fields[1..] {
                let id: u64 = id.parse().map_err(|_| format!("bad device id {id:?}"))?;
                devices.push(confab_engine::DeviceId(id));
            }
            let n: usize = shared.with_core(|core, now| {
                devices
                    .iter()
                    .map(|&d| match core.hub.order(now, Remote::DeviceRevoked(d)) {
                        Applied::Closed(n) => n,
                        _ => 0,
                    })
                    .sum()
            });
            info!(
                "control: {} devices revoked ({n} sessions closed)",
                devices.len()
            );
            Ok(vec![format!("sessions {n}")])
        }
        "announce" => {
            let notice = text(1);
            if notice.is_empty() {
                return Err("an announcement needs a text".to_owned());
            }
            let n = shared.with_core(|core, _| core.hub.announce(&notice));
            info!("control: announced to {n} sessions: {notice}");
            Ok(vec![format!("sessions {n}")])
        }
        other => Err(format!("unknown request {other:?}")),
    }
}

/// Applies an operator's action to this node's hub, which tells the other
/// nodes of a cluster too; the answer's lines say what it did here.
fn order(shared: &Shared, remote: Remote, log: &str) -> Result<Vec<String>, String> {
    let applied = shared.with_core(|core, now| core.hub.order(now, remote));
    info!("control: {log} ({applied:?})");
    Ok(match applied {
        Applied::Closed(n) => vec![format!("sessions {n}")],
        Applied::Lifted(had) => vec![format!("lifted {had}")],
        Applied::Cleared(n) => vec![format!("entries {n}")],
        Applied::Done => Vec::new(),
    })
}

fn text_of(fields: &[&str], i: usize) -> String {
    fields.get(i).copied().unwrap_or("").to_owned()
}

fn name_of(field: &str) -> Result<Name, String> {
    Name::new(field).map_err(|e| format!("bad name {field:?}: {e}"))
}

/// What `confab-server status` prints, one `key value...` per line.
fn status_lines(shared: &Shared, started: Instant) -> Vec<String> {
    let stats = shared.with_core(|core, now| core.hub.stats(now));
    let effects = &shared.effects;
    let sessions: Vec<String> = stats
        .sessions_per_user
        .iter()
        .map(|(user, n)| format!("{user}={n}"))
        .collect();
    let per_protocol: Vec<String> = stats
        .per_protocol
        .iter()
        .enumerate()
        .map(|(i, n)| match i {
            0 => format!("confab={n}"),
            i => format!("protocol{i}={n}"),
        })
        .collect();
    vec![
        format!("uptime_seconds {}", started.elapsed().as_secs()),
        format!("connections {}", stats.connections),
        format!("connections_per_protocol {}", per_protocol.join(" ")),
        format!("logged_in {}", stats.logged_in),
        format!("users_online {}", stats.sessions_per_user.len()),
        format!("sessions_per_user {}", sessions.join(" ")),
        format!("send_queue_bytes {}", stats.queued_bytes),
        format!("deepest_send_queue_bytes {}", stats.deepest_queue),
        format!("storage_write_queue {}", effects.writes.len()),
        format!("storage_read_queue {}", effects.reads.len()),
        format!("auth_queue {}", effects.auth.len()),
        format!(
            "lockouts pairs={} accounts={} addresses={}",
            stats.lockouts.0, stats.lockouts.1, stats.lockouts.2
        ),
        format!("registrations_charged {}", stats.registrations_charged),
        format!("bans {}", stats.bans),
        format!("address_bans {}", stats.address_bans),
        format!("mutes {}", stats.mutes),
    ]
}

/// The command line's side: sends `fields` to the server running on
/// `data_dir`. `Ok(None)`: no server runs there. `Ok(Some(lines))`: its
/// answer after `ok`; an `error:` answer is `Err`.
pub fn request(data_dir: &Path, fields: &[&str]) -> io::Result<Option<Vec<String>>> {
    let stream = match UnixStream::connect(data_dir.join(SOCKET)) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let line: Vec<String> = fields.iter().map(|f| clean(f)).collect();
    (&stream).write_all(format!("{}\n", line.join("\t")).as_bytes())?;
    let mut lines = Vec::new();
    for l in BufReader::new(&stream).lines() {
        lines.push(l?);
    }
    match lines.first().map(String::as_str) {
        Some("ok") => Ok(Some(lines.split_off(1))),
        Some(_) => {
            let errors: Vec<&str> = lines
                .iter()
                .map(|l| l.strip_prefix("error: ").unwrap_or(l))
                .collect();
            Err(io::Error::other(errors.join("\n")))
        }
        None => Err(io::Error::other(
            "the server closed the control socket without answering",
        )),
    }
}

/// A field without the tabs and line breaks that delimit requests.
fn clean(field: &str) -> String {
    field
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
