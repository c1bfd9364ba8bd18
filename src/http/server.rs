//! The worker pool around tiny_http, and its shutdown.
//!
//! tiny_http accepts connections and parses requests on its own threads and
//! queues them; a fixed pool of workers takes them (`recv_timeout`) and runs
//! [`App::handle`]. Shutdown, in order:
//!
//! 1. `stopping` is set, so answers carry `Connection: close` and their
//!    connections are closed after the answer;
//! 2. the listening socket is shut down for reading: tiny_http's blocked
//!    `accept` returns an error and its accept loop ends, so no new connection
//!    is taken (further connects are refused);
//! 3. one "unblock" per worker wakes the idle workers, which then drain:
//!    they keep answering whatever tiny_http still hands over (requests
//!    clients sent before the shutdown, on connections already accepted)
//!    until nothing has arrived for 200 ms, then exit.
//!
//! [`RunningServer::wait`] returns when every worker has exited, or at the
//! latest [`SHUTDOWN_GRACE`] after shutdown began.
//!
//! Workers are supervised: a worker that dies of a panic that escaped the
//! handler's `catch_unwind` (say, while writing an answer) is replaced by
//! [`RunningServer::wait`], and counted in `tinymon_worker_restarts_total`,
//! so the pool never shrinks while serving.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::app::{App, Connections, WorkerState};
use super::closing::Closing;
use super::guard::{self, Limits};
use crate::config::ServeConfig;

/// How long shutdown waits for in-flight requests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(4_500);

/// How often an idle worker checks whether shutdown began (the unblocks
/// usually wake it sooner).
const IDLE_WAKE: Duration = Duration::from_millis(250);

/// A draining worker exits once no request has arrived for this long.
const DRAIN_QUIET: Duration = Duration::from_millis(200);

/// Why the server could not start or stopped badly.
#[derive(Debug)]
pub enum ServeError {
    /// The address is taken.
    AddrInUse(SocketAddr),
    /// Any other failure to listen.
    Listen(SocketAddr, io::Error),
    /// The accept loop died while serving.
    Accept(String),
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeError::AddrInUse(a) => write!(
                f,
                "cannot listen on {a}: address already in use (stop the other process or choose another --listen)"
            ),
            ServeError::Listen(a, e) => write!(f, "cannot listen on {a}: {e}"),
            ServeError::Accept(e) => write!(f, "accepting connections failed: {e}"),
        }
    }
}

impl std::error::Error for ServeError {}

struct Shared {
    server: tiny_http::Server,
    listener_fd: i32,
    workers: usize,
    /// Set once; Relaxed is enough since it only steers behaviour (the
    /// unblocks that end the workers are ordered by the queue's mutex).
    stopping: AtomicBool,
    failure: Mutex<Option<String>>,
    stop_requested_at: Mutex<Option<Instant>>,
    /// Stops the connection guard.
    guard_stop: Arc<AtomicBool>,
    closing: Arc<Closing>,
}

impl Shared {
    fn begin_shutdown(&self) {
        if self.stopping.swap(true, Ordering::Relaxed) {
            return;
        }
        *self.stop_requested_at.lock() = Some(Instant::now());
        self.guard_stop.store(true, Ordering::Relaxed);
        // SAFETY: the fd belongs to the listener tiny_http owns, which lives
        // as long as `self`; shutdown does not close or free it.
        unsafe {
            libc::shutdown(self.listener_fd, libc::SHUT_RD);
        }
        for _ in 0..self.workers {
            self.server.unblock();
        }
    }
}

/// A started server; dropping it does not stop it: use [`RunningServer::shutdown_handle`].
pub struct RunningServer {
    shared: Arc<Shared>,
    app: Arc<App>,
    addr: SocketAddr,
    /// Each worker sends whether it died of a panic when it ends.
    done: mpsc::Receiver<bool>,
    done_tx: mpsc::Sender<bool>,
}

/// A handle that can stop the server from another thread.
#[derive(Clone)]
pub struct ShutdownHandle(Arc<Shared>);

impl ShutdownHandle {
    /// Begins a graceful shutdown (idempotent).
    pub fn shutdown(&self) {
        self.0.begin_shutdown();
    }
}

impl RunningServer {
    /// Binds `config.listen` and starts `config.workers` threads serving
    /// `app`, with the connection guard enforcing the config's limits.
    pub fn start(config: &ServeConfig, app: Arc<App>) -> Result<Self, ServeError> {
        let (addr, workers) = (config.listen, config.workers);
        guard::raise_fd_limit();
        let listener = TcpListener::bind(addr).map_err(|e| match e.kind() {
            io::ErrorKind::AddrInUse => ServeError::AddrInUse(addr),
            _ => ServeError::Listen(addr, e),
        })?;
        let local = listener
            .local_addr()
            .map_err(|e| ServeError::Listen(addr, e))?;
        let listener_fd = listener.as_raw_fd();
        set_nodelay(listener_fd).map_err(|e| ServeError::Listen(addr, e))?;
        let server = tiny_http::Server::from_listener(listener, None)
            .map_err(|e| ServeError::Listen(addr, io::Error::other(e.to_string())))?;
        let guard_stop = Arc::new(AtomicBool::new(false));
        let closing = Arc::new(Closing::new(local.port()));
        guard::start(
            local,
            crate::config::loopback_for(local),
            Limits {
                idle_timeout: config.idle_timeout,
                max_connections: config.max_connections,
            },
            app.guard_stats.clone(),
            closing.clone(),
            guard_stop.clone(),
        )
        .map_err(|e| ServeError::Listen(addr, e))?;
        let shared = Arc::new(Shared {
            server,
            listener_fd,
            workers,
            stopping: AtomicBool::new(false),
            failure: Mutex::new(None),
            stop_requested_at: Mutex::new(None),
            guard_stop,
            closing,
        });

        let (done_tx, done) = mpsc::channel();
        let server = RunningServer {
            shared,
            app,
            addr: local,
            done,
            done_tx,
        };
        for i in 0..workers {
            server
                .spawn_worker(i)
                .map_err(|e| ServeError::Listen(addr, e))?;
        }
        Ok(server)
    }

    fn spawn_worker(&self, i: usize) -> io::Result<()> {
        let shared = self.shared.clone();
        let app = self.app.clone();
        let done_tx = self.done_tx.clone();
        thread::Builder::new()
            .name(format!("worker-{i}"))
            .spawn(move || {
                let died = supervised(|| work_loop(&shared, &app));
                let _ = done_tx.send(died);
            })
            .map(|_| ())
    }

    /// The bound address (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle for stopping the server from elsewhere (a signal thread).
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.shared.clone())
    }

    /// Blocks until the server has stopped. `Err` when it stopped because
    /// accepting failed rather than because it was asked to.
    pub fn wait(self) -> Result<(), ServeError> {
        let mut remaining = self.shared.workers;
        let mut spawned = remaining;
        while remaining > 0 {
            match self.done.recv_timeout(Duration::from_millis(100)) {
                Ok(true) if !self.shared.stopping.load(Ordering::Relaxed) => {
                    // A worker died serving: replace it.
                    self.app
                        .guard_stats
                        .worker_restarts
                        .fetch_add(1, Ordering::Relaxed);
                    eprintln!("tinymon: a worker panicked outside its handler; starting another");
                    if self.spawn_worker(spawned).is_err() {
                        remaining -= 1;
                    }
                    spawned += 1;
                }
                Ok(_) => remaining -= 1,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let since = *self.shared.stop_requested_at.lock();
                    if since.is_some_and(|t| t.elapsed() > SHUTDOWN_GRACE) {
                        break;
                    }
                }
            }
        }
        match self.shared.failure.lock().take() {
            Some(e) => Err(ServeError::Accept(e)),
            None => Ok(()),
        }
    }
}

/// Turns off Nagle's algorithm on the listener; Linux copies the setting to
/// every accepted socket. tiny_http writes a response's head and a large body
/// in separate writes, and with Nagle on, the body waits for the client's
/// delayed ACK: 40 ms added to every /metrics scrape.
fn set_nodelay(fd: i32) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: `fd` is an open socket; the option value is a live c_int.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            &on as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Runs `body`; true when it ended in a panic (which is contained here).
fn supervised(body: impl FnOnce()) -> bool {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).is_err()
}

fn work_loop(shared: &Shared, app: &App) {
    let mut state = WorkerState::default();
    let conns = Connections {
        closing: &shared.closing,
        stopping: &shared.stopping,
    };
    while !shared.stopping.load(Ordering::Relaxed) {
        // A timeout rather than a plain recv(): an unblock meant for one
        // worker may be taken by another, so none may depend on getting one.
        match shared.server.recv_timeout(IDLE_WAKE) {
            Ok(Some(request)) => {
                #[cfg(test)]
                if tests::DIE_ON_NEXT_REQUEST.swap(false, Ordering::Relaxed) {
                    panic!("test: a worker dies outside the handler");
                }
                app.handle(request, &mut state, &conns);
            }
            Ok(None) => {}
            Err(e) => {
                if !shared.stopping.load(Ordering::Relaxed) {
                    // tiny_http's accept loop has ended: nothing new will
                    // arrive, so stop and let the caller exit non-zero.
                    *shared.failure.lock() = Some(e.to_string());
                    shared.begin_shutdown();
                }
                break;
            }
        }
    }
    // Draining: tiny_http's connection threads may still hand over requests
    // that clients sent before the shutdown. Answer them (with
    // `Connection: close`) until none has come for DRAIN_QUIET.
    let mut quiet_since = Instant::now();
    loop {
        match shared.server.recv_timeout(DRAIN_QUIET) {
            Ok(Some(request)) => {
                app.handle(request, &mut state, &conns);
                quiet_since = Instant::now();
            }
            // A timeout, another worker's unblock, or the accept loop's
            // final error: only a quiet period ends the drain.
            Ok(None) | Err(_) => {
                if quiet_since.elapsed() >= DRAIN_QUIET {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Registry;

    /// Makes the next worker to take a request panic outside the handler.
    pub(super) static DIE_ON_NEXT_REQUEST: AtomicBool = AtomicBool::new(false);

    #[test]
    fn a_worker_that_dies_is_replaced_and_counted() {
        let config = ServeConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            workers: 2,
            idle_timeout: Duration::from_secs(30),
            max_connections: 100,
            metrics_token: None,
        };
        let app = Arc::new(App::new(Box::leak(Box::new(Registry::new()))).unwrap());
        let server = RunningServer::start(&config, app.clone()).unwrap();
        let base = format!("http://{}", server.addr());
        let stop = server.shutdown_handle();
        let waiter = thread::spawn(move || server.wait());
        DIE_ON_NEXT_REQUEST.store(true, Ordering::Relaxed);
        // The dying worker's request is dropped while unwinding; tiny_http
        // answers it with an empty 500 or the connection ends.
        let _ = crate::client::get(&format!("{base}/hello"), Duration::from_secs(5));
        let started = Instant::now();
        while app.guard_stats.worker_restarts.load(Ordering::Relaxed) == 0 {
            assert!(started.elapsed() < Duration::from_secs(5), "no restart");
            thread::sleep(Duration::from_millis(20));
        }
        // Both workers serve again: two slow requests run side by side.
        let slow = format!("{base}/work?delay_ms=300");
        let t0 = Instant::now();
        let pair: Vec<_> = (0..2)
            .map(|_| {
                let slow = slow.clone();
                thread::spawn(move || {
                    crate::client::get(&slow, Duration::from_secs(5))
                        .unwrap()
                        .status
                })
            })
            .collect();
        for p in pair {
            assert_eq!(p.join().unwrap(), 200);
        }
        let took = t0.elapsed();
        assert!(
            took < Duration::from_millis(550),
            "{took:?}: the pool shrank"
        );
        assert_eq!(app.guard_stats.worker_restarts.load(Ordering::Relaxed), 1);
        stop.shutdown();
        assert!(waiter.join().unwrap().is_ok());
    }
}
