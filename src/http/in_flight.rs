//! In-flight gauges that come back down however their request ends.
//!
//! A request counted as in flight must be counted out on every path out of
//! the pipeline, a panic included: a panic that unwinds past a plain
//! `dec()` leaves the gauge one too high for the rest of the process. An
//! [`InFlight`] increments its gauge when made and decrements it when
//! dropped, and unwinding drops it.

use crate::metrics::Gauge;

/// Holds one unit of a gauge for as long as it lives.
#[must_use = "the gauge goes back down as soon as this is dropped"]
#[derive(Debug)]
pub(crate) struct InFlight<'a>(&'a Gauge);

impl<'a> InFlight<'a> {
    /// Counts one more in `gauge` until the result is dropped.
    #[inline]
    pub(crate) fn enter(gauge: &'a Gauge) -> Self {
        gauge.inc();
        InFlight(gauge)
    }
}

impl Drop for InFlight<'_> {
    #[inline]
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_brings_the_gauge_back_down() {
        let g = Gauge::new();
        let held = InFlight::enter(&g);
        assert_eq!(g.get(), 1.0);
        drop(held);
        assert_eq!(g.get(), 0.0);
        let unwound = std::panic::catch_unwind(|| {
            let _held = InFlight::enter(&g);
            assert_eq!(g.get(), 1.0);
            panic!("while in flight");
        });
        assert!(unwound.is_err());
        assert_eq!(g.get(), 0.0);
    }
}
