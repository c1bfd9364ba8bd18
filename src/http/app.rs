//! The routes of the service and the middleware around them.
//!
//! [`App::handle`] is the whole life of a request: match the route, count it
//! as started, run the handler (a panic becomes a 500), record status and
//! duration, respond. The labels come from fixed sets (see
//! [`super::labels`]), so the lookups find existing series without
//! allocating once traffic has warmed up.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use tiny_http::{Header, Method, Request, Response, StatusCode};

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

/// The service: its registry, metric handles and routes.
pub struct App {
    pub registry: &'static Registry,
    pub metrics: ServiceMetrics,
    router: Router<Handler>,
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
        Ok(App {
            registry,
            metrics: ServiceMetrics::register(registry)?,
            router,
        })
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

        let reply = match found {
            RouteMatch::Found(_, handler) => {
                catch_unwind(AssertUnwindSafe(|| handler(self, &request, state)))
                    .unwrap_or_else(|_| Reply::text(500, "internal server error\n"))
            }
            RouteMatch::MethodNotAllowed(_, allow) => Reply {
                allow: Some(allow),
                ..Reply::text(405, "method not allowed\n")
            },
            RouteMatch::NotFound => Reply::text(404, "not found\n"),
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
    if let Some(allow) = reply.allow {
        headers.push(header("Allow", allow));
    }
    if closing {
        // Shutting down: tell keep-alive clients not to send more here.
        headers.push(header("Connection", "close"));
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

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("header text is ASCII")
}

fn metrics<'a>(app: &'a App, _: &Request, state: &mut WorkerState) -> Reply<'a> {
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
        allow: None,
    }
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
