//! The cost of recording: tinymon against the `prometheus`,
//! `prometheus-client`, `fastmetrics` and `measured` crates in the same run
//! (`measured` on the held-handle rows only: its label lookups need a
//! typed label group, and dynamic string labels an interner).
//!
//! - histogram observe through a label lookup (4 labels) on every call;
//! - histogram observe through a handle held by the caller;
//! - counter inc through a lookup (3 labels), and through a held handle;
//! - gauge set through a held handle;
//! - two threads observing the same series at once, and two threads each
//!   on its own series of one family (time per observation, measured over
//!   both threads' wall time);
//! - tinymon alone: a held histogram with native buckets beside the
//!   classic ones, against the classic-only one (the native cost).
//!
//! Label values are prepared up front, as a service holds them in statics,
//! so only the library's own work is measured.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use fastmetrics::metrics::counter::Counter as FmCounter;
use fastmetrics::metrics::family::Family as FmFamily;
use fastmetrics::metrics::gauge::Gauge as FmGauge;
use fastmetrics::metrics::histogram::Histogram as FmHistogram;
use prometheus_client::metrics::counter::Counter as PcCounter;
use prometheus_client::metrics::family::Family as PcFamily;
use prometheus_client::metrics::gauge::Gauge as PcGauge;
use prometheus_client::metrics::histogram::Histogram as PcHistogram;
use tinymon::metrics::{Buckets, Gauge, Histogram, NativeBuckets, DEFAULT_BUCKETS};

#[path = "fixtures/observe.rs"]
mod fixtures;
use fixtures::*;

fn bench_observe(crit: &mut Criterion) {
    let (th, tc) = tinymon_families();
    let ph = prometheus::HistogramVec::new(
        prometheus::HistogramOpts::new("h_seconds", "h").buckets(DEFAULT_BUCKETS.to_vec()),
        &NAMES,
    )
    .unwrap();
    let pc =
        prometheus::IntCounterVec::new(prometheus::Opts::new("c_total", "c"), &NAMES[..3]).unwrap();
    let ch = PcFamily::<PcLabels, PcHistogram, fn() -> PcHistogram>::new_with_constructor(
        new_pc_histogram,
    );
    let cc = PcFamily::<PcLabels, PcCounter>::default();
    for path in ["/a", "/b", "/c", "/d", "/e", "/f", "/g"] {
        ph.with_label_values(&["http", "GET", path, "200"])
            .observe(0.1);
        pc.with_label_values(&["http", "GET", path]).inc();
    }
    let cl4 = pc_labels(4);
    let cl3 = pc_labels(3);
    let fh = FmFamily::<FmLabels<4>, FmHistogram>::new(new_fm_histogram);
    let fc = FmFamily::<FmLabels<3>, FmCounter>::default();
    for path in ["/a", "/b", "/c", "/d", "/e", "/f", "/g"] {
        fh.with_or_new(&FmLabels(["http", "GET", path, "200"]), |h| h.observe(0.1));
        fc.with_or_new(&FmLabels(["http", "GET", path]), |c| c.inc());
    }
    let fl4 = FmLabels(LABELS);
    let fl3 = FmLabels([LABELS[0], LABELS[1], LABELS[2]]);

    let mut g = crit.benchmark_group("histogram_observe_lookup");
    g.bench_function("tinymon", |b| {
        b.iter(|| {
            th.get_or_create(black_box(&LABELS))
                .observe(black_box(0.042))
        })
    });
    g.bench_function("prometheus", |b| {
        b.iter(|| {
            ph.with_label_values(black_box(&LABELS))
                .observe(black_box(0.042))
        })
    });
    g.bench_function("prometheus-client", |b| {
        b.iter(|| ch.get_or_create(black_box(&cl4)).observe(black_box(0.042)))
    });
    g.bench_function("fastmetrics", |b| {
        b.iter(|| fh.with_or_new(black_box(&fl4), |h| h.observe(black_box(0.042))))
    });
    g.finish();

    let mut g = crit.benchmark_group("histogram_observe_handle");
    let th1 = th.get_or_create(&LABELS);
    g.bench_function("tinymon", |b| b.iter(|| th1.observe(black_box(0.042))));
    let ph1 = ph.with_label_values(&LABELS);
    g.bench_function("prometheus", |b| b.iter(|| ph1.observe(black_box(0.042))));
    let ch1 = ch.get_or_create_owned(&cl4);
    g.bench_function("prometheus-client", |b| {
        b.iter(|| ch1.observe(black_box(0.042)))
    });
    let fh1 = new_fm_histogram();
    g.bench_function("fastmetrics", |b| b.iter(|| fh1.observe(black_box(0.042))));
    let mh1 = new_measured_histogram();
    g.bench_function("measured", |b| b.iter(|| mh1.observe(black_box(0.042))));
    g.finish();

    // Values spread over several buckets of both kinds, as latencies are.
    let values: Vec<f64> = (0..64).map(|i| 0.0007 * 1.37f64.powi(i % 24)).collect();
    let mut g = crit.benchmark_group("histogram_observe_native");
    let classic = Histogram::new(Buckets::default());
    let native = Histogram::new(Buckets::default().with_native(NativeBuckets::seconds()));
    let mut i = 0;
    g.bench_function("tinymon-classic", |b| {
        b.iter(|| {
            i = (i + 1) & 63;
            classic.observe(black_box(values[i]))
        })
    });
    g.bench_function("tinymon-classic+native", |b| {
        b.iter(|| {
            i = (i + 1) & 63;
            native.observe(black_box(values[i]))
        })
    });
    g.finish();

    let mut g = crit.benchmark_group("counter_inc_lookup");
    let l3 = &[LABELS[0], LABELS[1], LABELS[2]];
    g.bench_function("tinymon", |b| {
        b.iter(|| tc.get_or_create(black_box(l3)).inc())
    });
    g.bench_function("prometheus", |b| {
        b.iter(|| pc.with_label_values(black_box(l3)).inc())
    });
    g.bench_function("prometheus-client", |b| {
        b.iter(|| {
            cc.get_or_create(black_box(&cl3)).inc();
        })
    });
    g.bench_function("fastmetrics", |b| {
        b.iter(|| fc.with_or_new(black_box(&fl3), |c| c.inc()))
    });
    g.finish();

    let mut g = crit.benchmark_group("counter_inc_handle");
    let tc1 = tc.get_or_create(l3);
    g.bench_function("tinymon", |b| b.iter(|| black_box(&tc1).inc()));
    let pc1 = pc.with_label_values(l3);
    g.bench_function("prometheus", |b| b.iter(|| black_box(&pc1).inc()));
    let cc1 = cc.get_or_create_owned(&cl3);
    g.bench_function("prometheus-client", |b| {
        b.iter(|| {
            black_box(&cc1).inc();
        })
    });
    let fc1 = FmCounter::<u64>::default();
    g.bench_function("fastmetrics", |b| b.iter(|| black_box(&fc1).inc()));
    let mc1 = measured::Counter::new();
    g.bench_function("measured", |b| b.iter(|| black_box(&mc1).inc()));
    g.finish();

    let mut g = crit.benchmark_group("gauge_set_handle");
    let tg = Gauge::new();
    g.bench_function("tinymon", |b| b.iter(|| tg.set(black_box(3.5))));
    let pg = prometheus::Gauge::new("g", "g").unwrap();
    g.bench_function("prometheus", |b| b.iter(|| pg.set(black_box(3.5))));
    let cg = PcGauge::<f64, std::sync::atomic::AtomicU64>::default();
    g.bench_function("prometheus-client", |b| {
        b.iter(|| {
            cg.set(black_box(3.5));
        })
    });
    let fg = FmGauge::<f64>::default();
    g.bench_function("fastmetrics", |b| b.iter(|| fg.set(black_box(3.5))));
    let mg = measured::FloatGauge::new();
    g.bench_function("measured", |b| b.iter(|| mg.set(black_box(3.5))));
    g.finish();

    // Two threads on one series: contention on the same cache lines.
    let mut g = crit.benchmark_group("histogram_observe_handle_2_threads");
    g.bench_function("tinymon", |b| {
        b.iter_custom(|n| two_threads(n, || th1.observe(0.042)))
    });
    g.bench_function("prometheus", |b| {
        b.iter_custom(|n| two_threads(n, || ph1.observe(0.042)))
    });
    g.bench_function("prometheus-client", |b| {
        b.iter_custom(|n| two_threads(n, || ch1.observe(0.042)))
    });
    g.bench_function("fastmetrics", |b| {
        b.iter_custom(|n| two_threads(n, || fh1.observe(0.042)))
    });
    g.bench_function("measured", |b| {
        b.iter_custom(|n| two_threads(n, || mh1.observe(0.042)))
    });
    g.finish();

    // Two threads, each on its own series of one family (held handles):
    // no shared counters, but neighbouring memory.
    let mut g = crit.benchmark_group("histogram_observe_handle_2_threads_2_series");
    let other = ["http", "GET", "/a", "200"];
    let th2 = th.get_or_create(&other);
    g.bench_function("tinymon", |b| {
        b.iter_custom(|n| two_threads_each(n, || th1.observe(0.042), || th2.observe(0.042)))
    });
    let ph2 = ph.with_label_values(&other);
    g.bench_function("prometheus", |b| {
        b.iter_custom(|n| two_threads_each(n, || ph1.observe(0.042), || ph2.observe(0.042)))
    });
    let ch2 = ch.get_or_create_owned(&pc_labels_of(&other));
    g.bench_function("prometheus-client", |b| {
        b.iter_custom(|n| two_threads_each(n, || ch1.observe(0.042), || ch2.observe(0.042)))
    });
    let fh2 = new_fm_histogram();
    g.bench_function("fastmetrics", |b| {
        b.iter_custom(|n| two_threads_each(n, || fh1.observe(0.042), || fh2.observe(0.042)))
    });
    let mh2 = new_measured_histogram();
    g.bench_function("measured", |b| {
        b.iter_custom(|n| two_threads_each(n, || mh1.observe(0.042), || mh2.observe(0.042)))
    });
    g.finish();
}

fn pc_labels_of(values: &[&str; 4]) -> PcLabels {
    NAMES
        .iter()
        .zip(values)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Runs `a` on one thread and `b` on another, `iters` times each; returns
/// the wall time, i.e. the time per operation as each caller sees it.
fn two_threads_each(iters: u64, a: impl Fn() + Sync, b: impl Fn() + Sync) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..iters {
                a();
            }
        });
        s.spawn(|| {
            for _ in 0..iters {
                b();
            }
        });
    });
    start.elapsed()
}

/// Runs `op` `iters` times on each of two threads; returns the wall time per
/// pair of operations, i.e. per operation as each caller sees it.
fn two_threads(iters: u64, op: impl Fn() + Sync) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..iters {
                    op();
                }
            });
        }
    });
    start.elapsed()
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench_observe
}
criterion_main!(benches);
