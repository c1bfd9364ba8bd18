//! The routes of the service and the middleware around them.
//!
//! [`App::handle`] is the whole life of a request: check its framing (see
//! `framing`), match the route, count it as started, consume any
//! body, run the handler (a panic becomes a 500), record status and
//! duration, respond (see `respond`), and close the connection when
//! the answer said so. The labels come from fixed sets (see
//! [`super::labels`]), so the lookups find existing series without
//! allocating once traffic has warmed up.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tiny_http::{HTTPVersion, Method, Request};

use super::closing::Closing;
use super::framing::{self, Body as RequestBody, Verdict, MAX_BODY_BYTES};
use super::guard::{GuardCollector, GuardStats};
use super::labels::{method_label, status_label, UNMATCHED};
use super::reply::{Body, Reply};
use super::respond::{write_answer, Answer, DateCache, Persistence};
use super::router::{RouteMatch, Router};
use super::service_metrics::ServiceMetrics;
use super::socket::ConnSocket;
use super::work::{self, Rng};
use crate::encode::{TextEncoder, CONTENT_TYPE};
use crate::metrics::{MetricError, Registry};

/// A route handler.
pub type Handler = for<'a> fn(&'a App, &Request, &mut WorkerState) -> Reply<'a>;

/// What each worker thread keeps between requests.
pub struct WorkerState {
    /// Reused by every scrape this worker serves.
    pub encoder: TextEncoder,
    pub rng: Rng,
    /// Scratch space for response heads.
    head: Vec<u8>,
    date: DateCache,
}

impl Default for WorkerState {
    fn default() -> Self {
        WorkerState {
            encoder: TextEncoder::new(),
            rng: Rng::from_entropy(),
            head: Vec::with_capacity(256),
            date: DateCache::default(),
        }
    }
}

/// What the server tells [`App::handle`] about the connection side.
pub struct Connections<'a> {
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

/// The service: its registry, metric handles and routes.
pub struct App {
    pub registry: &'static Registry,
    pub metrics: ServiceMetrics,
    /// What the connection guard did, exported as metrics.
    pub guard_stats: Arc<GuardStats>,
    router: Router<Handler>,
    /// /metrics requires `Authorization: Bearer <token>` when set.
    metrics_token: Option<Box<[u8]>>,
}

impl App {
    /// The service with its five routes, recording into `registry`.
    pub fn new(registry: &'static Registry) -> Result<Self, MetricError> {
        let router = Router::new()
            .route(Method::Get, "/", page as Handler)
            .and_then(|r| r.route(Method::Get, "/metrics", metrics as Handler))
            .and_then(|r| r.route(Method::Get, "/healthz", healthz as Handler))
            .and_then(|r| r.route(Method::Get, "/hello", hello as Handler))
            .and_then(|r| r.route(Method::Get, "/work", work as Handler))
            .expect("built-in routes are valid");
        let guard_stats = Arc::new(GuardStats::default());
        let metrics = ServiceMetrics::register(registry)?;
        registry.register_collector(GuardCollector(guard_stats.clone()))?;
        Ok(App {
            registry,
            metrics,
            guard_stats,
            router,
            metrics_token: None,
        })
    }

    /// Adds a route; its template becomes the `path` label.
    pub fn route(
        mut self,
        method: Method,
        template: &'static str,
        handler: Handler,
    ) -> Result<Self, String> {
        self.router = self.router.route(method, template, handler)?;
        Ok(self)
    }

    /// Protects /metrics with a bearer token.
    pub fn with_metrics_token(mut self, token: Option<String>) -> Self {
        self.metrics_token = token.map(|t| t.into_bytes().into_boxed_slice());
        self
    }

    /// Serves one request, recording it as the Go original's middleware did.
    pub fn handle(&self, mut request: Request, state: &mut WorkerState, conns: &Connections<'_>) {
        let peer = request.remote_addr().copied();
        if peer.is_some_and(|p| conns.closing.is_doomed(p)) {
            // Bytes that followed a rejected request on a connection being
            // closed: neither served nor answered.
            drop(request.into_writer());
            return;
        }
        let started = Instant::now();
        let (verdict, head) = framing::check(&request);
        let method = method_label(request.method());
        let target = framing::origin_form(request.url());
        let path = target.split('?').next().unwrap_or("");
        let found = self.router.find(request.method(), path);
        let template = match &found {
            RouteMatch::Found(t, _) | RouteMatch::MethodNotAllowed(t, _) => t.as_str(),
            RouteMatch::NotFound => UNMATCHED,
        };
        self.metrics.request_started(method, template);

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
            Verdict::Ok { .. } => self.answer_route(found, &request, head.header_bytes, state),
        };

        let status = status_label(reply.status);
        self.metrics
            .request_finished(method, template, status, started.elapsed());
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
        send(request, &reply, state, persistence, socket.as_ref());
    }

    fn answer_route<'a>(
        &'a self,
        found: RouteMatch<'a, Handler>,
        request: &Request,
        header_bytes: usize,
        state: &mut WorkerState,
    ) -> Reply<'a> {
        if request.url().len() > MAX_TARGET_BYTES {
            return Reply::text(414, "request target too long\n");
        }
        if header_bytes > MAX_HEADER_BYTES {
            return Reply::text(431, "request headers too large\n");
        }
        match found {
            RouteMatch::Found(_, handler) => {
                catch_unwind(AssertUnwindSafe(|| handler(self, request, state))).unwrap_or_else(
                    |_| {
                        if let Some(c) = self.metrics.handler_panics.get(&[]) {
                            c.inc();
                        }
                        Reply::text(500, "internal server error\n")
                    },
                )
            }
            RouteMatch::MethodNotAllowed(_, allow) => Reply {
                header: Some(("Allow", allow)),
                ..Reply::text(405, "method not allowed\n")
            },
            RouteMatch::NotFound => Reply::text(404, "not found\n"),
        }
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
    state: &mut WorkerState,
    persistence: Persistence,
    closing: Option<&ConnSocket>,
) {
    let head_only = *request.method() == Method::Head;
    let body: &[u8] = match &reply.body {
        Body::Static(s) => s.as_bytes(),
        Body::Text(s) => s.as_bytes(),
        Body::Encoded => state.encoder.as_bytes(),
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

fn metrics<'a>(app: &'a App, request: &Request, state: &mut WorkerState) -> Reply<'a> {
    if let Some(token) = &app.metrics_token {
        let given = request
            .headers()
            .iter()
            .find(|h| h.field.equiv("Authorization"))
            .and_then(|h| h.value.as_str().strip_prefix("Bearer "))
            .unwrap_or("");
        if !constant_time_eq(given.trim().as_bytes(), token) {
            if let Some(c) = app.metrics.scrapes_total.get(&["401"]) {
                c.inc();
            }
            return Reply {
                header: Some(("WWW-Authenticate", "Bearer realm=\"tinymon\"")),
                ..Reply::text(401, "a bearer token is required for /metrics\n")
            };
        }
    }
    let in_flight = app.metrics.scrapes_in_flight.get(&[]);
    if let Some(g) = in_flight {
        g.inc();
    }
    app.registry.encode(&mut state.encoder);
    if let Some(c) = app.metrics.scrapes_total.get(&["200"]) {
        c.inc();
    }
    if let Some(g) = in_flight {
        g.dec();
    }
    Reply {
        status: 200,
        content_type: CONTENT_TYPE,
        body: Body::Encoded,
        header: None,
        static_headers: &[],
    }
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

fn page<'a>(_: &'a App, _: &Request, _: &mut WorkerState) -> Reply<'a> {
    super::page::reply()
}

fn healthz<'a>(_: &'a App, _: &Request, _: &mut WorkerState) -> Reply<'a> {
    Reply::text(200, "ok\n")
}

fn hello<'a>(_: &'a App, _: &Request, _: &mut WorkerState) -> Reply<'a> {
    Reply::text(200, "hello from tinymon\n")
}

fn work<'a>(app: &'a App, request: &Request, state: &mut WorkerState) -> Reply<'a> {
    let query = request.url().split_once('?').map_or("", |(_, q)| q);
    let params = match work::parse_query(query) {
        Ok(p) => p,
        Err(message) => return Reply::owned(400, message + "\n"),
    };
    if work::call_downstream(&app.metrics, params, state.rng.next_f64()) {
        Reply::text(200, "downstream call succeeded\n")
    } else {
        Reply::text(502, "downstream call failed\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiny_http::{Header, TestRequest};

    fn app() -> App {
        App::new(Box::leak(Box::new(Registry::new()))).unwrap()
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

    fn boom<'a>(_: &'a App, _: &Request, _: &mut WorkerState) -> Reply<'a> {
        panic!("handler bug")
    }

    #[test]
    fn a_panicking_handler_answers_500_and_is_counted() {
        let app = app().route(Method::Get, "/boom", boom).unwrap();
        let mut state = WorkerState::default();
        let closing = Closing::new(0);
        for _ in 0..3 {
            app.handle(get("/boom").into(), &mut state, &serving(&closing));
        }
        app.handle(get("/hello").into(), &mut state, &serving(&closing));
        let labels = ["http", "GET", "/boom", "500"];
        assert_eq!(app.metrics.requests_status.get(&labels).unwrap().get(), 3.0);
        assert_eq!(app.metrics.handler_panics.get(&[]).unwrap().get(), 3);
        let hello = ["http", "GET", "/hello", "200"];
        assert_eq!(app.metrics.requests_status.get(&hello).unwrap().get(), 1.0);
        assert_eq!(app.metrics.in_flight.get(&[]).unwrap().get(), 0.0);
    }

    #[test]
    fn oversized_targets_and_headers_are_refused() {
        let app = app();
        let mut state = WorkerState::default();
        let closing = Closing::new(0);
        let long = format!("/hello?{}", "a".repeat(MAX_TARGET_BYTES));
        app.handle(get(&long).into(), &mut state, &serving(&closing));
        let big = get("/hello")
            .with_header(Header::from_bytes("X-Big", "b".repeat(MAX_HEADER_BYTES)).unwrap());
        app.handle(big.into(), &mut state, &serving(&closing));
        // Without Host, an HTTP/1.1 request is refused before routing.
        app.handle(
            TestRequest::new().with_path("/hello").into(),
            &mut state,
            &serving(&closing),
        );
        let status = |s: &str| {
            app.metrics
                .requests_status
                .get(&["http", "GET", "/hello", s])
                .unwrap()
                .get()
        };
        assert_eq!(status("414"), 1.0);
        assert_eq!(status("431"), 1.0);
        assert_eq!(status("400"), 1.0);
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
