//! The worker pool around tiny_http, and its shutdown.
//!
//! tiny_http accepts connections and parses requests on its own threads and
//! queues them; a fixed pool of workers takes them (`recv_timeout`) and runs
//! the [`Service`]'s request pipeline. Shutdown, in order:
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
//! [`Server::wait`] returns when every worker has exited, or at the
//! latest [`SHUTDOWN_GRACE`] after shutdown began.
//!
//! Workers are supervised: a worker that dies of a panic that escaped the
//! handler's `catch_unwind` (say, while writing an answer) is replaced by
//! [`Server::wait`], and counted in `tinymon_worker_restarts_total`,
//! so the pool never shrinks while serving.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::closing::Closing;
use super::guard::{self, Limits};
use super::service::{Connections, Service, Worker};

/// How long shutdown waits for in-flight requests.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_millis(4_500);

/// How often an idle worker checks whether shutdown began (the unblocks
/// usually wake it sooner).
const IDLE_WAKE: Duration = Duration::from_millis(250);

/// A draining worker exits once no request has arrived for this long.
const DRAIN_QUIET: Duration = Duration::from_millis(200);

/// How a [`Server`] listens and what it allows.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    /// Address to listen on; port 0 picks a free one ([`Server::addr`]).
    pub listen: SocketAddr,
    /// Worker threads running handlers (at least 1).
    pub workers: usize,
    /// Connections that send nothing for this long are closed.
    pub idle_timeout: Duration,
    /// Connections beyond this are shed (at least 1).
    pub max_connections: usize,
    /// Raise this process's soft limit on open files to its hard limit at
    /// start, so the connection limit, not EMFILE, is what stops new
    /// connections (tiny_http's accept loop ends for good on an accept
    /// error). It changes the whole process, so it is off by default.
    pub raise_fd_limit: bool,
}

impl Default for ServerSettings {
    /// 127.0.0.1:8080, 8 workers, 30 s idle timeout, 2048 connections,
    /// process limits untouched.
    fn default() -> Self {
        ServerSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            workers: 8,
            idle_timeout: Duration::from_secs(30),
            max_connections: 2048,
            raise_fd_limit: false,
        }
    }
}

/// Why the server could not start or stopped badly.
#[derive(Debug)]
pub enum ServeError {
    /// Settings that cannot work (no workers, say).
    Settings(String),
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
            ServeError::Settings(why) => write!(f, "invalid server settings: {why}"),
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

/// A started server; dropping it does not stop it: use [`Server::shutdown_handle`].
///
/// ```
/// use std::io::{Read, Write};
/// use std::sync::Arc;
/// use tinymon::http::{Server, ServerSettings, Service};
/// use tinymon::metrics::Registry;
///
/// let service = Arc::new(Service::new(Arc::new(Registry::new()), ()).unwrap());
/// let settings = ServerSettings { listen: "127.0.0.1:0".parse().unwrap(), ..Default::default() };
/// let server = Server::start(&settings, service).unwrap();
///
/// let mut conn = std::net::TcpStream::connect(server.addr()).unwrap();
/// conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
/// let mut answer = String::new();
/// conn.read_to_string(&mut answer).unwrap();
/// assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"));
/// assert!(answer.contains("\nserver_handle_requests_in_flight 1\n"));
///
/// server.shutdown_handle().shutdown();
/// server.wait().unwrap();
/// ```
pub struct Server<S> {
    shared: Arc<Shared>,
    service: Arc<Service<S>>,
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

impl<S: Send + Sync + 'static> Server<S> {
    /// Binds `settings.listen` and starts `settings.workers` threads serving
    /// `service`, with the connection guard enforcing the limits.
    pub fn start(settings: &ServerSettings, service: Arc<Service<S>>) -> Result<Self, ServeError> {
        let (addr, workers) = (settings.listen, settings.workers);
        if workers == 0 || settings.max_connections == 0 {
            return Err(ServeError::Settings(
                "workers and max_connections must be at least 1".into(),
            ));
        }
        if settings.raise_fd_limit {
            guard::raise_fd_limit();
        }
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
            loopback_for(local),
            Limits {
                idle_timeout: settings.idle_timeout,
                max_connections: settings.max_connections,
            },
            service.guard_stats.clone(),
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
        let server = Server {
            shared,
            service,
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
        let service = self.service.clone();
        let done_tx = self.done_tx.clone();
        thread::Builder::new()
            .name(format!("worker-{i}"))
            .spawn(move || {
                let died = supervised(|| work_loop(&shared, &service));
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
                    self.service
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

/// The address to reach a server listening on `listen` from the same host:
/// `listen` itself, or loopback when it is the unspecified address.
///
/// ```
/// use tinymon::http::loopback_for;
/// assert_eq!(loopback_for("0.0.0.0:8080".parse().unwrap()).to_string(), "127.0.0.1:8080");
/// assert_eq!(loopback_for("[::]:80".parse().unwrap()).to_string(), "[::1]:80");
/// assert_eq!(loopback_for("10.0.0.2:80".parse().unwrap()).to_string(), "10.0.0.2:80");
/// ```
pub fn loopback_for(listen: SocketAddr) -> SocketAddr {
    let ip: IpAddr = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => Ipv4Addr::LOCALHOST.into(),
        IpAddr::V6(ip) if ip.is_unspecified() => Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

fn work_loop<S: Send + Sync + 'static>(shared: &Shared, service: &Service<S>) {
    let mut worker = Worker::default();
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
                service.handle(request, &mut worker, &conns);
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
                service.handle(request, &mut worker, &conns);
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
    use crate::http::Reply;
    use crate::metrics::Registry;
    use std::io::{Read, Write};
    use tiny_http::{Method, Request};

    /// Makes the next worker to take a request panic outside the handler.
    pub(super) static DIE_ON_NEXT_REQUEST: AtomicBool = AtomicBool::new(false);

    fn slow<'a>(_: &'a (), _: &Request) -> Reply<'a> {
        thread::sleep(Duration::from_millis(300));
        Reply::text(200, "slow\n")
    }

    /// The status of `GET path` on a fresh connection (0 if none came).
    fn status(addr: SocketAddr, path: &str) -> u16 {
        let Ok(mut c) = std::net::TcpStream::connect(addr) else {
            return 0;
        };
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        if c.write_all(req.as_bytes()).is_err() {
            return 0;
        }
        let mut answer = String::new();
        let _ = c.read_to_string(&mut answer);
        answer
            .strip_prefix("HTTP/1.1 ")
            .and_then(|r| r.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or(0)
    }

    #[test]
    fn a_worker_that_dies_is_replaced_and_counted() {
        let settings = ServerSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            workers: 2,
            ..ServerSettings::default()
        };
        let service = Service::new(Arc::new(Registry::new()), ())
            .unwrap()
            .route(Method::Get, "/slow", slow)
            .unwrap();
        let service = Arc::new(service);
        let server = Server::start(&settings, service.clone()).unwrap();
        let addr = server.addr();
        let stop = server.shutdown_handle();
        let waiter = thread::spawn(move || server.wait());
        DIE_ON_NEXT_REQUEST.store(true, Ordering::Relaxed);
        // The dying worker's request is dropped while unwinding; tiny_http
        // answers it with an empty 500 or the connection ends.
        let _ = status(addr, "/slow");
        let started = Instant::now();
        while service.guard_stats.worker_restarts.load(Ordering::Relaxed) == 0 {
            assert!(started.elapsed() < Duration::from_secs(5), "no restart");
            thread::sleep(Duration::from_millis(20));
        }
        // Both workers serve again: two slow requests run side by side.
        let t0 = Instant::now();
        let pair: Vec<_> = (0..2)
            .map(|_| thread::spawn(move || status(addr, "/slow")))
            .collect();
        for p in pair {
            assert_eq!(p.join().unwrap(), 200);
        }
        let took = t0.elapsed();
        assert!(
            took < Duration::from_millis(550),
            "{took:?}: the pool shrank"
        );
        assert_eq!(
            service.guard_stats.worker_restarts.load(Ordering::Relaxed),
            1
        );
        stop.shutdown();
        assert!(waiter.join().unwrap().is_ok());
    }

    #[test]
    fn settings_that_cannot_work_are_refused() {
        let service = Arc::new(Service::new(Arc::new(Registry::new()), ()).unwrap());
        for settings in [
            ServerSettings {
                workers: 0,
                ..ServerSettings::default()
            },
            ServerSettings {
                max_connections: 0,
                ..ServerSettings::default()
            },
        ] {
            let err = Server::start(&settings, service.clone()).err().unwrap();
            assert!(matches!(err, ServeError::Settings(_)), "{err}");
        }
    }
}
