//! A histogram with lock-free `observe` and consistent scrapes.
//!
//! # The hot/cold protocol
//!
//! A scrape must never show a half-finished observation: `_count` has to equal
//! the `+Inf` bucket and `_sum` has to cover exactly the observations counted,
//! while other threads keep observing. Locking `observe` would give that at a
//! price on every request; instead each histogram keeps two sets of counts
//! (bucket counters, sum, completed count) and a single word, `started`, whose
//! top bit selects the *hot* set and whose lower 63 bits count observations
//! begun. This is the scheme of client_golang's histogram, with one change
//! that makes scrapes cheaper (below).
//!
//! An observation:
//! 1. `started.fetch_add(1)` — one atomic step that both counts the
//!    observation as begun and reads which set is hot;
//! 2. adds to the sum of that set;
//! 3. for native histograms, adds one to its native bucket of that set
//!    (Relaxed: step 4's Release publishes it);
//! 4. adds one to its bucket of that set (Release). Each observation adds to
//!    exactly one bucket, so the buckets of a set add up to the observations
//!    finished on it; client_golang keeps a separate "completed" counter for
//!    this, which costs one more atomic read-modify-write per observation.
//!
//! A scrape (scrapes of one histogram are serialised by `scrape`; observers
//! never touch it):
//! 1. flips the hot bit with `started.fetch_add(1 << 63)`, learning in the same
//!    step `n`, the number of observations begun before the flip. From here on
//!    new observations go to the other set;
//! 2. the other set has not been written since the previous scrape made it
//!    cold, and that scrape kept its reading (`Reading`). So the observations
//!    begun before the flip that belong to the now-cold set number
//!    `n - reading.count`; the scrape waits until the cold set's buckets add
//!    up to that: every observation that chose it has finished, and none can
//!    start on it again;
//! 3. in one pass over the buckets it adds the cold set to the kept reading,
//!    writing the cumulative totals into the kept `cumulative` slice (and
//!    the native counts, the same way, into `native`): every
//!    observation begun before the flip, exactly once, so buckets, sum and
//!    count agree; and it keeps the cold set's values as the new reading,
//!    because that set is the one the next scrape will find untouched;
//! 4. it hands the totals to the caller as a [`HistogramReading`] while it
//!    still holds `scrape`, so the slice cannot change under an encoder.
//!
//! client_golang instead moves the cold counts into the hot set and zeroes
//! them on every scrape, which costs an atomic read-modify-write per bucket;
//! here a scrape does plain loads and one flip. The sets are never reset, so
//! their counts only grow. The scrape's wait is short: it lasts as long as the
//! slowest observation in flight, a few atomic adds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::atomic_f64::AtomicF64;
use super::exemplar::{ExemplarSlot, TraceContext};
use super::native::{NativeBuckets, NativeReading, NativeSnapshot};
use super::{HistogramReading, Labels, Metric, MetricError, MetricType, Visitor};

/// The default bucket upper bounds, in seconds (client_golang's defaults).
pub const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

const HOT_BIT: u64 = 1 << 63;
const COUNT_MASK: u64 = HOT_BIT - 1;

/// Validated bucket upper bounds, shared by every series of a family.
///
/// ```
/// use tinymon::metrics::Buckets;
/// assert!(Buckets::new(&[0.1, 1.0, 10.0]).is_ok());
/// assert!(Buckets::new(&[1.0, 0.1]).is_err());
/// assert_eq!(Buckets::default().bounds().len(), 11);
/// ```
#[derive(Clone, Debug)]
pub struct Buckets {
    bounds: Arc<[f64]>,
    /// Each series keeps one exemplar per bucket (see [`Buckets::with_exemplars`]).
    exemplars: bool,
    /// Native buckets beside the classic ones (see [`Buckets::with_native`]).
    native: Option<NativeBuckets>,
}

impl Buckets {
    /// Checks that `bounds` is non-empty, finite and strictly increasing.
    /// The `+Inf` bucket is implied; do not list it.
    pub fn new(bounds: &[f64]) -> Result<Self, MetricError> {
        if bounds.is_empty() {
            return Err(MetricError::InvalidBuckets("no bucket bounds".into()));
        }
        if let Some(b) = bounds.iter().find(|b| !b.is_finite()) {
            return Err(MetricError::InvalidBuckets(format!(
                "bound {b} is not finite (+Inf is always added)"
            )));
        }
        if let Some(w) = bounds.windows(2).find(|w| w[0] >= w[1]) {
            return Err(MetricError::InvalidBuckets(format!(
                "bounds must increase strictly, but {} is followed by {}",
                w[0], w[1]
            )));
        }
        Ok(Buckets {
            bounds: bounds.into(),
            exemplars: false,
            native: None,
        })
    }

    /// Histograms over these buckets keep the newest exemplar of each
    /// bucket ([`Histogram::observe_with_exemplar`]); 48 bytes a bucket.
    pub fn with_exemplars(mut self) -> Self {
        self.exemplars = true;
        self
    }

    /// Histograms over these buckets also keep native buckets, which the
    /// protobuf format writes beside the classic ones; text formats carry
    /// the classic buckets only. Each series then keeps 32 bytes a native
    /// bucket slot (two sets, the kept reading and the totals handed out;
    /// see [`NativeBuckets`]).
    ///
    /// ```
    /// use tinymon::metrics::{Buckets, Histogram, NativeBuckets};
    /// let h = Histogram::new(Buckets::default().with_native(NativeBuckets::new(1.1, 1e-6, 240).unwrap()));
    /// h.observe(0.003);
    /// let native = h.snapshot().native.unwrap();
    /// assert_eq!(native.schema, 3);
    /// assert_eq!(native.positive, vec![(-67, 1)]); // (2^(-68/8), 2^(-67/8)]
    /// ```
    pub fn with_native(mut self, native: NativeBuckets) -> Self {
        self.native = Some(native);
        self
    }

    /// The finite upper bounds.
    pub fn bounds(&self) -> &[f64] {
        &self.bounds
    }

    /// The native-bucket settings, if any.
    pub fn native(&self) -> Option<&NativeBuckets> {
        self.native.as_ref()
    }
}

impl Default for Buckets {
    fn default() -> Self {
        Buckets::new(&DEFAULT_BUCKETS).expect("default buckets are valid")
    }
}

/// One set of counts; a histogram has two (hot and cold), each holding the
/// observations made while it was hot.
#[derive(Debug)]
struct Counts {
    /// Per-bucket counts, not cumulative; the last entry is `+Inf` only.
    /// Incremented with Release after the sum, read with Acquire by the
    /// scrape: seeing an observation's bucket increment means seeing its sum.
    buckets: Box<[AtomicU64]>,
    sum: AtomicF64,
    /// Native bucket counts (`Layout::slots` of them), or empty.
    /// Incremented before the classic bucket, so its Release covers them.
    native: Box<[AtomicU64]>,
}

fn zeroed(len: usize) -> Box<[AtomicU64]> {
    (0..len).map(|_| AtomicU64::new(0)).collect()
}

impl Counts {
    fn new(len: usize, native: usize) -> Self {
        Counts {
            buckets: zeroed(len),
            sum: AtomicF64::new(0.0),
            native: zeroed(native),
        }
    }
}

/// A consistent reading of a histogram, copied out.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSnapshot {
    /// Cumulative counts, one per bound plus the final `+Inf`.
    pub cumulative: Vec<u64>,
    /// Sum of the observations counted.
    pub sum: f64,
    /// Observations counted; equals the last cumulative count.
    pub count: u64,
    /// The native buckets, when the histogram keeps them.
    pub native: Option<NativeSnapshot>,
}

/// A histogram of `f64` observations.
///
/// ```
/// use tinymon::metrics::{Buckets, Histogram};
/// let h = Histogram::new(Buckets::default());
/// h.observe(0.003);
/// h.observe(0.7);
/// let s = h.snapshot();
/// assert_eq!(s.count, 2);
/// assert_eq!(s.cumulative[0], 1); // le="0.005"
/// assert_eq!(*s.cumulative.last().unwrap(), 2); // le="+Inf"
/// ```
#[derive(Debug)]
pub struct Histogram {
    buckets: Buckets,
    /// Top bit: index of the hot `Counts`. Lower 63 bits: observations begun.
    started: AtomicU64,
    counts: [Counts; 2],
    /// One per bucket when the buckets keep exemplars, else empty.
    exemplars: Box<[ExemplarSlot]>,
    /// Serialises scrapes of this histogram (two concurrent flips would break
    /// the wait in step 2) and holds the reading of the set that is hot now,
    /// taken when it was last cold. Observers never take it.
    scrape: Mutex<Reading>,
}

/// The values of one set at the last scrape that found it cold, and the
/// cumulative totals that scrape handed out.
#[derive(Debug)]
struct Reading {
    buckets: Box<[u64]>,
    sum: f64,
    count: u64,
    /// Filled by each scrape before its visitor runs, so a reading is a
    /// plain slice however often an encoder walks it (8 bytes a bucket).
    cumulative: Box<[u64]>,
    /// Native counts: the kept set's values, then the totals handed out
    /// (absolute per bucket, not cumulative); both empty without native.
    native_kept: Box<[u64]>,
    native_totals: Box<[u64]>,
}

impl Histogram {
    /// An empty histogram over `buckets`.
    pub fn new(buckets: Buckets) -> Self {
        let len = buckets.bounds.len() + 1;
        let slots = buckets.native.as_ref().map_or(0, |n| n.layout().slots());
        let exemplars = if buckets.exemplars {
            (0..len).map(|_| ExemplarSlot::default()).collect()
        } else {
            Box::new([]) as Box<[ExemplarSlot]>
        };
        Histogram {
            buckets,
            started: AtomicU64::new(0),
            counts: [Counts::new(len, slots), Counts::new(len, slots)],
            exemplars,
            scrape: Mutex::new(Reading {
                buckets: vec![0; len].into(),
                sum: 0.0,
                count: 0,
                cumulative: vec![0; len].into(),
                native_kept: vec![0; slots].into(),
                native_totals: vec![0; slots].into(),
            }),
        }
    }

    /// Records one observation. Lock-free and allocation-free.
    #[inline]
    pub fn observe(&self, v: f64) {
        self.observe_at(self.index(v), v);
    }

    /// Records one observation made for `trace`, which becomes its bucket's
    /// exemplar when the buckets keep exemplars. Lock-free and
    /// allocation-free; `None` is a plain [`Histogram::observe`].
    #[inline]
    pub fn observe_with_exemplar(&self, v: f64, trace: Option<&TraceContext>) {
        let index = self.index(v);
        self.observe_at(index, v);
        if let (Some(trace), Some(slot)) = (trace, self.exemplars.get(index)) {
            slot.record(trace, v);
        }
    }

    /// The bucket of `v`: `le` is inclusive; NaN compares false everywhere
    /// and lands in +Inf, as in client_golang.
    #[inline]
    fn index(&self, v: f64) -> usize {
        let bounds = &self.buckets.bounds;
        if bounds.len() <= 16 {
            bounds.iter().position(|&b| v <= b).unwrap_or(bounds.len())
        } else {
            bounds.partition_point(|&b| b < v)
        }
    }

    #[inline]
    fn observe_at(&self, index: usize, v: f64) {
        // Relaxed: choosing the set needs only the atomicity of this RMW; the
        // scrape learns about the writes below through `completed`.
        let started = self.started.fetch_add(1, Ordering::Relaxed);
        let hot = &self.counts[(started >> 63) as usize];
        // Relaxed: published by the bucket's Release below.
        hot.sum.add(v);
        if let Some(slot) = self
            .buckets
            .native
            .as_ref()
            .and_then(|n| n.layout().slot(v))
        {
            // Relaxed: published by the bucket's Release below, like the sum.
            hot.native[slot].fetch_add(1, Ordering::Relaxed);
        }
        hot.buckets[index].fetch_add(1, Ordering::Release);
    }

    /// The bucket bounds.
    pub fn buckets(&self) -> &Buckets {
        &self.buckets
    }

    /// Reads the histogram with the scrape protocol and hands the reading
    /// to `f`. Other scrapes of this histogram wait until `f` returns;
    /// observers never do.
    pub fn read<R>(&self, f: impl FnOnce(&HistogramReading<'_>) -> R) -> R {
        let mut kept = self.scrape.lock();
        // AcqRel: Acquire orders the reads below after the flip; Release is
        // harmless (nothing else to publish) but keeps the flip a full fence.
        let before = self.started.fetch_add(HOT_BIT, Ordering::AcqRel);
        let begun = before & COUNT_MASK;
        let cold = &self.counts[(before >> 63) as usize];
        // The hot set was not written since the last scrape read it.
        let on_cold = begun - kept.count;

        // Acquire pairs with each observer's Release on its bucket.
        let finished = || -> u64 { cold.buckets.iter().map(|b| b.load(Ordering::Acquire)).sum() };
        let mut spins = 0u32;
        while finished() != on_cold {
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                // An observer was descheduled mid-observation; let it run.
                std::thread::yield_now();
            }
        }
        let Reading {
            buckets: kept_buckets,
            sum: kept_sum,
            count: kept_count,
            cumulative,
            native_kept,
            native_totals,
        } = &mut *kept;
        let mut total = 0;
        for ((c, k), cum) in cold
            .buckets
            .iter()
            .zip(kept_buckets.iter_mut())
            .zip(cumulative.iter_mut())
        {
            // Relaxed: the Acquire loads above already ordered these after
            // every write to the cold set, and nothing writes it now.
            let n = c.load(Ordering::Relaxed);
            total += n + *k;
            *cum = total;
            // The cold set is the one the next scrape will find untouched.
            *k = n;
        }
        let cold_sum = cold.sum.get();
        let sum = cold_sum + *kept_sum;
        *kept_sum = cold_sum;
        *kept_count = on_cold;
        // The native counts of the cold set, as the classic ones above.
        for ((c, k), total) in cold
            .native
            .iter()
            .zip(native_kept.iter_mut())
            .zip(native_totals.iter_mut())
        {
            // Relaxed: as above; each observer's native add precedes its
            // classic bucket's Release, which the wait acquired.
            let n = c.load(Ordering::Relaxed);
            *total = n + *k;
            *k = n;
        }
        f(&HistogramReading {
            bounds: &self.buckets.bounds,
            cumulative,
            sum,
            count: begun,
            exemplars: &self.exemplars,
            native: (self.buckets.native.as_ref())
                .map(|n| NativeReading::new(n.layout(), native_totals)),
        })
    }

    /// A consistent reading, copied out (allocates; encoders use [`Histogram::read`]).
    pub fn snapshot(&self) -> HistogramSnapshot {
        self.read(|r| HistogramSnapshot {
            cumulative: r.cumulative().to_vec(),
            sum: r.sum(),
            count: r.count(),
            native: r.native().map(NativeSnapshot::of),
        })
    }
}

impl Metric for Histogram {
    type Config = Buckets;
    const TYPE: MetricType = MetricType::Histogram;

    fn with_config(buckets: &Buckets) -> Self {
        Histogram::new(buckets.clone())
    }

    fn read(&self, labels: Labels<'_>, out: &mut dyn Visitor<'_>) {
        Histogram::read(self, |reading| out.histogram(labels, reading));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn bucket_validation() {
        assert!(Buckets::new(&[]).is_err());
        assert!(Buckets::new(&[1.0, 1.0]).is_err());
        assert!(Buckets::new(&[2.0, 1.0]).is_err());
        assert!(Buckets::new(&[0.1, f64::NAN]).is_err());
        assert!(Buckets::new(&[0.1, f64::INFINITY]).is_err());
        assert!(Buckets::new(&[-1.0, 0.0, 1e6]).is_ok());
        assert_eq!(Buckets::default().bounds(), DEFAULT_BUCKETS);
    }

    #[test]
    fn observations_land_in_inclusive_buckets() {
        let h = Histogram::new(Buckets::new(&[1.0, 2.0]).unwrap());
        for v in [0.5, 1.0, 1.5, 2.0, 3.0, f64::NAN] {
            h.observe(v);
        }
        let s = h.snapshot();
        assert_eq!(s.cumulative, vec![2, 4, 6]);
        assert_eq!(s.count, 6);
        assert!(s.sum.is_nan());
    }

    #[test]
    fn many_bounds_use_binary_search_with_same_result() {
        let bounds: Vec<f64> = (1..=40).map(f64::from).collect();
        let h = Histogram::new(Buckets::new(&bounds).unwrap());
        for v in [0.0, 1.0, 1.5, 40.0, 41.0] {
            h.observe(v);
        }
        let s = h.snapshot();
        assert_eq!(s.cumulative[0], 2); // 0.0 and 1.0 (le inclusive)
        assert_eq!(s.cumulative[1], 3); // 1.5
        assert_eq!(s.cumulative[39], 4); // 40.0
        assert_eq!(s.cumulative[40], 5); // +Inf
    }

    #[test]
    fn repeated_snapshots_keep_totals() {
        let h = Histogram::new(Buckets::default());
        for round in 1..=5u64 {
            h.observe(0.2);
            let s = h.snapshot();
            assert_eq!(s.count, round);
            assert_eq!(s.sum, 0.2 * round as f64);
            assert_eq!(s.cumulative[5], round); // le="0.25"
            assert_eq!(s.cumulative[4], 0); // le="0.1"
        }
    }

    /// Two threads observe 1.0 without pause while this thread scrapes: every
    /// scrape must be internally consistent (sum == count == +Inf bucket), and
    /// the final totals must count every observation.
    #[test]
    fn scrapes_are_consistent_while_two_threads_observe() {
        let h = Histogram::new(Buckets::default());
        let stop = AtomicBool::new(false);
        let per_thread = std::thread::scope(|s| {
            let observers: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        let mut n = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            h.observe(1.0);
                            n += 1;
                        }
                        n
                    })
                })
                .collect();
            let mut last = 0;
            for _ in 0..crate::metrics::stress(2_000) {
                let snap = h.snapshot();
                assert_eq!(snap.sum, snap.count as f64, "sum covers exactly the count");
                assert_eq!(*snap.cumulative.last().unwrap(), snap.count);
                assert_eq!(snap.cumulative[6], 0, "nothing at or below 0.5");
                assert_eq!(snap.cumulative[7], snap.count, "everything at le=1");
                assert!(
                    snap.count >= last,
                    "count went back: {last} -> {}",
                    snap.count
                );
                last = snap.count;
            }
            stop.store(true, Ordering::Relaxed);
            observers
                .into_iter()
                .map(|t| t.join().unwrap())
                .sum::<u64>()
        });
        let snap = h.snapshot();
        assert_eq!(snap.count, per_thread);
        assert_eq!(snap.sum, per_thread as f64);
    }

    /// Native buckets under the same protocol: one thread observes 1.0,
    /// another -2.0, a third 3.0 while this one scrapes. In every scrape the
    /// native buckets hold exactly the observations counted, and the sum
    /// is exactly the one their counts imply.
    #[test]
    fn native_scrapes_are_consistent_while_threads_observe() {
        let native = NativeBuckets::new(1.1, 1e-3, 120).unwrap();
        let h = Histogram::new(Buckets::default().with_native(native));
        let stop = AtomicBool::new(false);
        let values = [1.0, -2.0, 3.0];
        let per_thread = std::thread::scope(|s| {
            let observers: Vec<_> = values
                .iter()
                .map(|&v| {
                    let (h, stop) = (&h, &stop);
                    s.spawn(move || {
                        let mut n = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            h.observe(v);
                            n += 1;
                        }
                        n
                    })
                })
                .collect();
            // Stops the observers however this thread leaves the scope, so a
            // failed assertion fails the test instead of hanging it.
            struct StopOnDrop<'a>(&'a AtomicBool);
            impl Drop for StopOnDrop<'_> {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::Relaxed);
                }
            }
            let _stop = StopOnDrop(&stop);
            for _ in 0..crate::metrics::stress(2_000) {
                let snap = h.snapshot();
                let native = snap.native.unwrap();
                assert_eq!(native.total(), snap.count);
                assert_eq!(native.schema, 3);
                let at =
                    |side: &[(i32, u64)], key| side.iter().find(|b| b.0 == key).map_or(0, |b| b.1);
                // 1.0 is key 0; 2.0 is key 8; 3.0 is key ceil(8 log2 3) = 13.
                let ones = at(&native.positive, 0);
                let twos = at(&native.negative, 8);
                let threes = at(&native.positive, 13);
                assert_eq!(ones + twos + threes, snap.count);
                assert_eq!(
                    snap.sum,
                    ones as f64 - 2.0 * twos as f64 + 3.0 * threes as f64
                );
            }
            stop.store(true, Ordering::Relaxed);
            observers
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect::<Vec<_>>()
        });
        let native = h.snapshot().native.unwrap();
        assert_eq!(
            native.positive,
            vec![(0, per_thread[0]), (13, per_thread[2])]
        );
        assert_eq!(native.negative, vec![(8, per_thread[1])]);
    }

    #[test]
    fn native_keeps_nan_out_and_coarsens_past_the_window() {
        let native = NativeBuckets::new(1.1, 1e-3, 120).unwrap();
        let top = native.window_top();
        let h = Histogram::new(Buckets::default().with_native(native));
        h.observe(f64::NAN);
        h.observe(0.0005);
        h.observe(0.5);
        let s = h.snapshot();
        let n = s.native.unwrap();
        assert_eq!((s.count, n.total(), n.zero_count), (3, 2, 1));
        assert_eq!(n.schema, 3);
        h.observe(top * 2.0);
        let n = h.snapshot().native.unwrap();
        assert_eq!(n.schema, -4);
        // 0.5 (key -8 at schema 3) lies in (2^-16, 1], key 0 at schema -4.
        assert_eq!(n.positive[0], (0, 1));
        assert_eq!(n.total(), 3);
    }
}
