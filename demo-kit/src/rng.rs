//! Random numbers for the demo: failure rolls in `/work`, request picks in
//! the load generator. Not for anything that needs unpredictability.

/// A small xorshift64* generator for failure rolls; statistical quality is
/// all that matters here.
pub struct Rng(u64);

impl Rng {
    /// Seeds from the clock and a per-call address, never zero.
    pub fn from_entropy() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let local = 0u8;
        let addr = &local as *const u8 as u64;
        Rng((nanos ^ addr.rotate_left(32)) | 1)
    }

    /// A seeded generator (tests, load generation).
    pub fn seeded(seed: u64) -> Self {
        Rng(seed | 1)
    }

    /// The next value in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_stays_in_unit_interval_and_varies() {
        let mut r = Rng::seeded(42);
        let values: Vec<f64> = (0..10_000).map(|_| r.next_f64()).collect();
        assert!(values.iter().all(|v| (0.0..1.0).contains(v)));
        let below_half = values.iter().filter(|v| **v < 0.5).count();
        assert!((4_500..5_500).contains(&below_half), "{below_half}");
    }
}
