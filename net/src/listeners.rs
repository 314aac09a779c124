//! The server's listening sockets: the confab port, the IRC gateway's
//! with `--irc-listen` (each connection tagged with the protocol its
//! sessions start in) and, with `--web-listen`, the web port, accepted
//! from by one loop (`server.rs`).

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};

use async_io::Async;
use confab_engine::Protocol;
use futures_lite::future;

/// The IRC listener, its address, and the protocol its sessions start in.
pub(crate) type IrcListener = (Async<TcpListener>, SocketAddr, Protocol);

/// The next connection on either listener, with the protocol it speaks.
pub(crate) async fn accept<E>(
    confab: &Async<TcpListener>,
    irc: Option<&IrcListener>,
    event: impl Fn(io::Result<(Async<TcpStream>, SocketAddr)>, Protocol) -> E,
) -> E {
    let confab = async { event(confab.accept().await, Protocol::CONFAB) };
    let irc = async {
        match irc {
            Some((l, _, p)) => event(l.accept().await, *p),
            None => future::pending().await,
        }
    };
    future::or(confab, irc).await
}

/// Binds `addr`; returns the listener and the address actually bound.
pub(crate) fn bind(addr: SocketAddr) -> io::Result<(Async<TcpListener>, SocketAddr)> {
    let listener = Async::<TcpListener>::bind(addr)?;
    let bound = listener.get_ref().local_addr()?;
    Ok((listener, bound))
}

/// The confab port, the IRC port and the web port, if any.
pub(crate) struct Listeners {
    pub(crate) tcp: Async<TcpListener>,
    pub(crate) web: Option<Async<TcpListener>>,
    pub(crate) irc: Option<IrcListener>,
}

impl Listeners {
    /// The next connection on the web port; never, without one.
    pub(crate) async fn accept_web(&self) -> io::Result<(Async<TcpStream>, SocketAddr)> {
        match &self.web {
            Some(l) => l.accept().await,
            None => future::pending().await,
        }
    }
}
