//! The protobuf exposition, read back by independent readers: prost
//! messages written from client_model's metrics.proto (in test-support,
//! sharing nothing with the hand-written encoder). A real Prometheus
//! reads it in `tests/native_histograms.rs`.

use tinymon::encode::{ProtobufEncoder, TextEncoder};
use tinymon::metrics::{Buckets, Counter, Family, Gauge, Histogram, Registry};
use tinymon_test_support::proto::decode_families;
use tinymon_test_support::{parse_text, Kind};

#[test]
fn prost_reads_the_same_families_and_values_as_the_text_format() {
    let r = Registry::new();
    let hits = r
        .register(
            Family::<Counter, 1>::new("p_hits_total", "Help \"q\" \\ and\nnewline.", ["v"])
                .unwrap(),
        )
        .unwrap();
    let level = r
        .register(Family::<Gauge, 2>::new("p_level", "Gauge.", ["v", "w"]).unwrap())
        .unwrap();
    let lat = r
        .register(
            Family::<Histogram, 1>::with_config(
                "p_seconds",
                "Histogram.",
                ["v"],
                Buckets::new(&[1e-5, 0.5, 1.0, 1e6]).unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
    r.counter("p_bare", "Bare.").unwrap().inc_by(7);
    for (i, v) in ["plain", "with \"quotes\"", "new\nline", "café ✓", ""]
        .iter()
        .enumerate()
    {
        hits.get_or_create(&[v]).inc_by(i as u64 + 1);
        level
            .get_or_create(&[v, "x"])
            .set([f64::INFINITY, -1.5e-9, 1e21, 0.0, -3.0][i]);
        lat.get_or_create(&[v]).observe(i as f64 * 0.4);
    }
    let bytes = ProtobufEncoder::new().encode(&r).to_vec();
    let families = decode_families(&bytes).expect("a delimited MetricFamily stream");
    let text = String::from_utf8(TextEncoder::new().encode(&r).to_vec()).unwrap();
    let from_text = parse_text(&text).unwrap();
    assert_eq!(families.len(), from_text.len());
    for (pf, tf) in families.iter().zip(&from_text) {
        assert_eq!(pf.name.as_deref(), Some(tf.name.as_str()));
        assert_eq!(pf.help.as_deref(), Some(tf.help.as_str()));
        let want_type = match tf.kind {
            Kind::Counter => 0,
            Kind::Gauge => 1,
            Kind::Histogram => 4,
        };
        assert_eq!(pf.r#type, Some(want_type), "{}", tf.name);
        // Text lines of one series: its labels without `le`.
        let labels_of = |m: &tinymon_test_support::proto::Metric| -> Vec<(String, String)> {
            m.label
                .iter()
                .map(|l| (l.name.clone().unwrap(), l.value.clone().unwrap()))
                .collect()
        };
        match tf.kind {
            Kind::Counter | Kind::Gauge => {
                assert_eq!(pf.metric.len(), tf.samples.len());
                for (m, s) in pf.metric.iter().zip(&tf.samples) {
                    assert_eq!(labels_of(m), s.labels);
                    let v = if tf.kind == Kind::Counter {
                        m.counter.as_ref().unwrap().value.unwrap()
                    } else {
                        m.gauge.as_ref().unwrap().value.unwrap()
                    };
                    assert_eq!(
                        v.to_bits(),
                        s.value.to_bits(),
                        "{}: {v} vs {}",
                        tf.name,
                        s.value
                    );
                }
            }
            Kind::Histogram => {
                for m in &pf.metric {
                    let labels = labels_of(m);
                    let h = m.histogram.as_ref().unwrap();
                    let lines: Vec<_> = tf
                        .samples
                        .iter()
                        .filter(|s| {
                            s.labels
                                .iter()
                                .filter(|(k, _)| k != "le")
                                .cloned()
                                .collect::<Vec<_>>()
                                == labels
                        })
                        .collect();
                    let finite: Vec<(f64, u64)> = lines
                        .iter()
                        .filter(|s| {
                            s.name.ends_with("_bucket") && s.labels.last().unwrap().1 != "+Inf"
                        })
                        .map(|s| (s.labels.last().unwrap().1.parse().unwrap(), s.value as u64))
                        .collect();
                    let got: Vec<(f64, u64)> = h
                        .bucket
                        .iter()
                        .map(|b| (b.upper_bound.unwrap(), b.cumulative_count.unwrap()))
                        .collect();
                    assert_eq!(got, finite, "{labels:?}");
                    let count = lines
                        .iter()
                        .find(|s| s.name.ends_with("_count"))
                        .unwrap()
                        .value;
                    let sum = lines
                        .iter()
                        .find(|s| s.name.ends_with("_sum"))
                        .unwrap()
                        .value;
                    assert_eq!(h.sample_count, Some(count as u64));
                    assert_eq!(h.sample_sum, Some(sum));
                }
            }
        }
    }
}

/// Native buckets read back by prost: spans and deltas decode to the same
/// buckets the histogram's own snapshot lists, for both signs, the zero
/// bucket, a gap between spans, an empty series (one no-op span), and a
/// series past its window (written at schema -4).
#[test]
fn prost_reads_native_buckets_as_the_snapshot_lists_them() {
    use tinymon::metrics::NativeBuckets;
    use tinymon_test_support::proto::Histogram as PbHistogram;
    let r = Registry::new();
    let native = NativeBuckets::new(1.1, 1e-3, 120).unwrap();
    let top = native.window_top();
    let fam = r
        .register(
            Family::<Histogram, 1>::with_config(
                "n_seconds",
                "Native.",
                ["case"],
                Buckets::default().with_native(native),
            )
            .unwrap(),
        )
        .unwrap();
    let cases: [(&str, &[f64]); 4] = [
        ("empty", &[]),
        (
            "mixed",
            &[0.0, 1e-4, 0.3, 0.3, 0.31, 2.0, 5.0, -0.01, -7.0, f64::NAN],
        ),
        ("one", &[1.0]),
        ("past_window", &[0.3, top * 3.0, -top * 1e3, f64::INFINITY]),
    ];
    for (case, values) in cases {
        let h = fam.get_or_create(&[case]);
        for &v in values {
            h.observe(v);
        }
    }
    let bytes = ProtobufEncoder::new().encode(&r).to_vec();
    let families = decode_families(&bytes).unwrap();
    let family = families
        .iter()
        .find(|f| f.name.as_deref() == Some("n_seconds"))
        .unwrap();
    assert_eq!(family.metric.len(), 4);
    for m in &family.metric {
        let case = m.label[0].value.clone().unwrap();
        let h = m.histogram.as_ref().unwrap();
        let want = fam.get(&[&case]).unwrap().snapshot();
        let native = want.native.as_ref().unwrap();
        assert_eq!(h.sample_count, Some(want.count), "{case}");
        assert_eq!(h.schema, Some(native.schema), "{case}");
        assert_eq!(h.zero_threshold, Some(1e-3));
        assert_eq!(h.zero_count, Some(native.zero_count), "{case}");
        let pos = PbHistogram::native_buckets(&h.positive_span, &h.positive_delta).unwrap();
        let neg = PbHistogram::native_buckets(&h.negative_span, &h.negative_delta).unwrap();
        assert_eq!(pos, native.positive, "{case}");
        assert_eq!(neg, native.negative, "{case}");
        // Classic buckets ride along in the same message.
        assert_eq!(h.bucket.len(), 11, "{case}");
        match case.as_str() {
            "empty" => {
                assert_eq!(h.positive_span.len(), 1);
                assert_eq!(h.positive_span[0].offset.unwrap_or(0), 0);
                assert_eq!(h.positive_span[0].length.unwrap_or(0), 0);
            }
            "mixed" => {
                assert_eq!(native.schema, 3);
                // 0.0 and 1e-4 in the zero bucket; NaN in none.
                assert_eq!(native.zero_count, 2);
                assert_eq!(native.total(), want.count - 1);
                // 0.3 twice and 0.31 share key ceil(8 log2 0.3) = -13;
                // 2.0 is key 8, 5.0 key 19: three spans, gaps between.
                assert_eq!(pos, vec![(-13, 3), (8, 1), (19, 1)]);
                assert_eq!(h.positive_span.len(), 3);
                assert_eq!(neg, vec![(-53, 1), (23, 1)]);
            }
            "past_window" => {
                assert_eq!(native.schema, -4);
                assert_eq!(native.total(), 4);
            }
            _ => assert_eq!(pos, vec![(0, 1)]),
        }
    }
}
