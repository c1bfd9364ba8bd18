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

/// Bytes per series of a family of `SERIES` series, each touched once by
/// `touch` from this thread, beyond the empty family.
fn per_series<M: tinymon::metrics::Metric>(family: Family<M, 1>, touch: impl Fn(&M)) -> f64 {
    let family = family.with_series_cap(SERIES).unwrap();
    let ids: Vec<String> = (0..SERIES).map(|i| format!("id-{i:05}")).collect();
    let before = LIVE.load(Relaxed);
    for id in &ids {
        touch(family.get_or_create(&[id]));
    }
    let after = LIVE.load(Relaxed);
    drop(family);
    (after - before) as f64 / SERIES as f64
}

#[test]
fn bytes_per_series_at_ten_thousand() {
    let counters = Family::<Counter, 1>::new("c_total", "c", ["id"]).unwrap();
    let counter = per_series(counters, |c| c.inc());
    // Each histogram series is observed once and scraped once, so its kept
    // readings exist too.
    let histograms = |name: &str, buckets: Buckets| {
        let family = Family::<Histogram, 1>::with_config(name, "h", ["id"], buckets).unwrap();
        per_series(family, |h| {
            h.observe(0.1);
            h.snapshot();
        })
    };
    let histogram = histograms("h_seconds", Buckets::default());
    let native = histograms(
        "n_seconds",
        Buckets::default().with_native(NativeBuckets::seconds()),
    );
    eprintln!(
        "bytes per series at {SERIES} series, one thread: counter {counter:.0}, \
         classic histogram {histogram:.0}, native histogram {native:.0}"
    );
    // A series holds its label set and its metric; budgets with room for
    // label text, not for accidental growth.
    assert!(counter <= 160.0, "counter series {counter} bytes");
    // Observed by one thread and scraped: the shared pair of 256 bytes, one
    // shard of 256 and the kept readings of both (104 each), alignment,
    // totals and the series itself.
    assert!(histogram <= 1_500.0, "histogram series {histogram} bytes");
    // The same with 548-word sets: about 18 KB shared, 13 KB a shard.
    assert!(native <= 33_000.0, "native histogram series {native} bytes");
}
