//! A tiny_http service with RED metrics: routes, /metrics, and the
//! request pipeline around them.
//!
//! [`Service::handle`] is the whole life of a request: check its framing
//! (see `framing`), match the route, count it as started, consume any
//! body, run the handler (a panic becomes a 500), record status and
//! duration, respond (see `respond`), and close the connection when the
//! answer said so. The labels come from fixed sets (see
//! [`super::labels`]), so the lookups find existing series without
//! allocating once traffic has warmed up.
//!
//! A service is generic over `S`, the state its handlers share (their own
//! metric handles, say); handlers are plain functions of that state and
//! the request.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tiny_http::{HTTPVersion, Method, Request};

use super::closing::Closing;
use super::framing::{self, Body as RequestBody, Verdict, MAX_BODY_BYTES};
use super::guard::{GuardCollector, GuardStats};
use super::labels::{method_label, status_label, UNMATCHED};
use super::red::RedMetrics;
use super::reply::{Body, Reply};
use super::respond::{write_answer, Answer, DateCache, Persistence};
use super::router::{RouteMatch, Router};
use super::socket::ConnSocket;
use crate::encode::{negotiate, Format, OpenMetricsEncoder, ProtobufEncoder, TextEncoder};
use crate::metrics::{Counter, Family, Gauge, MetricError, Registry};
use crate::process::ProcessCollector;

/// A route handler: a plain function of the service's state and the request.
pub type Handler<S> = for<'a> fn(&'a S, &Request) -> Reply<'a>;

enum Route<S> {
    Handler(Handler<S>),
    Metrics,
}

/// What each worker thread keeps between requests.
pub(crate) struct Worker {
    /// Reused by every scrape this worker serves, one per format.
    text: TextEncoder,
    openmetrics: OpenMetricsEncoder,
    protobuf: ProtobufEncoder,
    /// Which of them the last scrape filled.
    format: Format,
    /// Scratch space for response heads.
    head: Vec<u8>,
    date: DateCache,
}

impl Default for Worker {
    fn default() -> Self {
        Worker {
            text: TextEncoder::new(),
            openmetrics: OpenMetricsEncoder::new(),
            protobuf: ProtobufEncoder::new(),
            format: Format::Text,
            head: Vec::with_capacity(256),
            date: DateCache::default(),
        }
    }
}

/// What the server tells [`Service::handle`] about the connection side.
pub(crate) struct Connections<'a> {
    /// Connections being closed; see `closing`.
    pub(crate) closing: &'a Closing,
    /// Set once shutdown begins: from then on every answer closes its
    /// connection. Read when the answer is sent, so a request that arrived
    /// before the signal is answered with a close too.
    pub(crate) stopping: &'a AtomicBool,
}

/// Longest request target (path and query) served; longer gets 414.
pub const MAX_TARGET_BYTES: usize = 8 * 1024;
/// Most header bytes (names and values) served; more gets 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// A service: its registry, RED metrics, routes and handler state.
///
/// `GET /metrics` is always routed to the registry's text exposition.
/// Registering a service adds to its registry the RED families (see
/// [`RedMetrics`]), `promhttp_metric_handler_requests_total{code}`,
/// `promhttp_metric_handler_requests_in_flight`,
/// `tinymon_handler_panics_total`, the connection guard's `tinymon_*`
/// families and the process_* collector.
///
/// ```
/// use std::sync::Arc;
/// use tiny_http::{Method, Request};
/// use tinymon::http::{Reply, Service};
/// use tinymon::metrics::Registry;
///
/// fn hello<'a>(_: &'a (), _: &Request) -> Reply<'a> {
///     Reply::text(200, "hello\n")
/// }
///
/// let service = Service::new(Arc::new(Registry::new()), ())
///     .unwrap()
///     .route(Method::Get, "/hello", hello)
///     .unwrap();
/// assert_eq!(service.red().in_flight(), 0.0);
/// ```
pub struct Service<S> {
    registry: Arc<Registry>,
    red: RedMetrics,
    scrapes_total: Arc<Family<Counter, 1>>,
    scrapes_in_flight: Arc<Gauge>,
    pub(crate) handler_panics: Arc<Counter>,
    /// What the connection guard did, exported as metrics.
    pub(crate) guard_stats: Arc<GuardStats>,
    router: Router<Route<S>>,
    /// /metrics requires `Authorization: Bearer <token>` when set.
    metrics_token: Option<Box<[u8]>>,
    state: S,
}

impl<S: Send + Sync + 'static> Service<S> {
    /// A service with only `GET /metrics`, recording into `registry`.
    pub fn new(registry: Arc<Registry>, state: S) -> Result<Self, MetricError> {
        let router = Router::new()
            .route(Method::Get, "/metrics", Route::Metrics)
            .expect("the metrics route is valid");
        let red = RedMetrics::register(&registry)?;
        let scrapes_total = registry.register(Family::new(
            "promhttp_metric_handler_requests_total",
            "Scrapes of /metrics served, by HTTP status code.",
            ["code"],
        )?)?;
        // Like promhttp, show the scrape codes at zero before they happen.
        for code in ["200", "401", "500", "503"] {
            scrapes_total.get_or_create(&[code]);
        }
        let scrapes_in_flight = registry.gauge(
            "promhttp_metric_handler_requests_in_flight",
            "Scrapes of /metrics being served right now.",
        )?;
        let handler_panics = registry.counter(
            "tinymon_handler_panics_total",
            "Handler panics caught and answered with 500.",
        )?;
        let guard_stats = Arc::new(GuardStats::default());
        registry.register_collector(GuardCollector(guard_stats.clone()))?;
        registry.register_collector(ProcessCollector)?;
        Ok(Service {
            registry,
            red,
            scrapes_total,
            scrapes_in_flight,
            handler_panics,
            guard_stats,
            router,
            metrics_token: None,
            state,
        })
    }

    /// Adds a route; its template (`/orders/{id}`) becomes the `path` label.
    pub fn route(
        mut self,
        method: Method,
        template: &'static str,
        handler: Handler<S>,
    ) -> Result<Self, String> {
        self.router = self
            .router
            .route(method, template, Route::Handler(handler))?;
        Ok(self)
    }

    /// Protects /metrics with a bearer token.
    pub fn with_metrics_token(mut self, token: Option<String>) -> Self {
        self.metrics_token = token.map(|t| t.into_bytes().into_boxed_slice());
        self
    }

    /// The state handlers receive.
    pub fn state(&self) -> &S {
        &self.state
    }

    /// The RED metrics this service records.
    pub fn red(&self) -> &RedMetrics {
        &self.red
    }

    /// The registry `/metrics` serves.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Serves one request, recording it as the Go original's middleware did.
    pub(crate) fn handle(
        &self,
        mut request: Request,
        worker: &mut Worker,
        conns: &Connections<'_>,
    ) {
        let peer = request.remote_addr().copied();
        if peer.is_some_and(|p| conns.closing.is_doomed(p)) {
            // Bytes that followed a rejected request on a connection being
            // closed: neither served nor answered.
            drop(request.into_writer());
            return;
        }
        let started = super::clock::Started::now();
        let (verdict, head) = framing::check(&request);
        let method = method_label(request.method());
        let target = framing::origin_form(request.url());
        let path = target.split('?').next().unwrap_or("");
        let found = self.router.find(request.method(), path);
        let template = match &found {
            RouteMatch::Found(t, _) | RouteMatch::MethodNotAllowed(t, _) => t.as_str(),
            RouteMatch::NotFound => UNMATCHED,
        };
        let trace = super::red::trace_of(&request);
        self.red.started(method, template, trace.as_ref());

        let mut close = false;
        // Over the connection limit: this request is answered 503 and the
        // client asked to go (the guard closes silent connections; this one
        // has a request in flight, so the worker that owns it answers).
        let mut ask_to_go = false;
        let verdict = match verdict {
            Verdict::Ok { body } => consume_body(&mut request, body),
            rejected => rejected,
        };
        let reply = match verdict {
            Verdict::Reject(status, message) => {
                close = true;
                Reply::text(status, message)
            }
            Verdict::Ok { .. } if self.guard_stats.over_limit.load(Ordering::Relaxed) => {
                ask_to_go = true;
                Reply::text(503, "too many connections, try again later\n")
            }
            Verdict::Ok { .. } => self.answer_route(found, &request, head.header_bytes, worker),
        };

        // 1xx are interim answers, never a handler's final one.
        let reply = if (200..=599).contains(&reply.status) {
            reply
        } else {
            Reply::text(500, "the handler answered an invalid status\n")
        };
        let status = status_label(reply.status);
        self.red
            .finished(method, template, status, started.elapsed(), trace.as_ref());
        // Relaxed: a hint; the shutdown's own ordering comes from the queue.
        close |= conns.stopping.load(Ordering::Relaxed);
        let persistence = if close || ask_to_go || head.close {
            Persistence::Close
        } else if *request.http_version() == HTTPVersion(1, 0) {
            if head.keep_alive {
                Persistence::AnnounceKeepAlive
            } else {
                Persistence::Close
            }
        } else {
            Persistence::KeepAlive
        };
        // Doomed before the request lets go of its body reader, so whatever
        // tiny_http parses next from this connection is dropped unserved.
        let socket = if close {
            peer.and_then(|p| conns.closing.doom(p))
        } else {
            None
        };
        if let Some(socket) = &socket {
            // tiny_http drains an unread Content-Length body when the
            // request lets go of it; with reading shut down, that ends at
            // once instead of waiting for bytes we are refusing anyway.
            socket.shutdown_read();
        }
        send(request, &reply, worker, persistence, socket.as_ref());
    }

    fn answer_route<'a>(
        &'a self,
        found: RouteMatch<'a, Route<S>>,
        request: &Request,
        header_bytes: usize,
        worker: &mut Worker,
    ) -> Reply<'a> {
        if request.url().len() > MAX_TARGET_BYTES {
            return Reply::text(414, "request target too long\n");
        }
        if header_bytes > MAX_HEADER_BYTES {
            return Reply::text(431, "request headers too large\n");
        }
        match found {
            RouteMatch::Found(_, Route::Metrics) => self.scrape(request, worker),
            RouteMatch::Found(_, Route::Handler(handler)) => {
                catch_unwind(AssertUnwindSafe(|| handler(&self.state, request))).unwrap_or_else(
                    |_| {
                        self.handler_panics.inc();
                        Reply::text(500, "internal server error\n")
                    },
                )
            }
            RouteMatch::MethodNotAllowed(_, allow) => {
                Reply::text(405, "method not allowed\n").with_header("Allow", allow)
            }
            RouteMatch::NotFound => Reply::text(404, "not found\n"),
        }
    }

    /// `GET /metrics`: the registry in the format the `Accept` header asks
    /// for (see [`negotiate`]), into the worker's encoder buffer (sent from
    /// there without a copy).
    fn scrape(&self, request: &Request, worker: &mut Worker) -> Reply<'_> {
        if let Some(token) = &self.metrics_token {
            let given = request
                .headers()
                .iter()
                .find(|h| h.field.equiv("Authorization"))
                .and_then(|h| h.value.as_str().strip_prefix("Bearer "))
                .unwrap_or("");
            if !constant_time_eq(given.trim().as_bytes(), token) {
                self.scrapes_total.get_or_create(&["401"]).inc();
                return Reply::text(401, "a bearer token is required for /metrics\n")
                    .with_header("WWW-Authenticate", "Bearer realm=\"tinymon\"");
            }
        }
        self.scrapes_in_flight.inc();
        let accept = request
            .headers()
            .iter()
            .find(|h| h.field.equiv("Accept"))
            .map(|h| h.value.as_str());
        worker.format = negotiate(accept);
        match worker.format {
            Format::Text => worker.text.encode(&self.registry),
            Format::OpenMetrics => worker.openmetrics.encode(&self.registry),
            Format::Protobuf => worker.protobuf.encode(&self.registry),
        };
        self.scrapes_total.get_or_create(&["200"]).inc();
        self.scrapes_in_flight.dec();
        Reply::encoded(worker.format.content_type())
    }
}

/// Reads and discards the body, so that tiny_http finds the next request
/// where it starts; at most [`MAX_BODY_BYTES`].
fn consume_body(request: &mut Request, body: RequestBody) -> Verdict {
    if body == RequestBody::None {
        return Verdict::Ok { body };
    }
    let mut buf = [0u8; 4096];
    let mut total = 0u64;
    let reader = request.as_reader();
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                total += n as u64;
                if total > MAX_BODY_BYTES {
                    return Verdict::Reject(413, "request body too large\n");
                }
            }
            Err(_) => return Verdict::Reject(400, "malformed or truncated request body\n"),
        }
    }
    match body {
        RequestBody::Length(n) if total != n => {
            Verdict::Reject(400, "request body shorter than its Content-Length\n")
        }
        _ => Verdict::Ok { body },
    }
}

/// Writes the answer on the request's connection. With `closing`, the
/// connection is shut down after the answer is flushed and before the
/// writer is released: tiny_http hands the connection's next writer (for
/// whatever it parses next, or its own error answers) only once this one is
/// dropped, so nothing can follow our answer onto the wire.
fn send(
    request: Request,
    reply: &Reply<'_>,
    state: &mut Worker,
    persistence: Persistence,
    closing: Option<&ConnSocket>,
) {
    let head_only = *request.method() == Method::Head;
    let body: &[u8] = match &reply.body {
        Body::Static(s) => s.as_bytes(),
        Body::Text(s) => s.as_bytes(),
        Body::Encoded => match state.format {
            Format::Text => state.text.as_bytes(),
            Format::OpenMetrics => state.openmetrics.as_bytes(),
            Format::Protobuf => state.protobuf.as_bytes(),
        },
    };
    let answer = Answer {
        status: reply.status,
        content_type: reply.content_type,
        extra: reply.header,
        fixed: reply.static_headers,
        body,
        head_only,
        persistence,
    };
    let mut writer = request.into_writer();
    // A client that went away is not an error worth reporting.
    let _ = write_answer(&mut writer, &mut state.head, &mut state.date, &answer);
    if let Some(socket) = closing {
        socket.shutdown();
    }
    drop(writer);
}

/// Compares in time that depends only on the lengths, not on where the
/// first difference is, so a client cannot find the token byte by byte.
fn constant_time_eq(given: &[u8], want: &[u8]) -> bool {
    let mut diff = given.len() ^ want.len();
    for (i, &w) in want.iter().enumerate() {
        diff |= usize::from(given.get(i).copied().unwrap_or(!w) ^ w);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiny_http::{Header, TestRequest};

    fn hello<'a>(_: &'a (), _: &Request) -> Reply<'a> {
        Reply::text(200, "hello\n")
    }

    fn boom<'a>(_: &'a (), _: &Request) -> Reply<'a> {
        panic!("handler bug")
    }

    fn odd<'a>(_: &'a (), _: &Request) -> Reply<'a> {
        Reply::text(1000, "?\n")
    }

    fn service() -> Service<()> {
        Service::new(Arc::new(Registry::new()), ())
            .unwrap()
            .route(Method::Get, "/hello", hello)
            .unwrap()
            .route(Method::Get, "/boom", boom)
            .unwrap()
            .route(Method::Get, "/odd", odd)
            .unwrap()
    }

    fn get(path: &str) -> TestRequest {
        TestRequest::new()
            .with_path(path)
            .with_header(Header::from_bytes("Host", "x").unwrap())
    }

    static RUNNING: AtomicBool = AtomicBool::new(false);

    fn serving(closing: &Closing) -> Connections<'_> {
        Connections {
            closing,
            stopping: &RUNNING,
        }
    }

    #[test]
    fn a_panicking_handler_answers_500_and_is_counted() {
        let service = service();
        let mut worker = Worker::default();
        let closing = Closing::new(0);
        for _ in 0..3 {
            service.handle(get("/boom").into(), &mut worker, &serving(&closing));
        }
        service.handle(get("/hello").into(), &mut worker, &serving(&closing));
        service.handle(get("/odd").into(), &mut worker, &serving(&closing));
        let red = service.red();
        assert_eq!(red.answered("GET", "/boom", "500"), 3.0);
        assert_eq!(service.handler_panics.get(), 3);
        assert_eq!(red.answered("GET", "/hello", "200"), 1.0);
        assert_eq!(red.answered("GET", "/odd", "500"), 1.0, "invalid status");
        assert_eq!(red.in_flight(), 0.0);
    }

    #[test]
    fn oversized_targets_and_headers_are_refused() {
        let service = service();
        let mut worker = Worker::default();
        let closing = Closing::new(0);
        let long = format!("/hello?{}", "a".repeat(MAX_TARGET_BYTES));
        service.handle(get(&long).into(), &mut worker, &serving(&closing));
        let big = get("/hello")
            .with_header(Header::from_bytes("X-Big", "b".repeat(MAX_HEADER_BYTES)).unwrap());
        service.handle(big.into(), &mut worker, &serving(&closing));
        // Without Host, an HTTP/1.1 request is refused before routing.
        service.handle(
            TestRequest::new().with_path("/hello").into(),
            &mut worker,
            &serving(&closing),
        );
        let red = service.red();
        assert_eq!(red.answered("GET", "/hello", "414"), 1.0);
        assert_eq!(red.answered("GET", "/hello", "431"), 1.0);
        assert_eq!(red.answered("GET", "/hello", "400"), 1.0);
    }

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abd", b"abc"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(!constant_time_eq(b"abcd", b"abc"));
        assert!(!constant_time_eq(b"", b"abc"));
    }
}
