//! The families a [`super::Service`] records into, registered once per
//! registry.
//!
//! They are apart from the service so that several services can record
//! into one registry: a registry refuses a name twice, so the second
//! service takes the first one's handles ([`super::Service::with_metrics`])
//! instead of registering its own. The server's statistics are not here
//! (see `server_metrics`), nor are `process_*`: a program that wants those
//! registers [`crate::process::ProcessCollector`] itself.

use std::sync::Arc;

use super::red::RedMetrics;
use crate::metrics::{Counter, Family, Gauge, MetricError, Registry};

/// The RED families, the promhttp scrape families and the handler-panic
/// count of one registry.
///
/// ```
/// use std::sync::Arc;
/// use tinymon::http::{Service, ServiceMetrics};
/// use tinymon::metrics::Registry;
///
/// let metrics = ServiceMetrics::register(Arc::new(Registry::new())).unwrap();
/// let public = Service::with_metrics(metrics.clone(), "public");
/// let admin = Service::with_metrics(metrics, "admin");
/// assert!(Arc::ptr_eq(public.registry(), admin.registry()));
/// ```
#[derive(Debug)]
pub struct ServiceMetrics {
    pub(super) registry: Arc<Registry>,
    pub(super) red: RedMetrics,
    /// `promhttp_metric_handler_requests_total{code}`.
    pub(super) scrapes_total: Arc<Family<Counter, 1>>,
    /// `promhttp_metric_handler_requests_in_flight`.
    pub(super) scrapes_in_flight: Arc<Gauge>,
    /// `tinymon_handler_panics_total`: handlers and scrapes that panicked.
    pub(super) handler_panics: Arc<Counter>,
}

impl ServiceMetrics {
    /// Registers the RED families (see [`RedMetrics`]),
    /// `promhttp_metric_handler_requests_total{code}`,
    /// `promhttp_metric_handler_requests_in_flight` and
    /// `tinymon_handler_panics_total` in `registry`.
    pub fn register(registry: Arc<Registry>) -> Result<Arc<Self>, MetricError> {
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
            "Handler and scrape panics caught and answered with 500.",
        )?;
        Ok(Arc::new(ServiceMetrics {
            registry,
            red,
            scrapes_total,
            scrapes_in_flight,
            handler_panics,
        }))
    }

    /// The registry these families live in, which `/metrics` serves.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The RED metrics.
    pub fn red(&self) -> &RedMetrics {
        &self.red
    }

    /// Panics caught so far, in handlers and in scrapes.
    pub fn handler_panics(&self) -> u64 {
        self.handler_panics.get()
    }

    /// Scrapes of `/metrics` being served right now.
    pub fn scrapes_in_flight(&self) -> f64 {
        self.scrapes_in_flight.get()
    }
}
