//! The connection guard: timeouts, a connection limit and a request-size
//! limit on top of tiny_http, which has none of them.
//!
//! tiny_http accepts every connection and gives each a thread that blocks
//! reading, with no timeout and no bound on a request head. Its accept loop
//! and connection threads are out of our reach, but the sockets are in our
//! process. So a guard thread looks at them every [`TICK`]: it lists
//! /proc/self/fd and inspects each accepted connection of our listener
//! through a duplicate of its descriptor (see `socket`: the
//! duplicate pins the socket, so the guard never acts on a number that was
//! meanwhile closed and reused). It shuts down the sockets that break a
//! rule. Shutting a socket down wakes tiny_http's blocked read with
//! end-of-file, and tiny_http then closes the socket and ends the thread.
//! The guard never writes to a socket: tiny_http may be writing an answer
//! on it at that very moment, and bytes of ours could land in the middle.
//! The rules (`judge` and `pick_shed`, unit-tested below):
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
//!   sent nothing at all are closed. A connection that has sent bytes may
//!   have a request with tiny_http, so the guard leaves it alone; instead
//!   [`GuardStats::over_limit`] tells the app, which answers requests with
//!   `503` and closes their connections while the limit is exceeded.
//!
//! Races that remain, stated plainly: a reading is up to one tick old when
//! the guard acts. A connection judged idle may have received a request in
//! between; the shutdown then ends it unanswered (the client sees the
//! connection close, never a corrupted answer). The shed rule re-reads
//! `TCP_INFO` through the same duplicate just before acting, which narrows
//! that window to microseconds for the connections it closes.
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
//! The guard's cost is one or two passes over the open descriptors per
//! tick, off the request path. It holds one duplicate at a time, so it never
//! needs more than one spare descriptor.
//!
//! **Linux only.** The rules read `TCP_INFO`, which only Linux has in this
//! form. Elsewhere (macOS) [`start`] starts nothing: the server runs
//! without idle timeouts, the size limit, the connection limit and the pool
//! nudge, as plain tiny_http does, and the guard's metrics are described but
//! never sampled. That is fine for development on a Mac, not for facing
//! clients; deploy on Linux.
// On other platforms the rules below are compiled (and unit-tested) but
// only the Linux guard thread calls them.
#![cfg_attr(not(target_os = "linux"), allow(dead_code, unused_imports))]

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::closing::Closing;
use super::socket::{self, for_each_connection};

/// How often the guard looks at the connections.
pub(crate) const TICK: Duration = Duration::from_millis(100);

/// How long a request may wait unanswered before the guard nudges the pool.
pub(crate) const STUCK_AFTER: Duration = Duration::from_millis(200);

/// Most nudges per tick; bounds the guard's own connections when many
/// clients stall on purpose (those look the same as stuck ones).
const MAX_NUDGES: usize = 16;

/// Most nudges per tick while draining for a restart, when only the guard
/// can reach tiny_http's accept loop.
const MAX_RESTART_NUDGES: usize = 256;

/// Bytes a client may send without getting an answer.
pub(crate) const MAX_UNANSWERED_BYTES: u64 = 64 * 1024;

/// Limits the guard enforces.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) idle_timeout: Duration,
    pub(crate) max_connections: usize,
}

/// What the guard has done, for metrics. Each field has one writer (the
/// guard thread, or for `worker_restarts` the server's `wait`), and each is
/// a statistic or a hint that orders no other memory, so Relaxed is enough
/// throughout.
#[derive(Debug, Default)]
pub(crate) struct GuardStats {
    /// Open connections at the last tick.
    pub(crate) open: AtomicU64,
    /// Sockets no longer connected that tiny_http has held for two ticks or
    /// more without closing them (see `framing`: tiny_http deadlocks on an
    /// HTTP/2.0 request line and never releases that connection).
    pub(crate) unreleased: AtomicU64,
    /// More connections than the limit at the last tick.
    pub(crate) over_limit: AtomicBool,
    pub(crate) closed_idle: AtomicU64,
    pub(crate) closed_oversized: AtomicU64,
    pub(crate) shed: AtomicU64,
    /// Times the guard woke tiny_http's pool for a waiting connection.
    pub(crate) pool_nudges: AtomicU64,
    /// Workers replaced after dying of a panic (written by the server, not
    /// the guard; exported with the other server statistics).
    pub(crate) worker_restarts: AtomicU64,
}

/// What the guard remembers of a connection between ticks, by inode.
#[cfg(target_os = "linux")]
struct Remembered {
    tick: u64,
    /// Seen no longer connected at this many consecutive ticks.
    disconnected_ticks: u32,
    first_seen: Instant,
    /// Bytes received when the server was last seen sending.
    received_at_last_send: u64,
}

/// One connection's `TCP_INFO`, reduced to what the rules need.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Observed {
    pub(crate) bytes_received: u64,
    /// Data segments the server has sent; 0 means never answered.
    pub(crate) segs_out: u32,
    pub(crate) since_sent_ms: u32,
    pub(crate) since_recv_ms: u32,
    /// Bytes received when the server was last seen sending.
    pub(crate) received_at_last_send: u64,
}

#[cfg(target_os = "linux")]
impl Observed {
    fn from_info(info: &libc::tcp_info, received_at_last_send: u64) -> Self {
        Observed {
            bytes_received: info.tcpi_bytes_received,
            segs_out: info.tcpi_data_segs_out,
            since_sent_ms: info.tcpi_last_data_sent,
            since_recv_ms: info.tcpi_last_data_recv,
            received_at_last_send,
        }
    }
}

/// The guard's decision for one connection.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Ruling {
    Keep,
    Idle,
    Oversized,
}

/// The idle and size rules.
pub(crate) fn judge(o: &Observed, idle_timeout: Duration) -> Ruling {
    let idle_ms = idle_timeout.as_millis().min(u128::from(u32::MAX)) as u32;
    if o.since_sent_ms >= idle_ms {
        Ruling::Idle
    } else if o.bytes_received.saturating_sub(o.received_at_last_send) > MAX_UNANSWERED_BYTES {
        Ruling::Oversized
    } else {
        Ruling::Keep
    }
}

/// A connection that may be waiting in tiny_http's pool queue: it sent a
/// request [`STUCK_AFTER`] ago and was never answered. (A pool thread, once
/// it runs a connection, serves it to the end, so only a connection that was
/// never answered can be queued.)
pub(crate) fn is_stuck(o: &Observed) -> bool {
    o.segs_out == 0 && o.bytes_received > 0 && o.since_recv_ms >= STUCK_AFTER.as_millis() as u32
}

/// The limit rule: given the open connections as (inode, first seen, silent
/// = has sent nothing), the inodes to close so that at most `max` stay,
/// newest first, silent ones only.
pub(crate) fn pick_shed(live: &[(u64, Instant, bool)], max: usize) -> Vec<u64> {
    if live.len() <= max {
        return Vec::new();
    }
    let mut silent: Vec<(Instant, u64)> = live
        .iter()
        .filter(|(_, _, silent)| *silent)
        .map(|&(inode, first, _)| (first, inode))
        .collect();
    silent.sort_unstable_by_key(|&(first, _)| std::cmp::Reverse(first));
    silent
        .into_iter()
        .take(live.len() - max)
        .map(|(_, inode)| inode)
        .collect()
}

/// Where the pool nudge connects: the listener itself, until a restart
/// points it elsewhere (see `server`). Read by the guard thread once per
/// tick that nudges.
pub(crate) type NudgeTarget = Arc<parking_lot::Mutex<SocketAddr>>;

/// Starts the guard thread for the listener on `listen` (reached at
/// `self_addr` for the pool nudge); it stops when `stop` is set.
#[cfg(target_os = "linux")]
pub(crate) fn start(
    listen: SocketAddr,
    self_addr: NudgeTarget,
    limits: Limits,
    stats: Arc<GuardStats>,
    closing: Arc<Closing>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("conn-guard".into())
        .spawn(move || {
            let home = *self_addr.lock();
            let mut seen: HashMap<u64, Remembered> = HashMap::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                // One nudge frees one queued connection.
                let mut nudges =
                    tick(n, listen.port(), &limits, &stats, &closing, &mut seen).min(MAX_NUDGES);
                let target = *self_addr.lock();
                if target != home {
                    // Draining for a restart: the nudges go to a private
                    // listener no client can reach, and every request must
                    // be read before `exec`. A request waits behind every
                    // task queued before it in tiny_http's pool (those of
                    // clients that have gone, and earlier nudges, included),
                    // and each nudge moves the queue on by one: while any
                    // request waits, nudge many times.
                    nudges = if untouched_connections(listen.port()) > 0 {
                        MAX_RESTART_NUDGES
                    } else {
                        0
                    };
                }
                for _ in 0..nudges {
                    // Connecting is enough: the accept hands a task to the pool.
                    let _ = TcpStream::connect_timeout(&target, TICK);
                    stats.pool_nudges.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(TICK);
            }
        })
        .map(|_| ())
}

/// Without `TCP_INFO` there are no rules to enforce (see the module docs).
/// What remains is the guard's housekeeping: every tick, connections that
/// were doomed and have since closed are forgotten, so that list stays
/// bounded by the open connections here too.
#[cfg(not(target_os = "linux"))]
pub(crate) fn start(
    listen: SocketAddr,
    _self_addr: NudgeTarget,
    _limits: Limits,
    _stats: Arc<GuardStats>,
    closing: Arc<Closing>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("conn-guard".into())
        .spawn(move || {
            let mut open: Vec<u64> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                open.clear();
                for_each_connection(listen.port(), |sock| open.push(sock.inode));
                closing.prune(&open);
                std::thread::sleep(TICK);
            }
        })
        .map(|_| ())
}

/// Connections of the listener on `port` whose unread bytes `counts`
/// (given `TCP_INFO` in any state, and the unread byte count).
#[cfg(target_os = "linux")]
fn count_unread(port: u16, counts: impl Fn(&libc::tcp_info, u64) -> bool) -> usize {
    let mut n = 0;
    for_each_connection(port, |sock| {
        if let Some(info) = sock.tcp_info_in_any_state() {
            let unread = sock.unread() as u64;
            if unread > 0 && counts(&info, unread) {
                n += 1;
            }
        }
    });
    n
}

/// Established connections of the listener on `port` with a request that
/// will be read but has not been yet: a restart waits until there are
/// none, so closing them at `exec` resets no request. That is unread bytes
/// on a connection that has been answered before (a keep-alive client's
/// next request), or on one of which nothing at all was read yet (waiting
/// for a pool thread). Unread bytes behind a request that was read and
/// never answered do not count: that is tiny_http's HTTP/2.0 deadlock
/// (see `framing`), and nothing will ever read them.
#[cfg(target_os = "linux")]
pub(crate) fn connections_with_unread_bytes(port: u16) -> usize {
    count_unread(port, |info, unread| {
        info.tcpi_state == socket::TCP_ESTABLISHED
            && (info.tcpi_data_segs_out > 0 || unread == info.tcpi_bytes_received)
    })
}

/// Connections of the listener on `port`, in any state, of which tiny_http
/// has read nothing although bytes came: queued in its pool.
#[cfg(target_os = "linux")]
fn untouched_connections(port: u16) -> usize {
    count_unread(port, |info, unread| unread == info.tcpi_bytes_received)
}

/// Without `TCP_INFO` nothing restarts (see [`start`]).
#[cfg(not(target_os = "linux"))]
pub(crate) fn connections_with_unread_bytes(_port: u16) -> usize {
    0
}

/// One look at the connections; returns how many never-answered connections
/// have waited [`STUCK_AFTER`].
#[cfg(target_os = "linux")]
fn tick(
    n: u64,
    port: u16,
    limits: &Limits,
    stats: &GuardStats,
    closing: &Closing,
    seen: &mut HashMap<u64, Remembered>,
) -> usize {
    let now = Instant::now();
    let mut live: Vec<(u64, Instant, bool)> = Vec::new();
    let mut open_inodes: Vec<u64> = Vec::new();
    let mut stuck = 0;
    let mut unreleased = 0;
    for_each_connection(port, |sock| {
        open_inodes.push(sock.inode);
        let entry = seen.entry(sock.inode).or_insert(Remembered {
            tick: n,
            disconnected_ticks: 0,
            first_seen: now,
            received_at_last_send: 0,
        });
        entry.tick = n;
        let Some(info) = sock.tcp_info() else {
            entry.disconnected_ticks += 1;
            if entry.disconnected_ticks >= 2 {
                unreleased += 1;
            }
            return;
        };
        // Sent within the last tick: whatever came before was answered.
        if info.tcpi_data_segs_out > 0
            && u128::from(info.tcpi_last_data_sent) <= TICK.as_millis() * 2
        {
            entry.received_at_last_send = info.tcpi_bytes_received;
        }
        let observed = Observed::from_info(&info, entry.received_at_last_send);
        if is_stuck(&observed) {
            stuck += 1;
        }
        match judge(&observed, limits.idle_timeout) {
            Ruling::Idle => {
                sock.shutdown();
                stats.closed_idle.fetch_add(1, Ordering::Relaxed);
            }
            Ruling::Oversized => {
                sock.shutdown();
                stats.closed_oversized.fetch_add(1, Ordering::Relaxed);
            }
            Ruling::Keep => live.push((sock.inode, entry.first_seen, observed.bytes_received == 0)),
        }
    });
    seen.retain(|_, r| r.tick == n);
    closing.prune(&open_inodes);

    let mut open = live.len();
    let shed = pick_shed(&live, limits.max_connections);
    if !shed.is_empty() {
        for_each_connection(port, |sock| {
            // Still silent when we act, through the same duplicate.
            if shed.contains(&sock.inode)
                && sock.tcp_info().is_some_and(|i| i.tcpi_bytes_received == 0)
            {
                sock.shutdown();
                stats.shed.fetch_add(1, Ordering::Relaxed);
                open -= 1;
            }
        });
    }
    stats.open.store(open as u64, Ordering::Relaxed);
    stats.unreleased.store(unreleased, Ordering::Relaxed);
    stats
        .over_limit
        .store(open > limits.max_connections, Ordering::Relaxed);
    stuck
}

/// Raises the soft limit on open files to the hard limit, so the connection
/// limit, not EMFILE, is what stops new connections (tiny_http's accept loop
/// ends for good on an accept error). Returns the limit now in force.
pub(crate) fn raise_fd_limit() -> u64 {
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

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(30);

    #[test]
    fn idle_is_timed_from_the_last_byte_sent() {
        let fresh = Observed::default();
        assert_eq!(judge(&fresh, IDLE), Ruling::Keep);
        let quiet = Observed {
            since_sent_ms: 30_000,
            ..fresh
        };
        assert_eq!(judge(&quiet, IDLE), Ruling::Idle);
        let almost = Observed {
            since_sent_ms: 29_999,
            ..fresh
        };
        assert_eq!(judge(&almost, IDLE), Ruling::Keep);
        // A timeout beyond u32 milliseconds saturates instead of wrapping.
        assert_eq!(
            judge(&quiet, Duration::from_secs(u64::MAX / 2)),
            Ruling::Keep
        );
    }

    #[test]
    fn only_unanswered_bytes_count_toward_the_size_limit() {
        let big = Observed {
            bytes_received: 10 * MAX_UNANSWERED_BYTES,
            received_at_last_send: 9 * MAX_UNANSWERED_BYTES,
            ..Observed::default()
        };
        assert_eq!(
            judge(&big, IDLE),
            Ruling::Keep,
            "exactly the limit since the answer"
        );
        let over = Observed {
            bytes_received: big.bytes_received + 1,
            ..big
        };
        assert_eq!(judge(&over, IDLE), Ruling::Oversized);
    }

    #[test]
    fn stuck_means_sent_a_request_never_answered_and_waited() {
        let waiting = Observed {
            bytes_received: 40,
            since_recv_ms: 200,
            ..Observed::default()
        };
        assert!(is_stuck(&waiting));
        assert!(
            !is_stuck(&Observed {
                segs_out: 1,
                ..waiting
            }),
            "answered before"
        );
        assert!(
            !is_stuck(&Observed {
                bytes_received: 0,
                ..waiting
            }),
            "sent nothing"
        );
        assert!(
            !is_stuck(&Observed {
                since_recv_ms: 150,
                ..waiting
            }),
            "too recent"
        );
    }

    #[test]
    fn shedding_closes_the_newest_silent_connections_only() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        // inode, first seen, silent
        let live = [
            (1, at(0), true),
            (2, at(10), false),
            (3, at(20), true),
            (4, at(30), false),
            (5, at(40), true),
        ];
        assert!(pick_shed(&live, 5).is_empty());
        assert_eq!(pick_shed(&live, 3), vec![5, 3]);
        // Never a connection that has sent bytes, even if that leaves the
        // count over the limit (the app sheds those with 503).
        assert_eq!(pick_shed(&live, 0), vec![5, 3, 1]);
    }
}
