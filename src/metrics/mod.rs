//! Metric values, the registry that names them, and the readings a scrape
//! takes of them.
//!
//! - [`Counter`], [`Gauge`], [`Histogram`]: one series' value, updated with
//!   atomics only. Unlabelled metrics are these types themselves
//!   ([`Registry::counter`] and friends).
//! - [`Family`]: a metric name with `N` fixed label names and one series per
//!   label-value set, looked up without locks, bounded by a series cap.
//! - [`Registry`]: the families and scrape-time [`Collector`]s a scrape
//!   reads, in name order; [`default_registry`] is the process-wide one.
//! - [`Visitor`]: what a scrape hands the readings to. Metric types never
//!   write bytes; the encoders in [`crate::encode`] are visitors.

mod atomic_f64;
mod collector;
mod counter;
mod error;
mod exemplar;
mod exemplar_counter;
mod family;
mod gauge;
mod histogram;
mod label_key;
mod labels;
mod native;
mod native_pages;
mod registry;
mod sync;
mod thread_slot;
mod visitor;
mod zeroed;

pub use collector::{Collected, Collector, Desc};
pub use counter::Counter;
pub use error::MetricError;
pub use exemplar::{Exemplar, TraceContext};
pub use exemplar_counter::ExemplarCounter;
pub use family::{Family, DEFAULT_SERIES_CAP, MAX_SERIES_CAP, OVERFLOW_LABEL_VALUE};
pub use gauge::Gauge;
pub use histogram::{Buckets, Histogram, HistogramSnapshot, DEFAULT_BUCKETS};
pub use label_key::LabelKey;
pub use labels::{LabelIter, Labels};
pub use native::{
    NativeBucketIter, NativeBuckets, NativeReading, NativeSnapshot, MAX_NATIVE_BUCKETS,
};
pub use registry::{default_registry, Registry, SERIES_DROPPED};
pub use visitor::{FamilyDesc, HistogramReading, MetricType, Value, Visitor};

/// A value type a [`Family`] can hold.
pub trait Metric: Send + Sync + 'static {
    /// What every series of a family is built from (buckets for histograms).
    type Config: Send + Sync + 'static;
    /// The type of the family.
    const TYPE: MetricType;
    /// A fresh series.
    fn with_config(config: &Self::Config) -> Self;
    /// Hands this series' reading, under `labels`, to `out`.
    fn read(&self, labels: Labels<'_>, out: &mut dyn Visitor<'_>);
    /// The reading as one value, for counters and gauges; a family batches
    /// these (see [`Visitor::values`]). `None` (the default) sends every
    /// series through [`Metric::read`].
    fn value(&self) -> Option<Value> {
        None
    }
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
