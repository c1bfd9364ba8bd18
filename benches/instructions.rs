//! Instructions per operation, counted by callgrind: the observe and encode
//! rows of `observe.rs` and `encode.rs`, for tinymon and its rivals, in a
//! measure that does not move with the load on a shared machine.
//!
//! Each row runs under `valgrind --tool=callgrind` twice, repeating its
//! operation `FEW` and `MANY` times on the same fixture (from
//! `fixtures/`); the difference of the two totals over `MANY - FEW` is the
//! cost of one operation, with setup, start-up and shutdown cancelled out.
//! Single-threaded: callgrind serialises threads, so contention does not
//! show here (the criterion rows measure it).
//!
//! `make bench-instructions` runs it (needs valgrind, about three minutes);
//! `ROWS=text` runs only the rows whose name contains `text`.

use std::hint::black_box;

#[path = "fixtures/callgrind.rs"]
mod callgrind;
#[path = "fixtures/encode.rs"]
mod encode_fixtures;
#[path = "fixtures/observe.rs"]
mod observe_fixtures;

use fastmetrics::metrics::family::Family as FmFamily;
use observe_fixtures::*;
use prometheus_client::metrics::counter::Counter as PcCounter;
use prometheus_client::metrics::family::Family as PcFamily;
use tinymon::encode::{OpenMetricsEncoder, ProtobufEncoder, TextEncoder};

/// (row, library) pairs, in the order the table lists them.
const ROWS: [(&str, &str); 32] = [
    ("histogram observe, held handle", "tinymon"),
    ("histogram observe, held handle", "prometheus"),
    ("histogram observe, held handle", "prometheus-client"),
    ("histogram observe, held handle", "fastmetrics"),
    ("histogram observe, held handle", "measured"),
    ("histogram observe, label lookup", "tinymon"),
    ("histogram observe, label lookup", "prometheus"),
    ("histogram observe, label lookup", "prometheus-client"),
    ("histogram observe, label lookup", "fastmetrics"),
    ("counter inc, held handle", "tinymon"),
    ("counter inc, held handle", "prometheus"),
    ("counter inc, held handle", "prometheus-client"),
    ("counter inc, held handle", "fastmetrics"),
    ("counter inc, held handle", "measured"),
    ("gauge set, held handle", "tinymon"),
    ("gauge set, held handle", "prometheus"),
    ("gauge set, held handle", "prometheus-client"),
    ("gauge set, held handle", "fastmetrics"),
    ("gauge set, held handle", "measured"),
    ("counter inc, label lookup", "tinymon"),
    ("counter inc, label lookup", "prometheus"),
    ("counter inc, label lookup", "prometheus-client"),
    ("counter inc, label lookup", "fastmetrics"),
    ("counter inc, colliding label lookup", "tinymon"),
    ("encode service, text", "tinymon"),
    ("encode service, text", "prometheus"),
    ("encode service, text", "prometheus-client"),
    ("encode service, protobuf", "tinymon"),
    ("encode service, protobuf", "prometheus"),
    ("encode service, protobuf", "prometheus-client"),
    ("encode counters_10k, text", "tinymon"),
    ("encode counters_10k, protobuf", "tinymon"),
];
const FEW: u64 = 2_000;
const MANY: u64 = 12_000;
/// Encoding is ~10^5 instructions a call: fewer repetitions suffice.
const FEW_ENCODES: u64 = 20;
const MANY_ENCODES: u64 = 120;

fn repeat(n: u64, mut op: impl FnMut()) {
    for _ in 0..n {
        op();
    }
}

/// Runs row `row` for library `lib`, `n` times.
fn run(row: &str, lib: &str, n: u64) {
    let (th, tc) = tinymon_families();
    match (row, lib) {
        ("histogram observe, held handle", "tinymon") => {
            let h = th.get_or_create(&LABELS);
            repeat(n, || h.observe(black_box(0.042)))
        }
        ("histogram observe, held handle", "prometheus") => {
            let h = prometheus::Histogram::with_opts(
                prometheus::HistogramOpts::new("h_seconds", "h")
                    .buckets(tinymon::metrics::DEFAULT_BUCKETS.to_vec()),
            )
            .unwrap();
            repeat(n, || h.observe(black_box(0.042)))
        }
        ("histogram observe, held handle", "prometheus-client") => {
            let h = new_pc_histogram();
            repeat(n, || h.observe(black_box(0.042)))
        }
        ("histogram observe, held handle", "fastmetrics") => {
            let h = new_fm_histogram();
            repeat(n, || h.observe(black_box(0.042)))
        }
        ("histogram observe, held handle", "measured") => {
            let h = new_measured_histogram();
            repeat(n, || h.observe(black_box(0.042)))
        }
        ("histogram observe, label lookup", "tinymon") => repeat(n, || {
            th.get_or_create(black_box(&LABELS))
                .observe(black_box(0.042))
        }),
        ("histogram observe, label lookup", "prometheus") => {
            let h = prometheus::HistogramVec::new(
                prometheus::HistogramOpts::new("h_seconds", "h")
                    .buckets(tinymon::metrics::DEFAULT_BUCKETS.to_vec()),
                &NAMES,
            )
            .unwrap();
            repeat(n, || {
                h.with_label_values(black_box(&LABELS))
                    .observe(black_box(0.042))
            })
        }
        ("histogram observe, label lookup", "prometheus-client") => {
            let h = PcFamily::<PcLabels, prometheus_client::metrics::histogram::Histogram, fn() -> _>::new_with_constructor(
                new_pc_histogram as fn() -> _,
            );
            let l = pc_labels(4);
            repeat(n, || {
                h.get_or_create(black_box(&l)).observe(black_box(0.042))
            })
        }
        ("histogram observe, label lookup", "fastmetrics") => {
            let h = FmFamily::<FmLabels<4>, fastmetrics::metrics::histogram::Histogram>::new(
                new_fm_histogram,
            );
            let l = FmLabels(LABELS);
            repeat(n, || {
                h.with_or_new(black_box(&l), |h| h.observe(black_box(0.042)))
            })
        }
        ("counter inc, held handle", "tinymon") => {
            let c = tc.get_or_create(&LABELS[..3].try_into().unwrap());
            repeat(n, || black_box(&c).inc())
        }
        ("counter inc, held handle", "prometheus") => {
            let c = prometheus::IntCounter::new("c_total", "c").unwrap();
            repeat(n, || black_box(&c).inc())
        }
        ("counter inc, held handle", "prometheus-client") => {
            let c = PcCounter::<u64>::default();
            repeat(n, || {
                black_box(&c).inc();
            })
        }
        ("counter inc, held handle", "fastmetrics") => {
            let c = fastmetrics::metrics::counter::Counter::<u64>::default();
            repeat(n, || black_box(&c).inc())
        }
        ("counter inc, held handle", "measured") => {
            let c = measured::Counter::new();
            repeat(n, || black_box(&c).inc())
        }
        ("gauge set, held handle", "tinymon") => {
            let g = tinymon::metrics::Gauge::new();
            repeat(n, || black_box(&g).set(black_box(3.5)))
        }
        ("gauge set, held handle", "prometheus") => {
            let g = prometheus::Gauge::new("g", "g").unwrap();
            repeat(n, || black_box(&g).set(black_box(3.5)))
        }
        ("gauge set, held handle", "prometheus-client") => {
            let g = prometheus_client::metrics::gauge::Gauge::<f64, std::sync::atomic::AtomicU64>::default();
            repeat(n, || {
                black_box(&g).set(black_box(3.5));
            })
        }
        ("gauge set, held handle", "fastmetrics") => {
            let g = fastmetrics::metrics::gauge::Gauge::<f64>::default();
            repeat(n, || black_box(&g).set(black_box(3.5)))
        }
        ("gauge set, held handle", "measured") => {
            let g = measured::FloatGauge::new();
            repeat(n, || black_box(&g).set(black_box(3.5)))
        }
        // The 400 values of benches/fixtures/colliding_labels.txt, made to
        // share one probe chain under the label hash before it was keyed,
        // in a family of cap 1,000; each call looks up the last of them.
        ("counter inc, colliding label lookup", "tinymon") => {
            let values: Vec<&str> = include_str!("fixtures/colliding_labels.txt")
                .lines()
                .collect();
            let f = tinymon::metrics::Family::<tinymon::metrics::Counter, 1>::new(
                "x_total",
                "x",
                ["v"],
            )
            .unwrap()
            .with_series_cap(1_000)
            .unwrap();
            for v in &values {
                f.get_or_create(&[v]).inc();
            }
            let last = [*values.last().unwrap()];
            repeat(n, || f.get_or_create(black_box(&last)).inc())
        }
        ("counter inc, label lookup", "tinymon") => {
            let l: [&str; 3] = LABELS[..3].try_into().unwrap();
            repeat(n, || tc.get_or_create(black_box(&l)).inc())
        }
        ("counter inc, label lookup", "prometheus") => {
            let c =
                prometheus::IntCounterVec::new(prometheus::Opts::new("c_total", "c"), &NAMES[..3])
                    .unwrap();
            repeat(n, || c.with_label_values(black_box(&LABELS[..3])).inc())
        }
        ("counter inc, label lookup", "prometheus-client") => {
            let c = PcFamily::<PcLabels, PcCounter>::default();
            let l = pc_labels(3);
            repeat(n, || {
                c.get_or_create(black_box(&l)).inc();
            })
        }
        ("counter inc, label lookup", "fastmetrics") => {
            let c = FmFamily::<FmLabels<3>, fastmetrics::metrics::counter::Counter>::default();
            let l = FmLabels([LABELS[0], LABELS[1], LABELS[2]]);
            repeat(n, || c.with_or_new(black_box(&l), |c| c.inc()))
        }
        ("encode service, text", "tinymon") => {
            let r = encode_fixtures::tinymon_service();
            let mut enc = TextEncoder::new();
            repeat(n, || {
                black_box(enc.encode(&r).len());
            })
        }
        ("encode service, text", "prometheus") => {
            let r = encode_fixtures::prometheus_service();
            let enc = prometheus::TextEncoder::new();
            let mut buf = String::new();
            repeat(n, || {
                buf.clear();
                enc.encode_utf8(&r.gather(), &mut buf).unwrap();
                black_box(buf.len());
            })
        }
        ("encode service, text", "prometheus-client") => {
            // prometheus-client writes OpenMetrics: tinymon's like-for-like
            // is its OpenMetrics encoder, listed in the README beside it.
            let r = encode_fixtures::client_service();
            let mut buf = String::new();
            repeat(n, || {
                buf.clear();
                prometheus_client::encoding::text::encode(&mut buf, &r).unwrap();
                black_box(buf.len());
            })
        }
        ("encode service, openmetrics", "tinymon") => {
            let r = encode_fixtures::tinymon_service();
            let mut enc = OpenMetricsEncoder::new();
            repeat(n, || {
                black_box(enc.encode(&r).len());
            })
        }
        ("encode service, protobuf", "tinymon") => {
            let r = encode_fixtures::tinymon_service();
            let mut enc = ProtobufEncoder::new();
            repeat(n, || {
                black_box(enc.encode(&r).len());
            })
        }
        ("encode service, protobuf", "prometheus") => {
            let r = encode_fixtures::prometheus_service();
            let enc = prometheus::ProtobufEncoder::new();
            let mut buf = Vec::new();
            repeat(n, || {
                buf.clear();
                prometheus::Encoder::encode(&enc, &r.gather(), &mut buf).unwrap();
                black_box(buf.len());
            })
        }
        ("encode service, protobuf", "prometheus-client") => {
            let r = encode_fixtures::client_service();
            repeat(n, || {
                let v =
                    prometheus_client::encoding::prometheus_protobuf::encode_to_vec(&r).unwrap();
                black_box(v.len());
            })
        }
        ("encode counters_10k, text", "tinymon") => {
            let r = encode_fixtures::tinymon_counters_10k();
            let mut enc = TextEncoder::new();
            repeat(n, || {
                black_box(enc.encode(&r).len());
            })
        }
        ("encode counters_10k, protobuf", "tinymon") => {
            let r = encode_fixtures::tinymon_counters_10k();
            let mut enc = ProtobufEncoder::new();
            repeat(n, || {
                black_box(enc.encode(&r).len());
            })
        }
        _ => panic!("no row {row:?} for {lib:?}"),
    }
}

/// Total instructions of one run of `row` for `lib`, `n` times.
fn instructions(row: &str, lib: &str, n: u64) -> u64 {
    let out = callgrind::out_file("op");
    let status = callgrind::command(&out)
        .args(["--run", row, lib, &n.to_string()])
        .status()
        .expect("valgrind (Debian package valgrind)");
    assert!(status.success(), "{row} / {lib} under valgrind");
    callgrind::total(&out)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--run") {
        run(&args[i + 1], &args[i + 2], args[i + 3].parse().unwrap());
        return;
    }
    // `cargo test --all-targets` runs bench binaries without `--bench`;
    // this one needs valgrind and minutes, so it runs only as a bench.
    if !args.iter().any(|a| a == "--bench") {
        println!("benches/instructions.rs: run with `make bench-instructions`");
        return;
    }
    println!("| row | library | instructions per operation |");
    println!("|---|---|---|");
    // `ROWS=counters_10k make bench-instructions` runs the rows whose
    // name contains that text.
    let only = std::env::var("ROWS").unwrap_or_default();
    let rows = ROWS
        .iter()
        .copied()
        .chain([("encode service, openmetrics", "tinymon")])
        .filter(|(row, _)| row.contains(only.as_str()));
    for (row, lib) in rows {
        let (few, many) = if row.contains("10k") {
            (FEW_ENCODES / 10, MANY_ENCODES / 10)
        } else if row.starts_with("encode") {
            (FEW_ENCODES, MANY_ENCODES)
        } else {
            (FEW, MANY)
        };
        let per = (instructions(row, lib, many) - instructions(row, lib, few)) as f64
            / (many - few) as f64;
        let per = if per >= 1000.0 {
            format!("{per:.0}")
        } else {
            format!("{per:.1}")
        };
        println!("| {row} | {lib} | {per} |");
    }
}
