//! The server's listening sockets: the confab port and, with
//! `--web-listen`, the web port, accepted from by one loop (`server.rs`).

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};

use async_io::Async;
use futures_lite::future;

/// Binds `addr`; returns the listener and the address actually bound.
pub(crate) fn bind(addr: SocketAddr) -> io::Result<(Async<TcpListener>, SocketAddr)> {
    let listener = Async::<TcpListener>::bind(addr)?;
    let bound = listener.get_ref().local_addr()?;
    Ok((listener, bound))
}

/// The confab port and the web port, if any.
pub(crate) struct Listeners {
    pub(crate) tcp: Async<TcpListener>,
    pub(crate) web: Option<Async<TcpListener>>,
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
