//! A value that goes up and down.

use super::atomic_f64::AtomicF64;
use super::{Labels, Metric, MetricType, Value, Visitor};

/// A gauge holding an `f64`.
///
/// ```
/// let g = tinymon::metrics::Gauge::new();
/// g.set(3.0);
/// g.inc();
/// g.sub(1.5);
/// assert_eq!(g.get(), 2.5);
/// ```
#[derive(Debug, Default)]
pub struct Gauge {
    value: AtomicF64,
}

impl Gauge {
    /// A gauge at zero.
    pub const fn new() -> Self {
        Gauge {
            value: AtomicF64::new(0.0),
        }
    }

    /// Replaces the value.
    #[inline]
    pub fn set(&self, v: f64) {
        self.value.set(v);
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.value.add(1.0);
    }

    /// Subtracts one.
    #[inline]
    pub fn dec(&self) {
        self.value.add(-1.0);
    }

    /// Adds `delta`.
    pub fn add(&self, delta: f64) {
        self.value.add(delta);
    }

    /// Subtracts `delta`.
    pub fn sub(&self, delta: f64) {
        self.value.add(-delta);
    }

    /// The current value.
    pub fn get(&self) -> f64 {
        self.value.get()
    }
}

impl Metric for Gauge {
    type Config = ();
    const TYPE: MetricType = MetricType::Gauge;

    fn with_config(_: &()) -> Self {
        Gauge::new()
    }

    #[inline]
    fn value(&self) -> Option<Value> {
        Some(Value::Float(self.get()))
    }

    fn read(&self, labels: Labels<'_>, out: &mut dyn Visitor<'_>) {
        out.values(&[(labels, Value::Float(self.get()))]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inc_and_dec_balance_across_threads() {
        let g = Gauge::new();
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| (0..crate::metrics::stress(10_000)).for_each(|_| g.inc()));
                s.spawn(|| (0..crate::metrics::stress(10_000)).for_each(|_| g.dec()));
            }
        });
        assert_eq!(g.get(), 0.0);
    }
}
