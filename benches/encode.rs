//! Encoding cost: tinymon against the `prometheus` and `prometheus-client`
//! crates, with the same registry shape built in each, measured in one run.
//!
//! - service: 50 label sets each of a histogram with 4 labels (14 lines per
//!   series with the default buckets), a counter with 3 labels and a gauge
//!   with 4 labels: 800 sample lines;
//! - counters_10k: one counter family with 10,000 series.
//!
//! Criterion's throughput is set to the number of sample lines, so its
//! "elem/s" reads directly as samples per second (ns/sample = 1e9 / that).
//!
//! prometheus-client writes OpenMetrics text, so `tinymon-openmetrics` is
//! the like-for-like row against it; `tinymon` (text 0.0.4) is the one
//! against `prometheus`, which writes 0.0.4.
//!
//! The `-protobuf` rows write what Prometheus scrapes as protobuf: the
//! delimited client_model `MetricFamily` stream (prometheus-client's
//! `prometheus_protobuf::encode_to_vec`, which builds prost messages and
//! serialises them).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use prometheus_client::encoding::text::encode as pc_encode;
use prometheus_client::metrics::counter::Counter as PcCounter;
use prometheus_client::metrics::family::Family as PcFamily;
use prometheus_client::metrics::gauge::Gauge as PcGauge;
use prometheus_client::metrics::histogram::Histogram as PcHistogram;
use prometheus_client::registry::Registry as PcRegistry;
use tinymon::encode::{OpenMetricsEncoder, ProtobufEncoder, TextEncoder};
use tinymon::metrics::{Counter, Family, Gauge, Histogram, Registry, DEFAULT_BUCKETS};

const SETS: usize = 50;
const SERVICE_SAMPLES: u64 = (SETS * (14 + 1 + 1)) as u64;
const COUNTERS: usize = 10_000;

fn labels4(i: usize) -> [String; 4] {
    [
        "http".into(),
        ["GET", "POST", "PUT", "DELETE"][i % 4].into(),
        format!("/api/v1/resource{}", i / 4),
        ["200", "404", "500"][i % 3].into(),
    ]
}

fn tinymon_service() -> Registry {
    let r = Registry::new();
    let h = r
        .register(
            Family::<Histogram, 4>::new(
                "server_handle_request_seconds",
                "Latency.",
                ["type", "method", "path", "status"],
            )
            .unwrap(),
        )
        .unwrap();
    let c = r
        .register(
            Family::<Counter, 3>::new(
                "server_handle_request_total",
                "Requests.",
                ["type", "method", "path"],
            )
            .unwrap(),
        )
        .unwrap();
    let g = r
        .register(
            Family::<Gauge, 4>::new(
                "server_handle_request_status",
                "Statuses.",
                ["type", "method", "path", "status"],
            )
            .unwrap(),
        )
        .unwrap();
    for i in 0..SETS {
        let l = labels4(i);
        let l = [l[0].as_str(), &l[1], &l[2], &l[3]];
        h.get_or_create(&l).observe(0.001 * i as f64);
        c.get_or_create(&[l[0], l[1], l[2]]).inc_by(i as u64 + 1);
        g.get_or_create(&l).set(i as f64);
    }
    r
}

fn prometheus_service() -> prometheus::Registry {
    let r = prometheus::Registry::new();
    let h = prometheus::HistogramVec::new(
        prometheus::HistogramOpts::new("server_handle_request_seconds", "Latency.")
            .buckets(DEFAULT_BUCKETS.to_vec()),
        &["type", "method", "path", "status"],
    )
    .unwrap();
    let c = prometheus::IntCounterVec::new(
        prometheus::Opts::new("server_handle_request_total", "Requests."),
        &["type", "method", "path"],
    )
    .unwrap();
    let g = prometheus::GaugeVec::new(
        prometheus::Opts::new("server_handle_request_status", "Statuses."),
        &["type", "method", "path", "status"],
    )
    .unwrap();
    r.register(Box::new(h.clone())).unwrap();
    r.register(Box::new(c.clone())).unwrap();
    r.register(Box::new(g.clone())).unwrap();
    for i in 0..SETS {
        let l = labels4(i);
        let l: Vec<&str> = l.iter().map(String::as_str).collect();
        h.with_label_values(&l).observe(0.001 * i as f64);
        c.with_label_values(&l[..3]).inc_by(i as u64 + 1);
        g.with_label_values(&l).set(i as f64);
    }
    r
}

type PcLabels = Vec<(String, String)>;

fn pc_labels(names: &[&str], values: &[String]) -> PcLabels {
    names
        .iter()
        .zip(values)
        .map(|(n, v)| (n.to_string(), v.clone()))
        .collect()
}

fn new_pc_histogram() -> PcHistogram {
    PcHistogram::new(DEFAULT_BUCKETS)
}

fn client_service() -> PcRegistry {
    let mut r = PcRegistry::default();
    let h = PcFamily::<PcLabels, PcHistogram, fn() -> PcHistogram>::new_with_constructor(
        new_pc_histogram,
    );
    let c = PcFamily::<PcLabels, PcCounter>::default();
    let g = PcFamily::<PcLabels, PcGauge<f64, std::sync::atomic::AtomicU64>>::default();
    r.register("server_handle_request_seconds", "Latency.", h.clone());
    r.register("server_handle_request", "Requests.", c.clone());
    r.register("server_handle_request_status", "Statuses.", g.clone());
    let names = ["type", "method", "path", "status"];
    for i in 0..SETS {
        let l = labels4(i);
        h.get_or_create(&pc_labels(&names, &l))
            .observe(0.001 * i as f64);
        c.get_or_create(&pc_labels(&names[..3], &l[..3]))
            .inc_by(i as u64 + 1);
        g.get_or_create(&pc_labels(&names, &l)).set(i as f64);
    }
    r
}

fn bench_service(crit: &mut Criterion) {
    let mut group = crit.benchmark_group("encode_service_800_samples");
    group.throughput(Throughput::Elements(SERVICE_SAMPLES));

    let t = tinymon_service();
    let mut enc = TextEncoder::new();
    let text = String::from_utf8(enc.encode(&t).to_vec()).unwrap();
    let samples = text
        .lines()
        .filter(|l| {
            !l.starts_with('#')
                && !l.starts_with("tinymon_series_dropped_total")
                && !l.starts_with("tinymon_label_arity_errors_total")
        })
        .count();
    assert_eq!(samples as u64, SERVICE_SAMPLES);
    group.bench_function("tinymon", |b| b.iter(|| enc.encode(&t).len()));
    let mut om = OpenMetricsEncoder::new();
    group.bench_function("tinymon-openmetrics", |b| b.iter(|| om.encode(&t).len()));
    let mut pb = ProtobufEncoder::new();
    group.bench_function("tinymon-protobuf", |b| b.iter(|| pb.encode(&t).len()));

    let p = prometheus_service();
    let penc = prometheus::TextEncoder::new();
    let mut pbuf = String::new();
    group.bench_function("prometheus", |b| {
        b.iter(|| {
            pbuf.clear();
            penc.encode_utf8(&p.gather(), &mut pbuf).unwrap();
            pbuf.len()
        })
    });

    let pbenc = prometheus::ProtobufEncoder::new();
    let mut pbbuf = Vec::new();
    group.bench_function("prometheus-protobuf", |b| {
        b.iter(|| {
            pbbuf.clear();
            prometheus::Encoder::encode(&pbenc, &p.gather(), &mut pbbuf).unwrap();
            pbbuf.len()
        })
    });

    let c = client_service();
    let mut cbuf = String::new();
    group.bench_function("prometheus-client", |b| {
        b.iter(|| {
            cbuf.clear();
            pc_encode(&mut cbuf, &c).unwrap();
            cbuf.len()
        })
    });
    group.bench_function("prometheus-client-protobuf", |b| b.iter(|| pc_protobuf(&c)));
    group.finish();
}

fn bench_counters(crit: &mut Criterion) {
    let mut group = crit.benchmark_group("encode_counters_10k");
    group.throughput(Throughput::Elements(COUNTERS as u64));
    let ids: Vec<String> = (0..COUNTERS).map(|i| format!("client-{i:05}")).collect();

    let t = Registry::new();
    let tf = t
        .register(Family::<Counter, 1>::new("hits_total", "Hits.", ["client"]).unwrap())
        .unwrap();
    let p = prometheus::Registry::new();
    let pf =
        prometheus::IntCounterVec::new(prometheus::Opts::new("hits_total", "Hits."), &["client"])
            .unwrap();
    p.register(Box::new(pf.clone())).unwrap();
    let mut c = PcRegistry::default();
    let cf = PcFamily::<PcLabels, PcCounter>::default();
    c.register("hits", "Hits.", cf.clone());
    for (i, id) in ids.iter().enumerate() {
        tf.get_or_create(&[id]).inc_by(i as u64);
        pf.with_label_values(&[id]).inc_by(i as u64);
        cf.get_or_create(&vec![("client".to_string(), id.clone())])
            .inc_by(i as u64);
    }

    let mut enc = TextEncoder::new();
    group.bench_with_input(BenchmarkId::new("tinymon", COUNTERS), &t, |b, t| {
        b.iter(|| enc.encode(t).len())
    });
    let mut om = OpenMetricsEncoder::new();
    group.bench_with_input(
        BenchmarkId::new("tinymon-openmetrics", COUNTERS),
        &t,
        |b, t| b.iter(|| om.encode(t).len()),
    );
    let penc = prometheus::TextEncoder::new();
    let mut pbuf = String::new();
    group.bench_with_input(BenchmarkId::new("prometheus", COUNTERS), &p, |b, p| {
        b.iter(|| {
            pbuf.clear();
            penc.encode_utf8(&p.gather(), &mut pbuf).unwrap();
            pbuf.len()
        })
    });
    let mut pb = ProtobufEncoder::new();
    group.bench_with_input(
        BenchmarkId::new("tinymon-protobuf", COUNTERS),
        &t,
        |b, t| b.iter(|| pb.encode(t).len()),
    );
    let pbenc = prometheus::ProtobufEncoder::new();
    let mut pbbuf = Vec::new();
    group.bench_with_input(
        BenchmarkId::new("prometheus-protobuf", COUNTERS),
        &p,
        |b, p| {
            b.iter(|| {
                pbbuf.clear();
                prometheus::Encoder::encode(&pbenc, &p.gather(), &mut pbbuf).unwrap();
                pbbuf.len()
            })
        },
    );
    group.bench_with_input(
        BenchmarkId::new("prometheus-client-protobuf", COUNTERS),
        &c,
        |b, c| b.iter(|| pc_protobuf(c)),
    );
    let mut cbuf = String::new();
    group.bench_with_input(
        BenchmarkId::new("prometheus-client", COUNTERS),
        &c,
        |b, c| {
            b.iter(|| {
                cbuf.clear();
                pc_encode(&mut cbuf, c).unwrap();
                cbuf.len()
            })
        },
    );
    group.finish();
}

/// prometheus-client's protobuf stream (it returns a fresh `Vec`).
fn pc_protobuf(c: &PcRegistry) -> usize {
    prometheus_client::encoding::prometheus_protobuf::encode_to_vec(c)
        .unwrap()
        .len()
}

criterion_group!(benches, bench_service, bench_counters);
criterion_main!(benches);
