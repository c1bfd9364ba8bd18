//! A monotonically increasing integer.
//!
//! Counting in a `u64` rather than client_golang's `f64` keeps `inc` a single
//! `fetch_add` and makes values exact up to 2^64.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::{Labels, Metric, MetricType, Value, Visitor};

/// A counter: only ever goes up.
///
/// ```
/// let c = tinymon::metrics::Counter::new();
/// c.inc();
/// c.inc_by(41);
/// assert_eq!(c.get(), 42);
/// ```
#[derive(Debug, Default)]
pub struct Counter {
    // Relaxed everywhere: a counter publishes no other memory, and each
    // fetch_add is atomic, so no increment is lost and readers see some
    // value that was really held.
    value: AtomicU64,
}

impl Counter {
    /// A counter at zero.
    pub const fn new() -> Self {
        Counter {
            value: AtomicU64::new(0),
        }
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.value.fetch_add(1, Relaxed);
    }

    /// Adds `n`.
    #[inline]
    pub fn inc_by(&self, n: u64) {
        self.value.fetch_add(n, Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.value.load(Relaxed)
    }
}

impl Metric for Counter {
    type Config = ();
    const TYPE: MetricType = MetricType::Counter;

    fn with_config(_: &()) -> Self {
        Counter::new()
    }

    #[inline]
    fn value(&self) -> Option<Value> {
        Some(Value::Int(self.get()))
    }

    fn read(&self, labels: Labels<'_>, out: &mut dyn Visitor<'_>) {
        out.values(&[(labels, Value::Int(self.get()))]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_increment_is_lost() {
        let c = Counter::new();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..crate::metrics::stress(25_000) {
                        c.inc();
                    }
                });
            }
        });
        assert_eq!(c.get(), 4 * crate::metrics::stress(25_000) as u64);
    }
}
