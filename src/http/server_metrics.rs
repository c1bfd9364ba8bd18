//! The server's own statistics: what its connection guard did and how
//! many workers it replaced.
//!
//! They belong to a [`super::Server`], not to the [`super::Service`] it
//! serves: a service is routes and RED metrics and can be handled without
//! any server at all (tests do), while these numbers exist only while a
//! server runs. [`super::Server::start`] registers them in the service's
//! registry. A server restarted in the same process on the same registry
//! takes the ones it had ([`super::Server::start_with`]), since a
//! registry refuses the same names twice.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::guard::GuardStats;
use crate::metrics::{Collected, Collector, Desc, MetricError, MetricType, Registry};

/// The statistics of one server, registered in one registry.
///
/// ```
/// use tinymon::http::ServerMetrics;
/// use tinymon::metrics::Registry;
///
/// let registry = Registry::new();
/// let metrics = ServerMetrics::register(&registry).unwrap();
/// assert_eq!(metrics.worker_restarts(), 0);
/// // The names are taken now: a second set in the same registry is refused.
/// assert!(ServerMetrics::register(&registry).is_err());
/// ```
#[derive(Clone, Debug)]
pub struct ServerMetrics {
    stats: Arc<GuardStats>,
}

impl ServerMetrics {
    /// Registers the server families in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, MetricError> {
        let stats = Arc::new(GuardStats::default());
        registry.register_collector(StatsCollector(stats.clone()))?;
        Ok(ServerMetrics { stats })
    }

    /// Workers replaced so far after a panic escaped the request pipeline.
    pub fn worker_restarts(&self) -> u64 {
        // Relaxed: a statistic; it orders nothing.
        self.stats.worker_restarts.load(Ordering::Relaxed)
    }

    /// The counts the guard and the server write.
    pub(crate) fn stats(&self) -> &Arc<GuardStats> {
        &self.stats
    }
}

/// Exports [`GuardStats`] as tinymon_connections_open,
/// tinymon_connections_closed_total{reason}, tinymon_connections_unreleased,
/// tinymon_pool_nudges_total and tinymon_worker_restarts_total.
struct StatsCollector(Arc<GuardStats>);

const STATS_DESCS: [Desc; 5] = [
    Desc {
        name: "tinymon_connections_closed_total",
        help: "Connections the server closed on its own, by reason: idle (nothing sent for the idle timeout), oversized (request too large), shed (over the connection limit, closed before sending anything).",
        kind: MetricType::Counter,
    },
    Desc {
        name: "tinymon_connections_open",
        help: "Client connections open at the connection guard's last look (every 100 ms).",
        kind: MetricType::Gauge,
    },
    Desc {
        name: "tinymon_pool_nudges_total",
        help: "Times the connection guard woke tiny_http's thread pool for a request left waiting.",
        kind: MetricType::Counter,
    },
    Desc {
        name: "tinymon_connections_unreleased",
        help: "Sockets no longer connected that tiny_http still holds open (it never releases a connection that sent an HTTP/2.0 request line); only a restart frees them.",
        kind: MetricType::Gauge,
    },
    Desc {
        name: "tinymon_worker_restarts_total",
        help: "Worker threads replaced after a panic escaped the request handler.",
        kind: MetricType::Counter,
    },
];

impl Collector for StatsCollector {
    fn descs(&self) -> &[Desc] {
        &STATS_DESCS
    }

    fn collect(&self, out: &mut Collected<'_, '_>) {
        let s = &self.0;
        // Without the guard thread these would be zeros that look like
        // readings; only the server's own count is real there.
        if cfg!(not(target_os = "linux")) {
            out.sample(4, &[], s.worker_restarts.load(Ordering::Relaxed) as f64);
            return;
        }
        for (reason, n) in [
            ("idle", &s.closed_idle),
            ("oversized", &s.closed_oversized),
            ("shed", &s.shed),
        ] {
            out.sample(0, &[("reason", reason)], n.load(Ordering::Relaxed) as f64);
        }
        out.sample(1, &[], s.open.load(Ordering::Relaxed) as f64);
        out.sample(2, &[], s.pool_nudges.load(Ordering::Relaxed) as f64);
        out.sample(3, &[], s.unreleased.load(Ordering::Relaxed) as f64);
        out.sample(4, &[], s.worker_restarts.load(Ordering::Relaxed) as f64);
    }
}
