//! The routes of the service and the middleware around them.
//!
//! [`App::handle`] is the whole life of a request: match the route, count it
//! as started, run the handler (a panic becomes a 500), record status and
//! duration, respond. The labels come from fixed sets (see
//! [`super::labels`]), so the lookups find existing series without
//! allocating once traffic has warmed up.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use tiny_http::{Header, Method, Request, Response, StatusCode};

use super::guard::{GuardCollector, GuardStats};
use super::labels::{method_label, status_label, UNMATCHED};
use super::reply::{Body, Reply};
use super::router::{RouteMatch, Router};
use super::service_metrics::ServiceMetrics;
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
}

impl Default for WorkerState {
    fn default() -> Self {
        WorkerState {
            encoder: TextEncoder::new(),
            rng: Rng::from_entropy(),
        }
    }
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
    /// The service with its four routes, recording into `registry`.
    pub fn new(registry: &'static Registry) -> Result<Self, MetricError> {
        let router = Router::new()
            .route(Method::Get, "/metrics", metrics as Handler)
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
    pub fn handle(&self, request: Request, state: &mut WorkerState, closing: bool) {
        let started = Instant::now();
        let method = method_label(request.method());
        let path = request.url().split('?').next().unwrap_or("");
        let found = self.router.find(request.method(), path);
        let template = match &found {
            RouteMatch::Found(t, _) | RouteMatch::MethodNotAllowed(t, _) => t.as_str(),
            RouteMatch::NotFound => UNMATCHED,
        };
        self.metrics.request_started(method, template);

        let header_bytes: usize = request
            .headers()
            .iter()
            .map(|h| h.field.as_str().as_str().len() + h.value.as_str().len())
            .sum();
        let reply = if request.url().len() > MAX_TARGET_BYTES {
            Reply::text(414, "request target too long\n")
        } else if header_bytes > MAX_HEADER_BYTES {
            Reply::text(431, "request headers too large\n")
        } else {
            match found {
                RouteMatch::Found(_, handler) => {
                    catch_unwind(AssertUnwindSafe(|| handler(self, &request, state)))
                        .unwrap_or_else(|_| {
                            if let Some(c) = self.metrics.handler_panics.get(&[]) {
                                c.inc();
                            }
                            Reply::text(500, "internal server error\n")
                        })
                }
                RouteMatch::MethodNotAllowed(_, allow) => Reply {
                    header: Some(("Allow", allow)),
                    ..Reply::text(405, "method not allowed\n")
                },
                RouteMatch::NotFound => Reply::text(404, "not found\n"),
            }
        };

        let status = status_label(reply.status);
        self.metrics
            .request_finished(method, template, status, started.elapsed());
        send(request, &reply, state, closing);
    }
}

fn send(request: Request, reply: &Reply<'_>, state: &WorkerState, closing: bool) {
    let body: &[u8] = match &reply.body {
        Body::Static(s) => s.as_bytes(),
        Body::Text(s) => s.as_bytes(),
        Body::Encoded => state.encoder.as_bytes(),
    };
    let mut headers = Vec::with_capacity(3);
    headers.push(header("Content-Type", reply.content_type));
    if let Some((name, value)) = reply.header {
        headers.push(header(name, value));
    }
    if closing {
        headers.push(connection_close());
    }
    let response = Response::new(
        StatusCode(reply.status),
        headers,
        body,
        Some(body.len()),
        None,
    )
    // Always send Content-Length, never chunked: simpler for clients.
    .with_chunked_threshold(usize::MAX);
    // A client that went away is not an error worth reporting.
    let _ = request.respond(response);
}

/// `Connection: close`, for answers sent while shutting down, so keep-alive
/// clients stop sending on this connection. tiny_http drops a header named
/// `Connection` that a handler sets, so this one rides on the value of
/// another header; both lines reach the client as two well-formed headers.
fn connection_close() -> Header {
    header("Cache-Control", "no-store\r\nConnection: close")
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("header text is ASCII")
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
    use tiny_http::TestRequest;

    fn app() -> App {
        App::new(Box::leak(Box::new(Registry::new()))).unwrap()
    }

    fn boom<'a>(_: &'a App, _: &Request, _: &mut WorkerState) -> Reply<'a> {
        panic!("handler bug")
    }

    #[test]
    fn a_panicking_handler_answers_500_and_is_counted() {
        let app = app().route(Method::Get, "/boom", boom).unwrap();
        let mut state = WorkerState::default();
        for _ in 0..3 {
            app.handle(
                TestRequest::new().with_path("/boom").into(),
                &mut state,
                false,
            );
        }
        app.handle(
            TestRequest::new().with_path("/hello").into(),
            &mut state,
            false,
        );
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
        let long = format!("/hello?{}", "a".repeat(MAX_TARGET_BYTES));
        app.handle(
            TestRequest::new().with_path(&long).into(),
            &mut state,
            false,
        );
        let big = TestRequest::new()
            .with_path("/hello")
            .with_header(Header::from_bytes("X-Big", "b".repeat(MAX_HEADER_BYTES)).unwrap());
        app.handle(big.into(), &mut state, false);
        let status = |s: &str| {
            app.metrics
                .requests_status
                .get(&["http", "GET", "/hello", s])
                .unwrap()
                .get()
        };
        assert_eq!(status("414"), 1.0);
        assert_eq!(status("431"), 1.0);
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
