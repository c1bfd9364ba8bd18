//! A tiny_http service with RED metrics: routes, /metrics, and the
//! request pipeline around them.
//!
//! [`Service::handle`] is the whole life of a request, in four steps:
//! - **admit**: drop bytes that follow a rejected request on a closing
//!   connection, and check the framing (see `framing`);
//! - **route**: match the path to a template, and count the request as
//!   started and in flight;
//! - **answer**: consume any body and run the handler or the scrape (a
//!   panic in either becomes a 500), then record status and duration;
//! - **persist**: decide whether the connection stays open, and send the
//!   answer (see `raw_response`).
//!
//! The in-flight gauges are held by guards (see `in_flight`), so a panic
//! that escapes every `catch_unwind` and kills the worker still counts its
//! request out. The labels come from fixed sets (see [`super::labels`]),
//! so the lookups find existing series without allocating once traffic
//! has warmed up.
//!
//! A service is generic over `S`, the state its handlers share (their own
//! metric handles, say); handlers are plain functions of that state and
//! the request.

use std::fmt;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tiny_http::{HTTPVersion, Method, Request};

use super::closing::Closing;
use super::framing::{self, Admission, BodyFraming, Head, MAX_BODY_BYTES};
use super::in_flight::InFlight;
use super::labels::{method_label, status_label, UNMATCHED};
use super::raw_response::{write_answer, Answer, DateCache, Persistence};
use super::red::RedMetrics;
use super::reply::{Reply, ReplyBody};
use super::router::{RouteMatch, Router};
use super::service_metrics::ServiceMetrics;
use super::socket::ConnSocket;
use crate::encode::{negotiate, Format, OpenMetricsEncoder, ProtobufEncoder, TextEncoder};
use crate::metrics::{MetricError, Registry};

/// A route handler: a plain function of the service's state and the request.
pub type Handler<S> = for<'a> fn(&'a S, &Request) -> Reply<'a>;

enum Route<S> {
    Handler(Handler<S>),
    Metrics,
}

/// What each worker thread keeps between requests: buffers that grow to
/// their working size once and are reused.
pub(crate) struct WorkerScratch {
    /// Reused by every scrape this worker serves.
    encoders: Encoders,
    /// Scratch space for response heads.
    head: Vec<u8>,
    date: DateCache,
}

impl Default for WorkerScratch {
    fn default() -> Self {
        WorkerScratch {
            encoders: Encoders::default(),
            head: Vec::with_capacity(256),
            date: DateCache::default(),
        }
    }
}

/// One encoder per format, each with its own buffer.
#[derive(Default)]
struct Encoders {
    text: TextEncoder,
    openmetrics: OpenMetricsEncoder,
    protobuf: ProtobufEncoder,
}

impl Encoders {
    /// Encodes `registry` in `format` into that format's buffer.
    fn encode(&mut self, format: Format, registry: &Registry) {
        match format {
            Format::Text => self.text.encode(registry),
            Format::OpenMetrics => self.openmetrics.encode(registry),
            Format::Protobuf => self.protobuf.encode(registry),
        };
    }

    /// What the last encode in `format` wrote.
    fn encoded(&self, format: Format) -> &[u8] {
        match format {
            Format::Text => self.text.as_bytes(),
            Format::OpenMetrics => self.openmetrics.as_bytes(),
            Format::Protobuf => self.protobuf.as_bytes(),
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
    /// More connections than the limit, as the guard last saw: requests
    /// are answered 503 and asked to leave.
    pub(crate) over_limit: &'a AtomicBool,
}

/// Longest request target (path and query) served; longer gets 414.
pub const MAX_TARGET_BYTES: usize = 8 * 1024;
/// Most header bytes (names and values) served; more gets 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// A service: routes, handler state, and the metrics it records into.
///
/// `GET /metrics` is routed to the registry's exposition, in the format
/// the scrape's `Accept` header picks (text 0.0.4, OpenMetrics 1.0 or
/// protobuf; see [`negotiate`]). [`Service::new`] registers a
/// [`ServiceMetrics`] in the registry; services that share a registry
/// share one ([`Service::with_metrics`]). A [`super::Server`] adds its own
/// statistics when it starts, and `process_*` is the program's to add
/// ([`crate::process::ProcessCollector`]).
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
    metrics: Arc<ServiceMetrics>,
    router: Router<Route<S>>,
    /// /metrics requires `Authorization: Bearer <token>` when set.
    metrics_token: Option<Box<[u8]>>,
    state: S,
}

impl<S> fmt::Debug for Service<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Service")
            .field("metrics", &self.metrics)
            .field(
                "metrics_token",
                &self.metrics_token.as_ref().map(|_| "<set>"),
            )
            .finish_non_exhaustive()
    }
}

/// A request that passed the first look, before routing.
struct Arrival {
    started: super::clock::Started,
    peer: Option<SocketAddr>,
    admission: Admission,
    head: Head,
}

/// Where a request goes, and the labels it is recorded under.
struct Routed<'a, S> {
    method: &'static str,
    template: &'static str,
    found: RouteMatch<'a, Route<S>>,
}

/// What answering decided about the connection, beyond the reply.
#[derive(Clone, Copy, Default)]
struct Leave {
    /// The request was rejected: close after the answer, and drop what
    /// follows it on the connection.
    close: bool,
    /// Over the connection limit: answered 503 and the client asked to go
    /// (the guard closes silent connections; this one has a request in
    /// flight, so the worker that owns it answers).
    ask_to_go: bool,
}

impl<S: Send + Sync + 'static> Service<S> {
    /// A service with only `GET /metrics`, recording into `registry`, where
    /// it registers a [`ServiceMetrics`].
    pub fn new(registry: Arc<Registry>, state: S) -> Result<Self, MetricError> {
        Ok(Self::with_metrics(
            ServiceMetrics::register(registry)?,
            state,
        ))
    }

    /// A service with only `GET /metrics` that records into `metrics`,
    /// which other services may share.
    pub fn with_metrics(metrics: Arc<ServiceMetrics>, state: S) -> Self {
        let router = Router::new()
            .route(Method::Get, "/metrics", Route::Metrics)
            .expect("the metrics route is valid");
        Service {
            metrics,
            router,
            metrics_token: None,
            state,
        }
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
        &self.metrics.red
    }

    /// The families this service records into.
    pub fn metrics(&self) -> &Arc<ServiceMetrics> {
        &self.metrics
    }

    /// The registry `/metrics` serves.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.metrics.registry
    }

    /// Serves one request, recording it as the Go original's middleware
    /// did: admit, route, answer, persist.
    pub(crate) fn handle(
        &self,
        mut request: Request,
        scratch: &mut WorkerScratch,
        conns: &Connections<'_>,
    ) {
        let Some(arrival) = admit(&request, conns) else {
            // Bytes that followed a rejected request on a connection being
            // closed: neither served nor answered.
            drop(request.into_writer());
            return;
        };
        let routed = self.route_of(&request);
        let (method, template) = (routed.method, routed.template);
        let trace = super::red::trace_of(&request);
        let in_flight = self.metrics.red.begin(method, template, trace.as_ref());
        let (reply, leave) = self.answer(&mut request, &arrival, routed, scratch, conns);
        let status = status_label(reply.status);
        let elapsed = arrival.started.elapsed();
        self.metrics
            .red
            .end(in_flight, method, template, status, elapsed, trace.as_ref());
        persist(request, &reply, &arrival, leave, scratch, conns);
    }

    /// Matches the request's path; unmatched requests are recorded under
    /// [`UNMATCHED`], so no client can make a series.
    fn route_of(&self, request: &Request) -> Routed<'_, S> {
        let target = framing::origin_form(request.url());
        let path = target.split('?').next().unwrap_or("");
        let found = self.router.find(request.method(), path);
        let template = match &found {
            RouteMatch::Found(t, _) | RouteMatch::MethodNotAllowed(t, _) => t.as_str(),
            RouteMatch::NotFound => UNMATCHED,
        };
        Routed {
            method: method_label(request.method()),
            template,
            found,
        }
    }

    /// Consumes the body and produces the answer: a rejection, a 503 over
    /// the connection limit, or the route's reply. Never a status outside
    /// 200..=599.
    fn answer<'a>(
        &'a self,
        request: &mut Request,
        arrival: &Arrival,
        routed: Routed<'a, S>,
        scratch: &mut WorkerScratch,
        conns: &Connections<'_>,
    ) -> (Reply<'a>, Leave) {
        let mut leave = Leave::default();
        let admission = match arrival.admission {
            Admission::Ok { body } => consume_body(request, body),
            rejected => rejected,
        };
        let reply = match admission {
            Admission::Reject(status, message) => {
                leave.close = true;
                Reply::text(status, message)
            }
            // Relaxed: a hint the guard refreshes every tick.
            Admission::Ok { .. } if conns.over_limit.load(Ordering::Relaxed) => {
                leave.ask_to_go = true;
                Reply::text(503, "too many connections, try again later\n")
            }
            Admission::Ok { .. } => {
                self.answer_route(routed.found, request, arrival.head.header_bytes, scratch)
            }
        };
        // 1xx are interim answers, never a handler's final one.
        if (200..=599).contains(&reply.status) {
            (reply, leave)
        } else {
            (
                Reply::text(500, "the handler answered an invalid status\n"),
                leave,
            )
        }
    }

    fn answer_route<'a>(
        &'a self,
        found: RouteMatch<'a, Route<S>>,
        request: &Request,
        header_bytes: usize,
        scratch: &mut WorkerScratch,
    ) -> Reply<'a> {
        if request.url().len() > MAX_TARGET_BYTES {
            return Reply::text(414, "request target too long\n");
        }
        if header_bytes > MAX_HEADER_BYTES {
            return Reply::text(431, "request headers too large\n");
        }
        match found {
            RouteMatch::Found(_, Route::Metrics) => self.scrape(request, scratch),
            RouteMatch::Found(_, Route::Handler(handler)) => {
                catch_unwind(AssertUnwindSafe(|| handler(&self.state, request))).unwrap_or_else(
                    |_| {
                        self.metrics.handler_panics.inc();
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
    /// there without a copy). A collector that panics makes the scrape a
    /// 500, counted as a handler panic and under `code="500"`.
    fn scrape(&self, request: &Request, scratch: &mut WorkerScratch) -> Reply<'_> {
        let m = &*self.metrics;
        if let Some(token) = &self.metrics_token {
            let given = request
                .headers()
                .iter()
                .find(|h| h.field.equiv("Authorization"))
                .and_then(|h| h.value.as_str().strip_prefix("Bearer "))
                .unwrap_or("");
            if !constant_time_eq(given.trim().as_bytes(), token) {
                m.scrapes_total.get_or_create(&["401"]).inc();
                return Reply::text(401, "a bearer token is required for /metrics\n")
                    .with_header("WWW-Authenticate", "Bearer realm=\"tinymon\"");
            }
        }
        let _in_flight = InFlight::enter(&m.scrapes_in_flight);
        let accept = request
            .headers()
            .iter()
            .find(|h| h.field.equiv("Accept"))
            .map(|h| h.value.as_str());
        let format = negotiate(accept);
        // Each encode starts by clearing its buffer, so one cut short by a
        // panic leaves nothing the next scrape could send.
        let encoded = catch_unwind(AssertUnwindSafe(|| {
            scratch.encoders.encode(format, &m.registry);
        }));
        if encoded.is_err() {
            m.handler_panics.inc();
            m.scrapes_total.get_or_create(&["500"]).inc();
            return Reply::text(500, "collecting the metrics failed\n");
        }
        m.scrapes_total.get_or_create(&["200"]).inc();
        Reply::encoded(format)
    }
}

/// The first look at a request: drops it when its connection is being
/// closed, and checks its framing (see `framing`).
fn admit(request: &Request, conns: &Connections<'_>) -> Option<Arrival> {
    let peer = request.remote_addr().copied();
    if peer.is_some_and(|p| conns.closing.is_doomed(p)) {
        return None;
    }
    let started = super::clock::Started::now();
    let (admission, head) = framing::check(request);
    Some(Arrival {
        started,
        peer,
        admission,
        head,
    })
}

/// Decides whether the connection stays open, dooms it when it must close
/// after a rejection, and sends the answer.
fn persist(
    request: Request,
    reply: &Reply<'_>,
    arrival: &Arrival,
    leave: Leave,
    scratch: &mut WorkerScratch,
    conns: &Connections<'_>,
) {
    // Relaxed: a hint; the shutdown's own ordering comes from the queue.
    let close = leave.close || conns.stopping.load(Ordering::Relaxed);
    let persistence = if close || leave.ask_to_go || arrival.head.close {
        Persistence::Close
    } else if *request.http_version() == HTTPVersion(1, 0) {
        if arrival.head.keep_alive {
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
        arrival.peer.and_then(|p| conns.closing.doom(p))
    } else {
        None
    };
    if let Some(socket) = &socket {
        // tiny_http drains an unread Content-Length body when the
        // request lets go of it; with reading shut down, that ends at
        // once instead of waiting for bytes we are refusing anyway.
        socket.shutdown_read();
    }
    send(request, reply, scratch, persistence, socket.as_ref());
}

/// Reads and discards the body, so that tiny_http finds the next request
/// where it starts; at most [`MAX_BODY_BYTES`].
fn consume_body(request: &mut Request, body: BodyFraming) -> Admission {
    if body == BodyFraming::None {
        return Admission::Ok { body };
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
                    return Admission::Reject(413, "request body too large\n");
                }
            }
            Err(_) => return Admission::Reject(400, "malformed or truncated request body\n"),
        }
    }
    match body {
        BodyFraming::Length(n) if total != n => {
            Admission::Reject(400, "request body shorter than its Content-Length\n")
        }
        _ => Admission::Ok { body },
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
    state: &mut WorkerScratch,
    persistence: Persistence,
    closing: Option<&ConnSocket>,
) {
    let head_only = *request.method() == Method::Head;
    let body: &[u8] = match &reply.body {
        ReplyBody::Static(s) => s.as_bytes(),
        ReplyBody::Text(s) => s.as_bytes(),
        ReplyBody::Encoded(format) => state.encoders.encoded(*format),
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
    use crate::metrics::{Collected, Collector, Desc, MetricType};
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
    static UNDER_LIMIT: AtomicBool = AtomicBool::new(false);

    fn serving(closing: &Closing) -> Connections<'_> {
        Connections {
            closing,
            stopping: &RUNNING,
            over_limit: &UNDER_LIMIT,
        }
    }

    /// A collector that panics while `BROKEN` is set.
    struct Faulty;
    static BROKEN: AtomicBool = AtomicBool::new(false);
    impl Collector for Faulty {
        fn descs(&self) -> &[Desc] {
            &[Desc {
                name: "faulty",
                help: "Panics on demand.",
                kind: MetricType::Gauge,
            }]
        }
        fn collect(&self, out: &mut Collected<'_, '_>) {
            out.sample(0, &[], 1.0);
            assert!(!BROKEN.load(Ordering::Relaxed), "collector bug");
        }
    }

    /// Serves `request`; a scrape's text stays in `scratch`.
    fn exchange(service: &Service<()>, request: TestRequest, scratch: &mut WorkerScratch) {
        service.handle(request.into(), scratch, &serving(&Closing::new(0)));
    }

    /// The text of the last text-format scrape `scratch` served.
    fn scraped(scratch: &WorkerScratch) -> &str {
        std::str::from_utf8(scratch.encoders.encoded(Format::Text)).unwrap()
    }

    #[test]
    fn a_panicking_collector_answers_500_and_leaves_no_gauge_up() {
        let service = service();
        service.registry().register_collector(Faulty).unwrap();
        let mut scratch = WorkerScratch::default();
        BROKEN.store(true, Ordering::Relaxed);
        exchange(&service, get("/metrics"), &mut scratch);
        BROKEN.store(false, Ordering::Relaxed);
        let (m, red) = (service.metrics(), service.red());
        assert_eq!(red.answered("GET", "/metrics", "500"), 1.0);
        assert_eq!(m.scrapes_in_flight(), 0.0);
        assert_eq!(red.in_flight(), 0.0);
        assert_eq!(m.handler_panics(), 1);
        // The same worker's next scrape is whole, and counts the 500.
        exchange(&service, get("/metrics"), &mut scratch);
        assert_eq!(red.answered("GET", "/metrics", "200"), 1.0);
        let text = scraped(&scratch);
        for line in [
            "faulty 1",
            "promhttp_metric_handler_requests_total{code=\"500\"} 1",
            "promhttp_metric_handler_requests_in_flight 1",
            "server_handle_requests_in_flight 1",
        ] {
            assert!(text.contains(&format!("\n{line}\n")), "{line} in {text}");
        }
        exchange(&service, get("/hello"), &mut scratch);
        assert_eq!(red.answered("GET", "/hello", "200"), 1.0);
        assert_eq!((m.scrapes_in_flight(), red.in_flight()), (0.0, 0.0));
    }

    #[test]
    fn two_services_share_one_registry() {
        let registry = Arc::new(Registry::new());
        let metrics = ServiceMetrics::register(registry.clone()).unwrap();
        // A second set in the same registry is refused, by name.
        assert_eq!(
            ServiceMetrics::register(registry.clone()).err(),
            Some(MetricError::Duplicate("server_handle_request_total".into()))
        );
        let public = Service::with_metrics(metrics.clone(), ())
            .route(Method::Get, "/hello", hello)
            .unwrap();
        let admin = Service::with_metrics(metrics, ())
            .route(Method::Get, "/boom", boom)
            .unwrap();
        let mut scratch = WorkerScratch::default();
        exchange(&public, get("/hello"), &mut scratch);
        exchange(&admin, get("/boom"), &mut scratch);
        exchange(&admin, get("/hello"), &mut scratch);
        exchange(&public, get("/metrics"), &mut scratch);
        let text = scraped(&scratch);
        for line in [
            "server_handle_request_status{type=\"http\",method=\"GET\",path=\"/hello\",status=\"200\"} 1",
            "server_handle_request_status{type=\"http\",method=\"GET\",path=\"/boom\",status=\"500\"} 1",
            "server_handle_request_status{type=\"http\",method=\"GET\",path=\"<unmatched>\",status=\"404\"} 1",
            "tinymon_handler_panics_total 1",
        ] {
            assert!(text.contains(&format!("\n{line}\n")), "{line} in {text}");
        }
        assert!(Arc::ptr_eq(public.registry(), &registry));
    }

    #[test]
    fn a_panicking_handler_answers_500_and_is_counted() {
        let service = service();
        let mut worker = WorkerScratch::default();
        let closing = Closing::new(0);
        for _ in 0..3 {
            service.handle(get("/boom").into(), &mut worker, &serving(&closing));
        }
        service.handle(get("/hello").into(), &mut worker, &serving(&closing));
        service.handle(get("/odd").into(), &mut worker, &serving(&closing));
        let red = service.red();
        assert_eq!(red.answered("GET", "/boom", "500"), 3.0);
        assert_eq!(service.metrics().handler_panics(), 3);
        assert_eq!(red.answered("GET", "/hello", "200"), 1.0);
        assert_eq!(red.answered("GET", "/odd", "500"), 1.0, "invalid status");
        assert_eq!(red.in_flight(), 0.0);
    }

    #[test]
    fn oversized_targets_and_headers_are_refused() {
        let service = service();
        let mut worker = WorkerScratch::default();
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
