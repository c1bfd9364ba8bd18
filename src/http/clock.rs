//! The request timer: the monotonic clock as whole nanoseconds.
//!
//! Every request reads the clock twice. `Instant::now` and
//! `Instant::elapsed` read the same clock (`CLOCK_MONOTONIC`) but keep
//! seconds and nanoseconds apart, so the difference takes a checked,
//! borrowing subtraction and a `Duration` normalised back to seconds: about
//! 50 instructions a request under callgrind, beside the clock reads. One
//! `u64` of nanoseconds makes the difference one subtraction. It wraps after
//! 584 years of uptime.

use std::time::Duration;

/// When a request started, on the monotonic clock.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Started(u64);

impl Started {
    #[inline]
    pub(crate) fn now() -> Self {
        Started(monotonic_ns())
    }

    /// The time since `self`; zero if the clock read earlier (it cannot go
    /// back, but a zero is safer than a wrapped `u64`).
    #[inline]
    pub(crate) fn elapsed(self) -> Duration {
        Duration::from_nanos(monotonic_ns().saturating_sub(self.0))
    }
}

#[inline]
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live, writable `timespec`, the only memory
    // clock_gettime writes; CLOCK_MONOTONIC exists on every Linux kernel
    // this runs on, so the call cannot fail and `ts` is always set.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    // Both fields are non-negative for CLOCK_MONOTONIC (time since boot).
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_what_instant_measures() {
        let ours = Started::now();
        let std = std::time::Instant::now();
        std::thread::sleep(Duration::from_millis(20));
        let (a, b) = (std.elapsed(), ours.elapsed());
        // Ours started first and ended last, and both read one clock.
        assert!(b >= a, "{b:?} < {a:?}");
        assert!(b - a < Duration::from_millis(50), "{b:?} against {a:?}");
        assert!(b >= Duration::from_millis(20));
    }
}
