//! Spreading load over every address a target name resolves to.
//!
//! In the compose stack the traffic service targets `http://tinymon:8080`,
//! and Docker's DNS answers that name with one A record per replica. A
//! generator that resolves once and keeps its connections sends everything
//! to whichever replica came first, so the dashboard shows one busy instance
//! and two idle ones. Here every worker re-resolves the name every
//! [`REFRESH`] (and at once after a failure), keeps one keep-alive
//! connection per address, and sends its requests to the addresses in turn.
//! Each address then gets the same share of requests, whatever the number of
//! workers, and replicas that are added or stopped are noticed within one
//! refresh.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::app::client::{Connection, Url};

/// How often the target name is resolved again.
pub const REFRESH: Duration = Duration::from_secs(5);

/// One worker's view of the target: its addresses and a connection to each.
pub struct Targets {
    host: String,
    port: u16,
    slots: Vec<(SocketAddr, Option<Connection>)>,
    resolved_at: Option<Instant>,
    turn: usize,
    timeout: Duration,
}

impl Targets {
    /// Targets for `url`; `start` staggers workers so they do not all begin
    /// on the same address.
    pub fn new(url: &Url, start: usize, timeout: Duration) -> Targets {
        Targets {
            host: url.host.clone(),
            port: url.port,
            slots: Vec::new(),
            resolved_at: None,
            turn: start,
            timeout,
        }
    }

    /// The connection for the next request, opening it if needed. `None`
    /// when the name does not resolve or the chosen address refuses.
    pub fn next(&mut self) -> Option<&mut Connection> {
        if self.resolved_at.is_none_or(|t| t.elapsed() >= REFRESH) {
            self.resolve();
        }
        if self.slots.is_empty() {
            return None;
        }
        self.turn = self.turn.wrapping_add(1);
        let at = self.turn % self.slots.len();
        let timeout = self.timeout;
        let (addr, conn) = &mut self.slots[at];
        if conn.as_ref().is_none_or(Connection::is_closed) {
            *conn = Connection::open(*addr, timeout).ok();
        }
        if conn.is_none() {
            // Resolve again before the next request: the replica may be gone.
            self.resolved_at = None;
        }
        self.slots[at].1.as_mut()
    }

    /// Forgets the connection last handed out (after an I/O error), and
    /// resolves again before the next request.
    pub fn drop_current(&mut self) {
        if !self.slots.is_empty() {
            let at = self.turn % self.slots.len();
            self.slots[at].1 = None;
        }
        self.resolved_at = None;
    }

    /// The addresses requests currently go to.
    #[cfg(test)]
    fn addrs(&self) -> Vec<SocketAddr> {
        self.slots.iter().map(|(a, _)| *a).collect()
    }

    fn resolve(&mut self) {
        self.resolved_at = Some(Instant::now());
        // A failed lookup keeps the addresses already known.
        if let Ok(found) = (self.host.as_str(), self.port).to_socket_addrs() {
            self.set_addrs(found.collect());
        }
    }

    /// Replaces the address list, keeping the open connections of addresses
    /// that are still there. Sorted, so the rotation does not depend on the
    /// order a DNS server happens to answer in.
    fn set_addrs(&mut self, mut addrs: Vec<SocketAddr>) {
        addrs.sort_unstable();
        addrs.dedup();
        if addrs.is_empty() {
            return;
        }
        let mut old = std::mem::take(&mut self.slots);
        self.slots = addrs
            .into_iter()
            .map(|a| {
                let kept = old
                    .iter_mut()
                    .find(|(o, _)| *o == a)
                    .and_then(|(_, c)| c.take());
                (a, kept)
            })
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::net::TcpListener;

    fn url(port: u16) -> Url {
        Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap()
    }

    #[test]
    fn requests_rotate_evenly_over_every_address() {
        let listeners: Vec<TcpListener> = (0..3)
            .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let addrs: Vec<SocketAddr> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
        let mut t = Targets::new(&url(addrs[0].port()), 2, Duration::from_secs(1));
        t.resolve();
        t.set_addrs(vec![addrs[2], addrs[0], addrs[1], addrs[0]]);
        assert_eq!(t.addrs().len(), 3, "duplicates removed");
        let mut seen: HashMap<String, usize> = HashMap::new();
        for _ in 0..300 {
            let c = t.next().expect("listening addresses connect");
            *seen.entry(c.peer().to_string()).or_default() += 1;
        }
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert!(seen.values().all(|&n| n == 100), "{seen:?}");
    }

    #[test]
    fn a_new_address_list_keeps_live_connections_and_drops_gone_ones() {
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let b = TcpListener::bind("127.0.0.1:0").unwrap();
        let (aa, ba) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        let mut t = Targets::new(&url(aa.port()), 0, Duration::from_secs(1));
        t.resolved_at = Some(Instant::now());
        t.set_addrs(vec![aa, ba]);
        t.next().unwrap();
        t.next().unwrap();
        assert!(t.slots.iter().all(|(_, c)| c.is_some()));
        t.set_addrs(vec![ba]);
        assert_eq!(t.addrs(), vec![ba]);
        assert!(t.slots[0].1.is_some(), "the connection to b was kept");
        // An empty answer keeps what is known instead of stopping the load.
        t.set_addrs(vec![]);
        assert_eq!(t.addrs(), vec![ba]);
    }

    #[test]
    fn a_refused_address_gives_none_and_forces_a_new_lookup() {
        let gone = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut t = Targets::new(&url(gone.port()), 0, Duration::from_secs(1));
        t.resolved_at = Some(Instant::now());
        t.set_addrs(vec![gone]);
        assert!(t.next().is_none());
        assert!(t.resolved_at.is_none());
    }
}
