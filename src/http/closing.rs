//! Closing a connection after an answer, and never serving it again.
//!
//! tiny_http keeps a connection open unless the request asked otherwise, and
//! it starts reading the next request from it as soon as the current request
//! lets go of its body reader. Those next bytes may already sit in
//! tiny_http's read buffer. When tinymon must close a connection (a request
//! with ambiguous framing, whose "body" may be a smuggled request; a body too
//! large; draining at shutdown), it therefore cannot rely on stopping the
//! reads in time. Instead, before it lets go of the request:
//!
//! 1. it finds the connection's socket by the peer address (the request is
//!    still held, so tiny_http cannot have closed that socket, and a local
//!    port plus peer address names exactly one established connection), and
//!    pins it with a duplicate descriptor ([`super::socket`]);
//! 2. it marks the socket as doomed, by peer address and socket inode.
//!
//! Then it writes its answer with `Connection: close` and shuts the socket
//! down. A request that tiny_http still parses from that connection reaches a
//! worker, which finds it doomed ([`Closing::is_doomed`]) and drops it
//! unanswered and unserved. A new connection that happens to reuse the
//! client's address has another inode, so it is served.
//!
//! The request path pays one atomic load while nothing is doomed. Doomed
//! entries are dropped once their socket is gone (the guard prunes them
//! every tick), so the list is bounded by the open connections.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::socket::{for_each_connection, ConnSocket};

/// Connections being closed, by peer address and socket inode.
pub(crate) struct Closing {
    port: u16,
    /// `doomed.len()`, readable without the lock. Release on store, Acquire
    /// on load: a worker that sees 0 may skip the list; one that sees more
    /// takes the lock, which orders everything else.
    count: AtomicUsize,
    doomed: Mutex<Vec<(SocketAddr, u64)>>,
}

impl Closing {
    /// For the server whose listener has local port `port`.
    pub(crate) fn new(port: u16) -> Self {
        Closing {
            port,
            count: AtomicUsize::new(0),
            doomed: Mutex::new(Vec::new()),
        }
    }

    /// Steps 1 and 2 above, for the connection of a request from `peer` that
    /// the caller still holds. Returns the pinned socket to shut down after
    /// the answer; `None` when no such connection exists (it was closed).
    pub(crate) fn doom(&self, peer: SocketAddr) -> Option<ConnSocket> {
        let mut found = None;
        for_each_connection(self.port, |sock| {
            if found.is_none() && sock.peer() == Some(peer) {
                found = Some(sock);
            }
        });
        let sock = found?;
        let mut doomed = self.doomed.lock();
        doomed.push((peer, sock.inode));
        self.count.store(doomed.len(), Ordering::Release);
        Some(sock)
    }

    /// True when a request from `peer` arrived on a doomed connection: drop
    /// it without serving or answering it.
    pub(crate) fn is_doomed(&self, peer: SocketAddr) -> bool {
        if self.count.load(Ordering::Acquire) == 0 {
            return false;
        }
        let mut doomed = self.doomed.lock();
        let Some(at) = doomed.iter().position(|(p, _)| *p == peer) else {
            return false;
        };
        let inode = doomed[at].1;
        let mut same = false;
        for_each_connection(self.port, |sock| {
            if sock.peer() == Some(peer) {
                same = sock.inode == inode;
            }
        });
        if !same {
            // The doomed connection is gone; this is a new one that reuses
            // the client's address.
            doomed.swap_remove(at);
            self.count.store(doomed.len(), Ordering::Release);
        }
        same
    }

    /// Forgets doomed connections whose socket is no longer open. `live`
    /// holds the inodes of every open connection.
    pub(crate) fn prune(&self, live: &[u64]) {
        if self.count.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut doomed = self.doomed.lock();
        doomed.retain(|(_, inode)| live.contains(inode));
        self.count.store(doomed.len(), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn a_doomed_connection_stays_doomed_and_a_reused_address_does_not() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let closing = Closing::new(port);
        let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (served, peer) = listener.accept().unwrap();
        let other = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (_other_served, other_peer) = listener.accept().unwrap();
        assert!(!closing.is_doomed(peer));

        let sock = closing.doom(peer).expect("the connection is found");
        assert_eq!(sock.peer(), Some(peer));
        assert!(closing.is_doomed(peer));
        assert!(!closing.is_doomed(other_peer), "only that connection");
        sock.shutdown();
        drop(sock);
        assert!(
            closing.is_doomed(peer),
            "still open until tiny_http closes it"
        );

        // The socket closes; the next connection from that address is new.
        drop(served);
        drop(client);
        closing.prune(&[]);
        assert_eq!(closing.count.load(Ordering::Relaxed), 0);
        assert!(!closing.is_doomed(peer));
        drop(other);
    }

    #[test]
    fn an_unknown_peer_is_not_doomed() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let closing = Closing::new(listener.local_addr().unwrap().port());
        assert!(closing.doom("127.0.0.1:9".parse().unwrap()).is_none());
        assert_eq!(closing.count.load(Ordering::Relaxed), 0);
    }
}
