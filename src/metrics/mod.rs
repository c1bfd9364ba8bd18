//! Metric values and the registry that names them.
//!
//! - [`Counter`], [`Gauge`], [`Histogram`]: one series' value, updated with
//!   atomics only.
//! - [`Family`]: a metric name with fixed label names and one series per
//!   label-value set, looked up without locks, bounded by a series cap.
//! - [`Registry`]: the families and scrape-time [`Collector`]s a scrape
//!   writes, in name order; [`default_registry`] is the process-wide one.
//!
//! The bytes on the wire are written by [`crate::encode`].

mod atomic_f64;
mod counter;
mod error;
mod family;
mod gauge;
mod histogram;
mod registry;

pub use counter::Counter;
pub use error::MetricError;
pub(crate) use error::{check_label_name, check_metric_name};
pub use family::{Family, DEFAULT_SERIES_CAP, MAX_SERIES_CAP};
pub use gauge::Gauge;
pub use histogram::{Buckets, Histogram, HistogramSnapshot, DEFAULT_BUCKETS};
pub use registry::{default_registry, Collected, Collector, Desc, Registry, SERIES_DROPPED};

use crate::encode::{MetricType, SeriesWriter};

/// A value type a [`Family`] can hold.
pub trait Metric: Send + Sync + 'static {
    /// What every series of a family is built from (buckets for histograms).
    type Config: Send + Sync + 'static;
    /// The `# TYPE` of the family.
    const TYPE: MetricType;
    /// A fresh series.
    fn with_config(config: &Self::Config) -> Self;
    /// Writes this series' sample lines.
    fn encode(&self, out: &mut SeriesWriter<'_>);
}

/// Iterations for a concurrency test: all of them natively, a few under
/// Miri, which runs code about a thousand times slower but checks every
/// memory access and explores thread interleavings.
#[cfg(test)]
pub(crate) fn stress(full: usize) -> usize {
    if cfg!(miri) {
        (full / 200).clamp(3, 50)
    } else {
        full
    }
}
