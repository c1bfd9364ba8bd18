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
//! A restart (when [`ServerSettings::max_unreleased`] connections are stuck
//! in tiny_http) drains the same way but keeps the listening socket open
//! and its backlog waiting, and [`Server::wait`] hands the socket back as
//! [`Stopped::Restart`]; `begin_restart` explains how.
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
use super::server_metrics::ServerMetrics;
use super::service::{Connections, Service, WorkerScratch};
use crate::metrics::MetricError;

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
    /// When this many connections are stuck in tiny_http for good (see
    /// [`Stopped::Restart`]), the server drains and [`Server::wait`] returns
    /// a restart with the listening socket, for the caller to start again
    /// on. 0, the default: never (the process keeps what leaks). Only Linux
    /// counts them; elsewhere this does nothing. The tinymon binary sets
    /// 100 and `exec`s itself.
    pub max_unreleased: usize,
}

impl ServerSettings {
    /// Where a client on this host reaches a server with these settings:
    /// `listen` itself, or loopback when `listen` is the unspecified
    /// address (what a health check probes, and the server itself uses to
    /// wake its own accept).
    ///
    /// ```
    /// use tinymon::http::ServerSettings;
    /// let at = |listen: &str| {
    ///     let settings = ServerSettings { listen: listen.parse().unwrap(), ..Default::default() };
    ///     settings.local_addr().to_string()
    /// };
    /// assert_eq!(at("0.0.0.0:8080"), "127.0.0.1:8080");
    /// assert_eq!(at("[::]:80"), "[::1]:80");
    /// assert_eq!(at("10.0.0.2:80"), "10.0.0.2:80");
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        loopback_for(self.listen)
    }
}

/// `listen`, or loopback in its family when it is the unspecified address.
fn loopback_for(listen: SocketAddr) -> SocketAddr {
    let ip: IpAddr = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => Ipv4Addr::LOCALHOST.into(),
        IpAddr::V6(ip) if ip.is_unspecified() => Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

impl Default for ServerSettings {
    /// 127.0.0.1:8080, 8 workers, 30 s idle timeout, 2048 connections,
    /// no restarts, process limits untouched.
    fn default() -> Self {
        ServerSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            workers: 8,
            idle_timeout: Duration::from_secs(30),
            max_connections: 2048,
            raise_fd_limit: false,
            max_unreleased: 0,
        }
    }
}

/// How a server ended, from [`Server::wait`].
#[derive(Debug)]
pub enum Stopped {
    /// It was asked to stop ([`ShutdownHandle::shutdown`]).
    Shutdown,
    /// It reached [`ServerSettings::max_unreleased`] and drained: start it
    /// again on `listener`, which is the same listening socket, still open
    /// and bound, so connections that arrive meanwhile wait in its backlog.
    ///
    /// tiny_http 0.12 answers an HTTP/2.0 or 3.0 request line with a 505
    /// through a second writer while the request still holds the first, and
    /// the connection's thread waits forever (see `framing`). Neither the
    /// thread nor its two descriptors can be freed from inside the process,
    /// so the bound is kept by starting over: the tinymon binary `exec`s
    /// itself with this socket inherited, which keeps the PID.
    Restart {
        /// Why, as a metric label value: `unreleased_connections`.
        reason: &'static str,
        /// The listening socket, blocking, close-on-exec set.
        listener: TcpListener,
        /// How long the drain took.
        drained_in: Duration,
    },
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
    /// The server's statistics could not be registered in the service's
    /// registry (another server registered them there already: see
    /// [`Server::start_with`]).
    Metrics(MetricError),
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
            ServeError::Metrics(e) => write!(f, "cannot register the server's metrics: {e}"),
        }
    }
}

impl std::error::Error for ServeError {}

struct Shared {
    server: tiny_http::Server,
    listener_fd: i32,
    /// Where the server reaches itself (to wake tiny_http's accept).
    self_addr: SocketAddr,
    /// Where the guard's pool nudges go.
    nudge_target: guard::NudgeTarget,
    workers: usize,
    /// Set once; Relaxed is enough since it only steers behaviour (the
    /// unblocks that end the workers are ordered by the queue's mutex).
    stopping: AtomicBool,
    /// A shutdown was asked for (it wins over a restart in progress).
    /// Relaxed: read by `wait` after every worker has ended, and the
    /// channel those ends come through orders it.
    asked_to_stop: AtomicBool,
    /// The listening socket kept for a restart, once one began.
    restart: Mutex<Option<(&'static str, TcpListener)>>,
    /// While set, draining workers keep draining even when quiet: a restart
    /// holds them until no connection has unread bytes. Relaxed: it only
    /// steers when they exit, and `wait` waits for them either way.
    drain_hold: AtomicBool,
    failure: Mutex<Option<String>>,
    stop_requested_at: Mutex<Option<Instant>>,
    /// Stops the connection guard.
    guard_stop: Arc<AtomicBool>,
    closing: Arc<Closing>,
}

impl Shared {
    fn begin_shutdown(&self) {
        self.asked_to_stop.store(true, Ordering::Relaxed);
        self.drain_hold.store(false, Ordering::Relaxed);
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

impl Shared {
    /// Begins draining for a restart, keeping the listening socket open
    /// with its backlog, for the next process.
    ///
    /// tiny_http's accept loop cannot be stopped from outside without
    /// closing its socket, so its descriptor is pointed at another one: a
    /// private listener on loopback takes the place of the public one under
    /// the same descriptor number (`dup2`), and the public socket lives on
    /// as a duplicate. tiny_http then accepts only the guard's pool nudges,
    /// which the guard now sends to the private listener: they still wake
    /// tiny_http's pool for a connection it forgot (see `guard`), which
    /// would otherwise hold its request unread until `exec` reset it.
    /// Answers close their connections, and the workers drain until `wait`
    /// sees no request left unread.
    fn begin_restart(&self, reason: &'static str) -> io::Result<()> {
        // SAFETY: `listener_fd` is tiny_http's open listener, which lives as
        // long as `self`; F_DUPFD_CLOEXEC creates a new descriptor and
        // touches nothing else.
        let dup = unsafe { libc::fcntl(self.listener_fd, libc::F_DUPFD_CLOEXEC, 3) };
        if dup < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `dup` was just created and nothing else owns it.
        let kept = unsafe { <TcpListener as std::os::fd::FromRawFd>::from_raw_fd(dup) };
        let private = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let private_addr = private.local_addr()?;
        if self.stopping.swap(true, Ordering::Relaxed) {
            return Ok(()); // shutting down already: `kept` is dropped
        }
        *self.stop_requested_at.lock() = Some(Instant::now());
        self.drain_hold.store(true, Ordering::Relaxed);
        *self.nudge_target.lock() = private_addr;
        // SAFETY: both descriptors are open listening sockets. dup2 makes
        // `listener_fd` name the private socket, atomically, and closes
        // nothing that Rust code still uses: the public socket stays open
        // through `kept`, and tiny_http's TcpListener still owns an open
        // listening socket under its number (it closes it when dropped,
        // which leaves `private`'s own descriptor alone). A thread blocked
        // in accept on the public socket finishes that call unaffected.
        // Close-on-exec too, or the private socket would outlive `exec`.
        #[cfg(target_os = "linux")]
        let rc = unsafe { libc::dup3(private.as_raw_fd(), self.listener_fd, libc::O_CLOEXEC) };
        #[cfg(not(target_os = "linux"))]
        // SAFETY: as above; F_SETFD then only sets the new number's flag.
        let rc = unsafe {
            match libc::dup2(private.as_raw_fd(), self.listener_fd) {
                fd if fd < 0 => fd,
                fd => libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC),
            }
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        // An accept already waiting on the public socket returns with this
        // connection (or one queued before it), and the next one waits on
        // the private socket.
        drop(std::net::TcpStream::connect_timeout(
            &self.self_addr,
            Duration::from_secs(1),
        ));
        *self.restart.lock() = Some((reason, kept));
        for _ in 0..self.workers {
            self.server.unblock();
        }
        Ok(())
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
    metrics: ServerMetrics,
    addr: SocketAddr,
    /// Each worker sends whether it died of a panic when it ends.
    done: mpsc::Receiver<bool>,
    done_tx: mpsc::Sender<bool>,
    max_unreleased: usize,
}

impl<S> std::fmt::Debug for Server<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("workers", &self.shared.workers)
            .field("metrics", &self.metrics)
            .finish_non_exhaustive()
    }
}

/// A handle that can stop the server from another thread.
#[derive(Clone)]
pub struct ShutdownHandle(Arc<Shared>);

impl std::fmt::Debug for ShutdownHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Relaxed: a hint, as everywhere `stopping` is read.
        let stopping = self.0.stopping.load(Ordering::Relaxed);
        f.debug_struct("ShutdownHandle")
            .field("stopping", &stopping)
            .finish()
    }
}

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
        let addr = settings.listen;
        check(settings)?;
        let listener = TcpListener::bind(addr).map_err(|e| match e.kind() {
            io::ErrorKind::AddrInUse => ServeError::AddrInUse(addr),
            _ => ServeError::Listen(addr, e),
        })?;
        Self::start_on(listener, settings, service)
    }

    /// The same on a socket that is already listening (the one a
    /// [`Stopped::Restart`] handed over to a new process);
    /// `settings.listen` is not used.
    ///
    /// Both register the server's statistics ([`ServerMetrics`]) in the
    /// service's registry.
    pub fn start_on(
        listener: TcpListener,
        settings: &ServerSettings,
        service: Arc<Service<S>>,
    ) -> Result<Self, ServeError> {
        check(settings)?;
        let metrics = ServerMetrics::register(service.registry()).map_err(ServeError::Metrics)?;
        Self::start_with(listener, settings, service, metrics)
    }

    /// [`Server::start_on`] recording into statistics registered before:
    /// the way to start again in the same process on the same registry,
    /// with the [`Server::metrics`] of the server that stopped.
    pub fn start_with(
        listener: TcpListener,
        settings: &ServerSettings,
        service: Arc<Service<S>>,
        metrics: ServerMetrics,
    ) -> Result<Self, ServeError> {
        check(settings)?;
        let workers = settings.workers;
        if settings.raise_fd_limit {
            guard::raise_fd_limit();
        }
        let addr = listener
            .local_addr()
            .map_err(|e| ServeError::Listen(settings.listen, e))?;
        // tiny_http's accept loop needs a blocking socket; one handed in may
        // not be.
        listener
            .set_nonblocking(false)
            .map_err(|e| ServeError::Listen(addr, e))?;
        let local = listener
            .local_addr()
            .map_err(|e| ServeError::Listen(addr, e))?;
        let listener_fd = listener.as_raw_fd();
        set_nodelay(listener_fd).map_err(|e| ServeError::Listen(addr, e))?;
        let server = tiny_http::Server::from_listener(listener, None)
            .map_err(|e| ServeError::Listen(addr, io::Error::other(e.to_string())))?;
        let guard_stop = Arc::new(AtomicBool::new(false));
        let closing = Arc::new(Closing::new(local.port()));
        let nudge_target = Arc::new(Mutex::new(loopback_for(local)));
        guard::start(
            local,
            nudge_target.clone(),
            Limits {
                idle_timeout: settings.idle_timeout,
                max_connections: settings.max_connections,
            },
            metrics.stats().clone(),
            closing.clone(),
            guard_stop.clone(),
        )
        .map_err(|e| ServeError::Listen(addr, e))?;
        let shared = Arc::new(Shared {
            server,
            listener_fd,
            self_addr: loopback_for(local),
            nudge_target,
            workers,
            stopping: AtomicBool::new(false),
            asked_to_stop: AtomicBool::new(false),
            restart: Mutex::new(None),
            drain_hold: AtomicBool::new(false),
            failure: Mutex::new(None),
            stop_requested_at: Mutex::new(None),
            guard_stop,
            closing,
        });

        let (done_tx, done) = mpsc::channel();
        let server = Server {
            shared,
            service,
            metrics,
            addr: local,
            done,
            done_tx,
            max_unreleased: settings.max_unreleased,
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
        let metrics = self.metrics.clone();
        let done_tx = self.done_tx.clone();
        thread::Builder::new()
            .name(format!("worker-{i}"))
            .spawn(move || {
                let died = supervised(|| work_loop(&shared, &service, &metrics));
                let _ = done_tx.send(died);
            })
            .map(|_| ())
    }

    /// The bound address (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// This server's statistics.
    pub fn metrics(&self) -> &ServerMetrics {
        &self.metrics
    }

    /// A handle for stopping the server from elsewhere (a signal thread).
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.shared.clone())
    }

    /// Blocks until the server has stopped: asked to, or drained for a
    /// restart. `Err` when it stopped because accepting failed.
    pub fn wait(self) -> Result<Stopped, ServeError> {
        let mut remaining = self.shared.workers;
        let mut spawned = remaining;
        // While draining for a restart: consecutive looks that found no
        // request unread, and whether tiny_http still accepts.
        let mut settled = 0;
        while remaining > 0 {
            match self.done.recv_timeout(Duration::from_millis(100)) {
                Ok(true) if !self.shared.stopping.load(Ordering::Relaxed) => {
                    // A worker died serving: replace it.
                    // Relaxed: a statistic; `wait` alone writes it.
                    self.metrics
                        .stats()
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
                    self.restart_when_stuck();
                    if self.shared.drain_hold.load(Ordering::Relaxed) {
                        settled = match guard::connections_with_unread_bytes(self.addr.port()) {
                            0 => settled + 1,
                            _ => 0,
                        };
                        // Two looks 100 ms apart: a keep-alive client answered
                        // just before the drain has had time to send again.
                        if settled >= 2 {
                            self.shared.drain_hold.store(false, Ordering::Relaxed);
                        }
                    }
                }
            }
        }
        if let Some(e) = self.shared.failure.lock().take() {
            return Err(ServeError::Accept(e));
        }
        match self.shared.restart.lock().take() {
            Some((reason, listener)) if !self.shared.asked_to_stop.load(Ordering::Relaxed) => {
                let began = *self.shared.stop_requested_at.lock();
                Ok(Stopped::Restart {
                    reason,
                    listener,
                    drained_in: began.map_or(Duration::ZERO, |t| t.elapsed()),
                })
            }
            _ => Ok(Stopped::Shutdown),
        }
    }

    /// Begins the restart once the guard counts `max_unreleased` stuck
    /// connections (it updates the count every tick).
    fn restart_when_stuck(&self) {
        let stuck = self.metrics.stats().unreleased.load(Ordering::Relaxed);
        if self.max_unreleased == 0
            || stuck < self.max_unreleased as u64
            || self.shared.stopping.load(Ordering::Relaxed)
        {
            return;
        }
        eprintln!(
            "tinymon: {stuck} connections are stuck in tiny_http (limit {}): draining to restart",
            self.max_unreleased
        );
        if let Err(e) = self.shared.begin_restart("unreleased_connections") {
            eprintln!("tinymon: cannot keep the listening socket for a restart: {e}");
        }
    }
}

fn check(settings: &ServerSettings) -> Result<(), ServeError> {
    if settings.workers == 0 || settings.max_connections == 0 {
        return Err(ServeError::Settings(
            "workers and max_connections must be at least 1".into(),
        ));
    }
    Ok(())
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

fn work_loop<S: Send + Sync + 'static>(
    shared: &Shared,
    service: &Service<S>,
    metrics: &ServerMetrics,
) {
    let mut worker = WorkerScratch::default();
    let conns = Connections {
        closing: &shared.closing,
        stopping: &shared.stopping,
        over_limit: &metrics.stats().over_limit,
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
            // final error: only a quiet period ends the drain (and, for a
            // restart, no request left unread on any connection).
            Ok(None) | Err(_) => {
                if quiet_since.elapsed() >= DRAIN_QUIET
                    && !shared.drain_hold.load(Ordering::Relaxed)
                {
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
        let metrics = server.metrics().clone();
        let stop = server.shutdown_handle();
        let waiter = thread::spawn(move || server.wait());
        DIE_ON_NEXT_REQUEST.store(true, Ordering::Relaxed);
        // The dying worker's request is dropped while unwinding; tiny_http
        // answers it with an empty 500 or the connection ends.
        let _ = status(addr, "/slow");
        let started = Instant::now();
        while metrics.worker_restarts() == 0 {
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
        assert_eq!(metrics.worker_restarts(), 1);
        stop.shutdown();
        assert!(waiter.join().unwrap().is_ok());
    }

    /// The restart without `exec`: stuck connections make `wait` hand back
    /// the listening socket, a client that connects meanwhile waits in its
    /// backlog, and a server started on it answers that client.
    #[cfg(target_os = "linux")]
    #[test]
    fn stuck_connections_hand_back_the_listener_and_lose_no_client() {
        let settings = ServerSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            workers: 2,
            max_unreleased: 2,
            ..ServerSettings::default()
        };
        let service = Arc::new(Service::new(Arc::new(Registry::new()), ()).unwrap());
        let server = Server::start(&settings, service.clone()).unwrap();
        let addr = server.addr();
        for _ in 0..2 {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            c.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
        }
        let Stopped::Restart {
            reason, listener, ..
        } = server.wait().unwrap()
        else {
            panic!("no restart")
        };
        assert_eq!(reason, "unreleased_connections");
        assert_eq!(listener.local_addr().unwrap(), addr);
        // Between the two servers: the connection waits in the backlog.
        let waiting = thread::spawn(move || status(addr, "/metrics"));
        thread::sleep(Duration::from_millis(200));
        let service = Arc::new(Service::new(Arc::new(Registry::new()), ()).unwrap());
        let again = Server::start_on(listener, &settings, service).unwrap();
        assert_eq!(again.addr(), addr);
        assert_eq!(waiting.join().unwrap(), 200);
        again.shutdown_handle().shutdown();
        assert!(matches!(again.wait().unwrap(), Stopped::Shutdown));
    }

    /// One registry, one server at a time: a second set of server metrics
    /// is refused by name, and the stopped server's set starts the next.
    #[test]
    fn a_restart_in_process_reuses_the_server_metrics() {
        let settings = ServerSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            workers: 1,
            ..ServerSettings::default()
        };
        let service = Arc::new(Service::new(Arc::new(Registry::new()), ()).unwrap());
        let first = Server::start(&settings, service.clone()).unwrap();
        let metrics = first.metrics().clone();
        first.shutdown_handle().shutdown();
        assert!(matches!(first.wait().unwrap(), Stopped::Shutdown));
        let listener = || TcpListener::bind("127.0.0.1:0").unwrap();
        let again = Server::start_on(listener(), &settings, service.clone());
        assert!(
            matches!(&again, Err(ServeError::Metrics(MetricError::Duplicate(_)))),
            "{again:?}"
        );
        let second = Server::start_with(listener(), &settings, service, metrics).unwrap();
        assert_eq!(status(second.addr(), "/metrics"), 200);
        second.shutdown_handle().shutdown();
        assert!(matches!(second.wait().unwrap(), Stopped::Shutdown));
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
