//! Encoding cost: tinymon against the `prometheus` and `prometheus-client`
//! crates, with the same registry shape built in each, measured in one run.
//!
//! - service: 50 label sets each of a histogram with 4 labels (14 lines per
//!   series with the default buckets), a counter with 3 labels and a gauge
//!   with 4 labels: 800 sample lines;
//! - counters_10k: one counter family with 10,000 series;
//! - native_10k: 10,000 histograms with classic buckets and 20 populated
//!   native buckets each, in protobuf (tinymon and prometheus-client).
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
use prometheus_client::registry::Registry as PcRegistry;
use tinymon::encode::{OpenMetricsEncoder, ProtobufEncoder, TextEncoder};

#[path = "fixtures/encode.rs"]
mod fixtures;
use fixtures::*;

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
    let ids: Vec<String> = (0..COUNTERS).map(client_id).collect();

    let t = tinymon_counters_10k();
    let p = prometheus::Registry::new();
    let pf =
        prometheus::IntCounterVec::new(prometheus::Opts::new("hits_total", "Hits."), &["client"])
            .unwrap();
    p.register(Box::new(pf.clone())).unwrap();
    let mut c = PcRegistry::default();
    let cf = PcFamily::<PcLabels, PcCounter>::default();
    c.register("hits", "Hits.", cf.clone());
    for (i, id) in ids.iter().enumerate() {
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

/// 10,000 histograms with 20 populated native buckets each, in protobuf
/// (the only format that carries native buckets), against
/// prometheus-client's native-histogram encoder. Throughput is series.
/// Their memory is measured in `tests/series_memory.rs`.
fn bench_native(crit: &mut Criterion) {
    let mut group = crit.benchmark_group("encode_native_10k");
    group.throughput(Throughput::Elements(NATIVE_SERIES as u64));
    let t = tinymon_native_10k();
    let c = pc_native_10k();
    let mut pb = ProtobufEncoder::new();
    // Both write what the registries hold: every series with its 20
    // native buckets, as prost reads them back.
    let families = [pb.encode(&t).to_vec(), pc_protobuf_bytes(&c)];
    for bytes in &families {
        let decoded = tinymon_test_support::proto::decode_families(bytes).unwrap();
        let series = &decoded[0].metric;
        assert_eq!(series.len(), NATIVE_SERIES);
        for m in series {
            let h = m.histogram.as_ref().unwrap();
            let native = tinymon_test_support::proto::Histogram::native_buckets(
                &h.positive_span,
                &h.positive_delta,
            )
            .unwrap();
            assert_eq!((h.schema, native.len()), (Some(3), NATIVE_BUCKETS as usize));
        }
    }
    group.bench_function("tinymon-protobuf", |b| b.iter(|| pb.encode(&t).len()));
    group.bench_function("prometheus-client-protobuf", |b| b.iter(|| pc_protobuf(&c)));
    group.finish();
}

fn pc_protobuf_bytes(c: &PcRegistry) -> Vec<u8> {
    prometheus_client::encoding::prometheus_protobuf::encode_to_vec(c).unwrap()
}

/// prometheus-client's protobuf stream (it returns a fresh `Vec`).
fn pc_protobuf(c: &PcRegistry) -> usize {
    prometheus_client::encoding::prometheus_protobuf::encode_to_vec(c)
        .unwrap()
        .len()
}

criterion_group!(benches, bench_service, bench_counters, bench_native);
criterion_main!(benches);
