//! An `f64` stored in an `AtomicU64` as its bit pattern.
//!
//! Hardware has no atomic float add, so `add` is a compare-and-swap loop on
//! the bits. Every operation is `Relaxed`: a gauge or a histogram sum is a
//! value on its own, and readers that need it ordered with other memory (the
//! histogram scrape) get that ordering from a separate atomic.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Debug, Default)]
pub(crate) struct AtomicF64 {
    bits: AtomicU64,
}

impl AtomicF64 {
    pub(crate) const fn new(v: f64) -> Self {
        AtomicF64 {
            bits: AtomicU64::new(v.to_bits()),
        }
    }

    pub(crate) fn get(&self) -> f64 {
        f64::from_bits(self.bits.load(Relaxed))
    }

    pub(crate) fn set(&self, v: f64) {
        self.bits.store(v.to_bits(), Relaxed);
    }

    pub(crate) fn add(&self, delta: f64) {
        add_to_bits(&self.bits, delta);
    }
}

/// Adds `delta` to the `f64` whose bits `bits` holds, with a compare-and-swap
/// loop (so concurrent adds are not lost).
pub(crate) fn add_to_bits(bits: &AtomicU64, delta: f64) {
    let mut current = bits.load(Relaxed);
    loop {
        let next = (f64::from_bits(current) + delta).to_bits();
        match bits.compare_exchange_weak(current, next, Relaxed, Relaxed) {
            Ok(_) => return,
            Err(actual) => current = actual,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_adds_are_not_lost() {
        let v = AtomicF64::new(0.0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..crate::metrics::stress(10_000) {
                        v.add(0.5);
                    }
                });
            }
        });
        assert_eq!(v.get(), 2.0 * crate::metrics::stress(10_000) as f64);
    }
}
