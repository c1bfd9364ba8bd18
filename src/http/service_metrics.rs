//! The service's own metric families, named as in the Go original so its
//! dashboards and queries keep working.
//!
//! | family | type | labels |
//! |---|---|---|
//! | server_handle_request_total | counter | type, method, path |
//! | server_handle_request_status | gauge | type, method, path, status |
//! | server_handle_request_seconds | histogram | type, method, path, status |
//! | server_handle_requests_in_flight | gauge | |
//! | client_handle_request_total | counter | type, name, op, peer |
//! | client_handle_seconds | histogram | type, name, op, peer |
//! | client_handle_request_status | gauge | type, name, op, peer, status |
//! | promhttp_metric_handler_requests_total | counter | code |
//! | promhttp_metric_handler_requests_in_flight | gauge | |
//! | tinymon_build_info | gauge | version |
//! | tinymon_handler_panics_total | counter | |
//!
//! `server_handle_request_status` and `client_handle_request_status` are
//! gauges that only go up, because the Go original declared them so; treat
//! them like counters in queries (`increase`, `rate` work on them as long as
//! the process does not restart).

use std::sync::Arc;
use std::time::Duration;

use crate::metrics::{Counter, Family, Gauge, Histogram, MetricError, Registry};
use crate::process::ProcessCollector;

/// The `type` label of requests this server handles.
pub const SERVER_TYPE: &str = "http";

/// Handles to every family the service records.
pub struct ServiceMetrics {
    pub requests_total: Arc<Family<Counter>>,
    pub requests_status: Arc<Family<Gauge>>,
    pub request_seconds: Arc<Family<Histogram>>,
    pub in_flight: Arc<Family<Gauge>>,
    pub client_total: Arc<Family<Counter>>,
    pub client_seconds: Arc<Family<Histogram>>,
    pub client_status: Arc<Family<Gauge>>,
    pub scrapes_total: Arc<Family<Counter>>,
    pub scrapes_in_flight: Arc<Family<Gauge>>,
    pub handler_panics: Arc<Family<Counter>>,
}

/// A downstream dependency as the client_* families label it.
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    pub kind: &'static str,
    pub name: &'static str,
    pub op: &'static str,
    pub addr: &'static str,
}

impl ServiceMetrics {
    /// Registers the service families, build info and process metrics in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, MetricError> {
        let server = ["type", "method", "path"];
        let server_status = ["type", "method", "path", "status"];
        let client = ["type", "name", "op", "peer"];
        let client_status = ["type", "name", "op", "peer", "status"];
        let metrics = ServiceMetrics {
            requests_total: registry.register(Family::new(
                "server_handle_request_total",
                "HTTP requests received, counted when each request starts.",
                &server,
            )?)?,
            requests_status: registry.register(Family::new(
                "server_handle_request_status",
                "HTTP requests answered, by response status. Only increases (a gauge, as in the Go original).",
                &server_status,
            )?)?,
            request_seconds: registry.register(Family::new(
                "server_handle_request_seconds",
                "Time from receiving an HTTP request to having its response ready, in seconds.",
                &server_status,
            )?)?,
            in_flight: registry.register(Family::new(
                "server_handle_requests_in_flight",
                "HTTP requests being handled right now.",
                &[],
            )?)?,
            client_total: registry.register(Family::new(
                "client_handle_request_total",
                "Calls made to downstream dependencies, counted when each call starts.",
                &client,
            )?)?,
            client_seconds: registry.register(Family::new(
                "client_handle_seconds",
                "Duration of calls to downstream dependencies, in seconds.",
                &client,
            )?)?,
            client_status: registry.register(Family::new(
                "client_handle_request_status",
                "Calls to downstream dependencies finished, by status. Only increases (a gauge, as in the Go original).",
                &client_status,
            )?)?,
            scrapes_total: registry.register(Family::new(
                "promhttp_metric_handler_requests_total",
                "Scrapes of /metrics served, by HTTP status code.",
                &["code"],
            )?)?,
            scrapes_in_flight: registry.register(Family::new(
                "promhttp_metric_handler_requests_in_flight",
                "Scrapes of /metrics being served right now.",
                &[],
            )?)?,
            handler_panics: registry.register(Family::new(
                "tinymon_handler_panics_total",
                "Handler panics caught and answered with 500.",
                &[],
            )?)?,
        };
        // Like promhttp, show the scrape codes at zero before they happen.
        for code in ["200", "401", "500", "503"] {
            metrics.scrapes_total.get(&[code]);
        }
        metrics.scrapes_in_flight.get(&[]);
        metrics.in_flight.get(&[]);
        metrics.handler_panics.get(&[]);
        let build_info = registry.register(Family::<Gauge>::new(
            "tinymon_build_info",
            "The running tinymon build; always 1, with the version as a label.",
            &["version"],
        )?)?;
        if let Some(g) = build_info.get(&[env!("CARGO_PKG_VERSION")]) {
            g.set(1.0);
        }
        registry.register_collector(ProcessCollector)?;
        Ok(metrics)
    }

    /// Counts a request as started.
    #[inline]
    pub fn request_started(&self, method: &str, path: &str) {
        if let Some(c) = self.requests_total.get(&[SERVER_TYPE, method, path]) {
            c.inc();
        }
        if let Some(g) = self.in_flight.get(&[]) {
            g.inc();
        }
    }

    /// Records a request's status and duration.
    #[inline]
    pub fn request_finished(&self, method: &str, path: &str, status: &str, elapsed: Duration) {
        if let Some(g) = self.in_flight.get(&[]) {
            g.dec();
        }
        let labels = [SERVER_TYPE, method, path, status];
        if let Some(g) = self.requests_status.get(&labels) {
            g.inc();
        }
        if let Some(h) = self.request_seconds.get(&labels) {
            h.observe(elapsed.as_secs_f64());
        }
    }

    /// Counts an outgoing call as started.
    pub fn call_started(&self, peer: &Peer) {
        if let Some(c) = self
            .client_total
            .get(&[peer.kind, peer.name, peer.op, peer.addr])
        {
            c.inc();
        }
    }

    /// Records an outgoing call's status and duration.
    pub fn call_finished(&self, peer: &Peer, status: &str, elapsed: Duration) {
        let labels = [peer.kind, peer.name, peer.op, peer.addr];
        if let Some(h) = self.client_seconds.get(&labels) {
            h.observe(elapsed.as_secs_f64());
        }
        if let Some(g) = self
            .client_status
            .get(&[peer.kind, peer.name, peer.op, peer.addr, status])
        {
            g.inc();
        }
    }
}
