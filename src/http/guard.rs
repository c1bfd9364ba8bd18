//! The connection guard: timeouts, a connection limit and a request-size
//! limit on top of tiny_http, which has none of them.
//!
//! tiny_http accepts every connection and gives each a thread that blocks
//! reading, with no timeout and no bound on a request head. Its accept loop
//! and connection threads are out of our reach, but the sockets are in our
//! process. So a guard thread looks at them every [`TICK`]: it lists
//! /proc/self/fd, keeps the TCP sockets whose local port is the listener's
//! and that have a peer, reads each one's `TCP_INFO`, and shuts down the
//! sockets that break a rule. Shutting a socket down wakes tiny_http's
//! blocked read or write with end-of-file or an error, and tiny_http then
//! closes the socket and ends the thread. The rules:
//!
//! - **idle**: the server has sent nothing for `idle_timeout`. This covers an
//!   idle keep-alive connection, a client that stalls mid-request, one that
//!   trickles a byte at a time (slowloris), and one that stops reading its
//!   response. The kernel counts `tcpi_last_data_sent` from the accept, so a
//!   connection that never got an answer is timed from its start.
//! - **oversized request**: more than [`MAX_UNANSWERED_BYTES`] received since
//!   the server last sent anything. tiny_http buffers a request head without
//!   limit, so this bounds its memory per connection.
//! - **limit**: beyond `max_connections`, the newest connections that have
//!   not been answered yet get a `503` and are closed.
//!
//! The guard also works around a lost wake-up in tiny_http's thread pool:
//! when two connections arrive while one pool thread is idle, the second
//! one's task can wait in the pool's queue until some other connection
//! closes, so its requests are never read. When a connection has had an
//! unanswered request for [`STUCK_AFTER`] and has never been answered, the
//! guard opens and closes a connection to its own listener, one per such
//! connection. Accepting it wakes or starts a pool thread, and that thread
//! takes the queued task first.
//!
//! The guard's cost is one pass over the open descriptors per tick, off the
//! request path.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::process::for_each_open_fd;

/// How often the guard looks at the connections.
pub const TICK: Duration = Duration::from_millis(100);

/// How long a request may wait unanswered before the guard nudges the pool.
pub const STUCK_AFTER: Duration = Duration::from_millis(200);

/// Most nudges per tick; bounds the guard's own connections when many
/// clients stall on purpose (those look the same as stuck ones).
const MAX_NUDGES: usize = 16;

/// Bytes a client may send without getting an answer.
pub const MAX_UNANSWERED_BYTES: u64 = 64 * 1024;

/// `TCP_ESTABLISHED` from the kernel's tcp_states.h (not exported by libc).
const TCP_ESTABLISHED: u8 = 1;

const SHED_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Length: 38\r\nConnection: close\r\n\r\n\
too many connections, try again later\n";

/// Limits the guard enforces.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

/// What the guard has done, for metrics.
#[derive(Debug, Default)]
pub struct GuardStats {
    /// Open connections at the last tick. Relaxed: a statistic.
    pub open: AtomicU64,
    pub closed_idle: AtomicU64,
    pub closed_oversized: AtomicU64,
    pub shed: AtomicU64,
    /// Times the guard woke tiny_http's pool for a waiting connection.
    pub pool_nudges: AtomicU64,
}

/// One server-side TCP connection as the guard sees it.
struct Seen {
    /// tiny_http holds two descriptors per connection (it clones the stream
    /// into a read and a write half); one is enough to act on.
    fd: i32,
    /// The tick that last saw it, so the second descriptor is skipped.
    tick: u64,
    first_seen: Instant,
    /// Bytes received when the server was last seen sending.
    received_at_last_send: u64,
}

/// Starts the guard thread for the listener on `listen` (reached at
/// `self_addr` for the pool nudge); it stops when `stop` is set.
pub fn start(
    listen: SocketAddr,
    self_addr: SocketAddr,
    limits: Limits,
    stats: Arc<GuardStats>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("conn-guard".into())
        .spawn(move || {
            let mut seen: HashMap<u64, Seen> = HashMap::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                // One nudge frees one queued connection.
                for _ in 0..tick(n, listen.port(), &limits, &stats, &mut seen) {
                    // Connecting is enough: the accept hands a task to the pool.
                    let _ = TcpStream::connect_timeout(&self_addr, TICK);
                    stats.pool_nudges.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(TICK);
            }
        })
        .map(|_| ())
}

/// One look at the connections; returns how many never-answered connections
/// have waited [`STUCK_AFTER`] (at most [`MAX_NUDGES`]).
fn tick(
    n: u64,
    port: u16,
    limits: &Limits,
    stats: &GuardStats,
    seen: &mut HashMap<u64, Seen>,
) -> usize {
    let now = Instant::now();
    let idle_ms = limits.idle_timeout.as_millis().min(u128::from(u32::MAX)) as u32;
    let mut live: Vec<(u64, libc::tcp_info)> = Vec::new();
    for_each_open_fd(|fd| {
        let Some(inode) = socket_inode(fd) else {
            return;
        };
        if seen.get(&inode).is_some_and(|s| s.tick == n) || !is_server_connection(fd, port) {
            return;
        }
        let Some(info) = tcp_info(fd) else { return };
        let entry = seen.entry(inode).or_insert(Seen {
            fd,
            tick: n,
            first_seen: now,
            received_at_last_send: 0,
        });
        entry.fd = fd;
        entry.tick = n;
        // Sent within the last tick: whatever came before was answered.
        if info.tcpi_data_segs_out > 0
            && u128::from(info.tcpi_last_data_sent) <= TICK.as_millis() * 2
        {
            entry.received_at_last_send = info.tcpi_bytes_received;
        }
        live.push((inode, info));
    });
    seen.retain(|inode, _| live.iter().any(|(i, _)| i == inode));

    let stuck_ms = STUCK_AFTER.as_millis() as u32;
    let mut stuck = 0;
    let mut open = live.len();
    for (inode, info) in &live {
        let s = &seen[inode];
        // A pool thread, once it runs a connection, serves it to the end, so
        // only a connection that was never answered can be waiting in the
        // pool's queue.
        if info.tcpi_data_segs_out == 0
            && info.tcpi_bytes_received > 0
            && info.tcpi_last_data_recv >= stuck_ms
        {
            stuck += 1;
        }
        if info.tcpi_last_data_sent >= idle_ms {
            close(s.fd, None);
            stats.closed_idle.fetch_add(1, Ordering::Relaxed);
            open -= 1;
        } else if info.tcpi_bytes_received - s.received_at_last_send > MAX_UNANSWERED_BYTES {
            close(s.fd, None);
            stats.closed_oversized.fetch_add(1, Ordering::Relaxed);
            open -= 1;
        }
    }
    if open > limits.max_connections {
        // Shed the newest connections that have not been answered yet.
        let mut fresh: Vec<(Instant, i32)> = live
            .iter()
            .filter(|(_, info)| info.tcpi_data_segs_out == 0 && info.tcpi_last_data_sent < idle_ms)
            .map(|(inode, _)| (seen[inode].first_seen, seen[inode].fd))
            .collect();
        fresh.sort_by_key(|&(first_seen, _)| std::cmp::Reverse(first_seen));
        for (_, fd) in fresh.into_iter().take(open - limits.max_connections) {
            close(fd, Some(SHED_RESPONSE));
            stats.shed.fetch_add(1, Ordering::Relaxed);
            open -= 1;
        }
    }
    stats.open.store(open as u64, Ordering::Relaxed);
    stuck.min(MAX_NUDGES)
}

fn socket_inode(fd: i32) -> Option<u64> {
    // SAFETY: fstat writes into a zeroed local stat buffer.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        (libc::fstat(fd, &mut st) == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFSOCK)
            .then_some(st.st_ino)
    }
}

/// A connected TCP socket whose local port is `port` (so not the listener,
/// which has no peer, and not a client socket of this process).
fn is_server_connection(fd: i32, port: u16) -> bool {
    // SAFETY: the address buffers are zeroed locals with their true length.
    unsafe {
        let mut addr: libc::sockaddr_storage = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        if libc::getsockname(fd, &mut addr as *mut _ as *mut libc::sockaddr, &mut len) != 0 {
            return false;
        }
        let local_port = match i32::from(addr.ss_family) {
            libc::AF_INET => {
                u16::from_be((*(&addr as *const _ as *const libc::sockaddr_in)).sin_port)
            }
            libc::AF_INET6 => {
                u16::from_be((*(&addr as *const _ as *const libc::sockaddr_in6)).sin6_port)
            }
            _ => return false,
        };
        if local_port != port {
            return false;
        }
        let mut peer: libc::sockaddr_storage = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        libc::getpeername(fd, &mut peer as *mut _ as *mut libc::sockaddr, &mut len) == 0
    }
}

fn tcp_info(fd: i32) -> Option<libc::tcp_info> {
    // SAFETY: the kernel writes at most `len` bytes into the zeroed struct.
    unsafe {
        let mut info: libc::tcp_info = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        let rc = libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            &mut info as *mut _ as *mut libc::c_void,
            &mut len,
        );
        (rc == 0 && info.tcpi_state == TCP_ESTABLISHED).then_some(info)
    }
}

/// Optionally writes `last_words` (never blocking), then shuts the socket
/// down both ways; tiny_http's thread sees end-of-file and closes it.
fn close(fd: i32, last_words: Option<&[u8]>) {
    // SAFETY: plain socket calls on a descriptor that was a live socket a
    // moment ago; at worst they fail with EBADF or ENOTSOCK.
    unsafe {
        if let Some(bytes) = last_words {
            libc::send(
                fd,
                bytes.as_ptr() as *const libc::c_void,
                bytes.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            );
        }
        libc::shutdown(fd, libc::SHUT_RDWR);
    }
}

/// Raises the soft limit on open files to the hard limit, so the connection
/// limit, not EMFILE, is what stops new connections (tiny_http's accept loop
/// ends for good on an accept error). Returns the limit now in force.
pub fn raise_fd_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit on a local struct.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            let wanted = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 {
                return wanted.rlim_cur;
            }
        }
        lim.rlim_cur
    }
}

/// Exports [`GuardStats`] as tinymon_connections_open,
/// tinymon_connections_closed_total{reason} and tinymon_pool_nudges_total.
pub struct GuardCollector(pub Arc<GuardStats>);

const GUARD_DESCS: [crate::metrics::Desc; 3] = [
    crate::metrics::Desc {
        name: "tinymon_connections_closed_total",
        help: "Connections the server closed on its own, by reason: idle (nothing sent for the idle timeout), oversized (request too large), shed (over the connection limit).",
        kind: crate::encode::MetricType::Counter,
    },
    crate::metrics::Desc {
        name: "tinymon_connections_open",
        help: "Client connections open at the connection guard's last look (every 100 ms).",
        kind: crate::encode::MetricType::Gauge,
    },
    crate::metrics::Desc {
        name: "tinymon_pool_nudges_total",
        help: "Times the connection guard woke tiny_http's thread pool for a request left waiting.",
        kind: crate::encode::MetricType::Counter,
    },
];

impl crate::metrics::Collector for GuardCollector {
    fn descs(&self) -> &[crate::metrics::Desc] {
        &GUARD_DESCS
    }

    fn collect(&self, out: &mut crate::metrics::Collected<'_>) {
        let s = &self.0;
        for (reason, n) in [
            ("idle", &s.closed_idle),
            ("oversized", &s.closed_oversized),
            ("shed", &s.shed),
        ] {
            out.sample(0, &[("reason", reason)], n.load(Ordering::Relaxed) as f64);
        }
        out.sample(1, &[], s.open.load(Ordering::Relaxed) as f64);
        out.sample(2, &[], s.pool_nudges.load(Ordering::Relaxed) as f64);
    }
}
