//! The demo's client_* families: its calls to a downstream dependency,
//! named as in the Go original, plus `tinymon_build_info`.
//!
//! | family | type | labels |
//! |---|---|---|
//! | client_handle_request_total | counter | type, name, op, peer |
//! | client_handle_seconds | histogram | type, name, op, peer |
//! | client_handle_request_status | gauge | type, name, op, peer, status |
//! | tinymon_build_info | gauge | version |
//!
//! `client_handle_request_status` only goes up, because the Go original
//! declared it a gauge; treat it like a counter in queries.

use std::sync::Arc;
use std::time::Duration;

use tinymon::metrics::{
    Buckets, Counter, Family, Gauge, Histogram, MetricError, NativeBuckets, Registry, TraceContext,
};

/// A downstream dependency as the client_* families label it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Peer {
    pub(crate) kind: &'static str,
    pub(crate) name: &'static str,
    pub(crate) op: &'static str,
    pub(crate) addr: &'static str,
}

/// Handles to the client_* families.
pub(crate) struct ClientMetrics {
    total: Arc<Family<Counter, 4>>,
    seconds: Arc<Family<Histogram, 4>>,
    status: Arc<Family<Gauge, 5>>,
}

impl ClientMetrics {
    /// Registers the client_* families and the build info in `registry`.
    pub(crate) fn register(registry: &Registry) -> Result<Self, MetricError> {
        let client = ["type", "name", "op", "peer"];
        let metrics = ClientMetrics {
            total: registry.register(Family::new(
                "client_handle_request_total",
                "Calls made to downstream dependencies, counted when each call starts.",
                client,
            )?)?,
            seconds: registry.register(Family::with_config(
                "client_handle_seconds",
                "Duration of calls to downstream dependencies, in seconds.",
                client,
                Buckets::default()
                    .with_exemplars()
                    .with_native(NativeBuckets::seconds()),
            )?)?,
            status: registry.register(Family::new(
                "client_handle_request_status",
                "Calls to downstream dependencies finished, by status. Only increases (a gauge, as in the Go original).",
                ["type", "name", "op", "peer", "status"],
            )?)?,
        };
        registry
            .register(Family::<Gauge, 1>::new(
                "tinymon_build_info",
                "The running tinymon build; always 1, with the version as a label.",
                ["version"],
            )?)?
            .get_or_create(&[env!("CARGO_PKG_VERSION")])
            .set(1.0);
        Ok(metrics)
    }

    /// Counts an outgoing call as started.
    pub(crate) fn call_started(&self, peer: &Peer) {
        self.total
            .get_or_create(&[peer.kind, peer.name, peer.op, peer.addr])
            .inc();
    }

    /// Records an outgoing call's status and duration; `trace` (the
    /// incoming request's) becomes the duration bucket's exemplar.
    pub(crate) fn call_finished(
        &self,
        peer: &Peer,
        status: &str,
        elapsed: Duration,
        trace: Option<&TraceContext>,
    ) {
        let labels = [peer.kind, peer.name, peer.op, peer.addr];
        self.seconds
            .get_or_create(&labels)
            .observe_with_exemplar(elapsed.as_secs_f64(), trace);
        self.status
            .get_or_create(&[peer.kind, peer.name, peer.op, peer.addr, status])
            .inc();
    }
}
