//! Heap bytes per series at 10,000 series, counted by a global allocator
//! that tallies live bytes: what a family of each kind costs as it grows,
//! and a budget each must stay within. The figures print with
//! `--nocapture`; the README's memory table comes from them.
//!
//! One test, so no other test allocates while it counts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

use tinymon::metrics::{Buckets, Counter, Family, Histogram, NativeBuckets};

struct Tally;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed straight to `System`, which upholds the
// `GlobalAlloc` contract; the tally only counts sizes.
unsafe impl GlobalAlloc for Tally {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Relaxed);
        // SAFETY: the caller's contract for `alloc`, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static TALLY: Tally = Tally;

const SERIES: usize = 10_000;

/// What a family of `SERIES` series costs, each series made and then
/// touched once by `touch` from this thread: bytes per series beyond the
/// empty family, and bytes of the whole family.
fn cost<M: tinymon::metrics::Metric>(make: impl Fn() -> Family<M, 1>, touch: impl Fn(&M)) -> Cost {
    let ids: Vec<String> = (0..SERIES).map(|i| format!("id-{i:05}")).collect();
    let start = LIVE.load(Relaxed);
    let family = make().with_series_cap(SERIES).unwrap();
    let empty = LIVE.load(Relaxed);
    for id in &ids {
        touch(family.get_or_create(&[id]));
    }
    let full = LIVE.load(Relaxed);
    drop(family);
    assert_eq!(LIVE.load(Relaxed), start, "the family freed all it held");
    Cost {
        per_series: (full - empty) as f64 / SERIES as f64,
        empty_family: (empty - start) as f64,
        family: (full - start) as f64,
    }
}

#[derive(Debug)]
struct Cost {
    per_series: f64,
    empty_family: f64,
    family: f64,
}

/// `n` values in `n` neighbouring schema-3 buckets from 10 ms up, each in
/// the middle of its bucket (one bucket is a factor of 2^(1/8)).
fn spread(n: u32) -> Vec<f64> {
    (0..n)
        .map(|i| 0.01 * ((f64::from(i) + 0.5) / 8.0).exp2())
        .collect()
}

/// One value in every bucket of `NativeBuckets::seconds()`'s fine window
/// above the zero bucket: keys -159..=39 at schema 3.
fn full_window() -> Vec<f64> {
    (-159..=39)
        .map(|k| ((f64::from(k) - 0.5) / 8.0).exp2())
        .collect()
}

/// Bytes per series of prometheus-client's family of `SERIES` histograms
/// with classic default buckets and native ones at growth 1.1 (schema 3),
/// zero threshold 2^-20 and at most 200 buckets, like
/// `NativeBuckets::seconds()`, each series observing `values` once: the
/// rival's figure for the README, asserted on nothing.
fn prometheus_client_native(values: &[f64]) -> f64 {
    use prometheus_client::metrics::family::Family as PcFamily;
    use prometheus_client::metrics::histogram::{Histogram as PcHistogram, NativeHistogramConfig};
    type PcLabels = Vec<(String, String)>;
    fn make() -> PcHistogram {
        let native = NativeHistogramConfig::new(1.1)
            .zero_threshold(1.0 / f64::from(1u32 << 20))
            .max_buckets(200);
        PcHistogram::new_classic_and_native(tinymon::metrics::DEFAULT_BUCKETS, native)
    }
    let labels: Vec<PcLabels> = (0..SERIES)
        .map(|i| vec![("id".to_string(), format!("id-{i:05}"))])
        .collect();
    let family = PcFamily::<PcLabels, PcHistogram, fn() -> PcHistogram>::new_with_constructor(make);
    let before = LIVE.load(Relaxed);
    for l in &labels {
        let h = family.get_or_create(l);
        values.iter().for_each(|&v| h.observe(v));
    }
    let after = LIVE.load(Relaxed);
    drop(family);
    (after - before) as f64 / SERIES as f64
}

#[test]
fn bytes_per_series_at_ten_thousand() {
    let counter = cost(
        || Family::<Counter, 1>::new("c_total", "c", ["id"]).unwrap(),
        |c| c.inc(),
    );
    let family = |buckets: Buckets| {
        move || {
            Family::<Histogram, 1>::with_config("h_seconds", "h", ["id"], buckets.clone()).unwrap()
        }
    };
    let classic = family(Buckets::default());
    let native = family(Buckets::default().with_native(NativeBuckets::seconds()));
    // Each histogram series below is scraped once after its observations,
    // so what a scrape keeps exists too.
    let observe = |values: Vec<f64>| {
        move |h: &Histogram| {
            for &v in &values {
                h.observe(v);
            }
            h.snapshot();
        }
    };
    let classic_empty = cost(&classic, observe(vec![]));
    let classic_once = cost(&classic, observe(vec![0.1]));
    let native_empty = cost(&native, observe(vec![]));
    let native_once = cost(&native, observe(vec![0.1]));
    let native_20 = cost(&native, observe(spread(20)));
    let native_full = cost(&native, observe(full_window()));

    let rival_20 = prometheus_client_native(&spread(20));
    let rival_full = prometheus_client_native(&full_window());

    // The figures are only worth printing if they are what they say.
    let h = Histogram::new(Buckets::default().with_native(NativeBuckets::seconds()));
    observe(spread(20))(&h);
    assert_eq!(h.snapshot().native.unwrap().positive.len(), 20);
    let h = Histogram::new(Buckets::default().with_native(NativeBuckets::seconds()));
    observe(full_window())(&h);
    let s = h.snapshot().native.unwrap();
    assert_eq!((s.schema, s.positive.len()), (3, 199));

    eprintln!("bytes per series at {SERIES} series, one thread observing, scraped once:");
    for (what, c) in [
        ("counter", &counter),
        ("classic histogram, nothing observed", &classic_empty),
        ("classic histogram, one observation", &classic_once),
        ("native histogram, nothing observed", &native_empty),
        ("native histogram, one observation", &native_once),
        ("native histogram, 20 buckets", &native_20),
        ("native histogram, full window (199 buckets)", &native_full),
    ] {
        eprintln!(
            "  {what}: {:.0} per series; empty family {:.0}, family of {SERIES} {:.1} MB",
            c.per_series,
            c.empty_family,
            c.family / 1e6
        );
    }
    eprintln!(
        "  prometheus-client native histogram (label set cloned into its map): \
         20 buckets {rival_20:.0}, full window {rival_full:.0} per series"
    );

    // A series holds its label set and its metric; budgets with room for
    // label text, not for accidental growth.
    assert!(counter.per_series <= 160.0, "counter: {counter:?}");
    // Observed by one thread and scraped: that thread's shard (256 bytes
    // and the alignment slack), and the totals a scrape hands out.
    assert!(
        classic_once.per_series <= 1_100.0,
        "classic: {classic_once:?}"
    );
    // Native buckets cost nothing until something is observed, and a
    // native family costs nothing more than a classic one until a series
    // overflows (the overflow series is made on first use).
    assert!(
        native_empty.per_series <= 1.1 * classic_empty.per_series,
        "native {native_empty:?} against classic {classic_empty:?}"
    );
    assert!(
        native_empty.empty_family <= classic_empty.empty_family + 64.0,
        "empty native family {native_empty:?} against classic {classic_empty:?}"
    );
    // The pages that 20 neighbouring buckets touch, and no more.
    assert!(native_20.per_series <= 2_500.0, "20 buckets: {native_20:?}");
    assert!(native_20.family <= 30e6, "20 buckets: {native_20:?}");
    overflow_series_cost_nothing_until_used();
}

/// The overflow series of a family is made when the first label set past
/// the cap arrives, not before: a family that never overflows does not pay
/// for it, and one that does pays once.
/// Called from the one test: a second test would allocate while it counts.
fn overflow_series_cost_nothing_until_used() {
    let native = Buckets::default().with_native(NativeBuckets::seconds());
    let f = Family::<Histogram, 1>::with_config("o_seconds", "o", ["id"], native)
        .unwrap()
        .with_series_cap(1)
        .unwrap();
    f.get_or_create(&["a"]).observe(0.1);
    let before = LIVE.load(Relaxed);
    f.get_or_create(&["b"]).observe(0.1);
    let first = LIVE.load(Relaxed) - before;
    f.get_or_create(&["c"]).observe(0.1);
    let second = LIVE.load(Relaxed) - before - first;
    assert!(first > 0, "the overflow series was made on first use");
    assert_eq!(second, 0, "and only once");
    assert_eq!(f.overflowed(), 2);
}
