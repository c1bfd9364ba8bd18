//! RED metrics (rate, errors, duration) for HTTP requests, named as in the
//! Go original so its dashboards and queries keep working.
//!
//! | family | type | labels |
//! |---|---|---|
//! | server_handle_request_total | counter | type, method, path |
//! | server_handle_request_status | gauge | type, method, path, status |
//! | server_handle_request_seconds | histogram | type, method, path, status |
//! | server_handle_requests_in_flight | gauge | |
//!
//! `server_handle_request_status` is a gauge that only goes up, because the
//! Go original declared it so; treat it like a counter in queries (`rate`
//! and `increase` work on it as long as the process does not restart).
//!
//! [`RedMetrics::serve`] wraps any tiny_http handler; [`super::Service`]
//! records the same families for its routes.

use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use tiny_http::{Request, Response};

use super::clock::Started;
use super::in_flight::InFlight;
use super::labels::{method_label, status_label};
use super::red_series::RedSeries;
use crate::metrics::{Buckets, Family, Gauge, MetricError, NativeBuckets, Registry, TraceContext};

/// Handles to the RED families of one server.
///
/// ```
/// use tinymon::http::RedMetrics;
/// use tinymon::metrics::Registry;
/// use std::time::Duration;
///
/// let registry = Registry::new();
/// let red = RedMetrics::register(&registry).unwrap();
/// red.started("GET", "/orders/{id}", None);
/// red.finished("GET", "/orders/{id}", "200", Duration::from_millis(3), None);
/// assert_eq!(red.in_flight(), 0.0);
/// ```
pub struct RedMetrics {
    series: RedSeries,
    in_flight: Arc<Gauge>,
}

impl std::fmt::Debug for RedMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedMetrics")
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}

impl RedMetrics {
    /// Registers the four families in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, MetricError> {
        let server = ["type", "method", "path"];
        let server_status = ["type", "method", "path", "status"];
        Ok(RedMetrics {
            series: RedSeries::new(
                registry.register(Family::new(
                    "server_handle_request_total",
                    "HTTP requests received, counted when each request starts.",
                    server,
                )?)?,
                registry.register(Family::new(
                    "server_handle_request_status",
                    "HTTP requests answered, by response status. Only increases (a gauge, as in the Go original).",
                    server_status,
                )?)?,
                registry.register(Family::with_config(
                    "server_handle_request_seconds",
                    "Time from receiving an HTTP request to having its response ready, in seconds.",
                    server_status,
                    Buckets::default()
                        .with_exemplars()
                        .with_native(NativeBuckets::seconds()),
                )?)?,
            ),
            in_flight: registry.gauge(
                "server_handle_requests_in_flight",
                "HTTP requests being handled right now.",
            )?,
        })
    }

    /// Counts a request as started. `path` is the route template (never
    /// the raw URL: that would let clients create series). `trace`, from
    /// the request's `traceparent`, becomes the counter's exemplar.
    ///
    /// Labels are `&'static str` because they come from fixed sets
    /// (methods, route templates, statuses); that also lets a thread skip
    /// the lookup when its previous request had the same labels. Labels
    /// read at run time can be leaked once, at start-up.
    #[inline]
    pub fn started(&self, method: &'static str, path: &'static str, trace: Option<&TraceContext>) {
        self.count_start(method, path, trace);
        self.in_flight.inc();
    }

    /// Records a request's status and duration; `trace` becomes the
    /// exemplar of the duration's bucket.
    #[inline]
    pub fn finished(
        &self,
        method: &'static str,
        path: &'static str,
        status: &'static str,
        elapsed: Duration,
        trace: Option<&TraceContext>,
    ) {
        self.in_flight.dec();
        self.record_end(method, path, status, elapsed, trace);
    }

    /// [`RedMetrics::started`], with the in-flight count held by the
    /// result: a panic that unwinds past the request still counts it out.
    #[inline]
    pub(crate) fn begin(
        &self,
        method: &'static str,
        path: &'static str,
        trace: Option<&TraceContext>,
    ) -> InFlight<'_> {
        self.count_start(method, path, trace);
        InFlight::enter(&self.in_flight)
    }

    /// [`RedMetrics::finished`] for a request [`RedMetrics::begin`] started.
    #[inline]
    pub(crate) fn end(
        &self,
        in_flight: InFlight<'_>,
        method: &'static str,
        path: &'static str,
        status: &'static str,
        elapsed: Duration,
        trace: Option<&TraceContext>,
    ) {
        drop(in_flight);
        self.record_end(method, path, status, elapsed, trace);
    }

    #[inline]
    fn count_start(&self, method: &'static str, path: &'static str, trace: Option<&TraceContext>) {
        self.series.started(method, path).inc_with_exemplar(trace);
    }

    #[inline]
    fn record_end(
        &self,
        method: &'static str,
        path: &'static str,
        status: &'static str,
        elapsed: Duration,
        trace: Option<&TraceContext>,
    ) {
        let (gauge, histogram) = self.series.finished(method, path, status);
        gauge.inc();
        histogram.observe_with_exemplar(elapsed.as_secs_f64(), trace);
    }

    /// Requests being handled right now.
    pub fn in_flight(&self) -> f64 {
        self.in_flight.get()
    }

    /// Answered requests with these labels so far (0 when none).
    pub fn answered(&self, method: &str, path: &str, status: &str) -> f64 {
        self.series
            .status(method, path, status)
            .map_or(0.0, Gauge::get)
    }

    /// Serves one request of a plain tiny_http loop: counts it, runs
    /// `handler`, records the status and the time the handler took, and
    /// sends the response. A panicking handler is answered 500 and recorded
    /// as such. `path` is the route template the request matched, or
    /// [`super::UNMATCHED`].
    pub fn serve<R: Read>(
        &self,
        request: Request,
        path: &'static str,
        handler: impl FnOnce(&Request) -> Response<R>,
    ) -> std::io::Result<()> {
        let method = method_label(request.method());
        let started = Started::now();
        let trace = trace_of(&request);
        self.started(method, path, trace.as_ref());
        let response = catch_unwind(AssertUnwindSafe(|| handler(&request)));
        let status = match &response {
            Ok(r) => r.status_code().0,
            Err(_) => 500,
        };
        self.finished(
            method,
            path,
            status_label(status),
            started.elapsed(),
            trace.as_ref(),
        );
        match response {
            Ok(r) => request.respond(r),
            Err(_) => request
                .respond(Response::from_string("internal server error\n").with_status_code(500)),
        }
    }
}

/// The trace context of a request's `traceparent` header, if it has a valid
/// one. Invalid values are ignored, never echoed.
pub(crate) fn trace_of(request: &Request) -> Option<TraceContext> {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv("traceparent"))
        .and_then(|h| TraceContext::from_traceparent(h.value.as_str()))
}
