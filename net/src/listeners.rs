//! The server's listeners: confab's, and the IRC gateway's beside it,
//! accepted from in one loop, each connection tagged with the protocol
//! its sessions start in.

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

/// A listener on `addr`, and the address it got.
pub(crate) fn bind(addr: SocketAddr) -> io::Result<(Async<TcpListener>, SocketAddr)> {
    let listener = Async::<TcpListener>::bind(addr)?;
    let bound = listener.get_ref().local_addr()?;
    Ok((listener, bound))
}
