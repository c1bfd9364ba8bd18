//! The protobuf exposition, read back by independent readers: prost
//! messages written from client_model's metrics.proto (in test-support,
//! sharing nothing with the hand-written encoder), and a real Prometheus
//! 2.42 with `--enable-feature=native-histograms`, which offers protobuf
//! first.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::Tinymon;
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

/// Copies bytes both ways between a client and `to`, and notes whether the
/// server ever answered with the protobuf Content-Type.
fn recording_proxy(
    to: std::net::SocketAddr,
    saw_protobuf: Arc<AtomicBool>,
) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(to) else {
                continue;
            };
            let (mut c_read, mut s_write) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c_read, &mut s_write);
            });
            let saw = saw_protobuf.clone();
            let (mut s_read, mut c_write) = (server, client);
            std::thread::spawn(move || {
                let mut buf = [0u8; 16384];
                while let Ok(n) = s_read.read(&mut buf) {
                    if n == 0 || c_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    let chunk = String::from_utf8_lossy(&buf[..n]);
                    if chunk.contains("Content-Type: application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited") {
                        saw.store(true, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn a_real_prometheus_with_native_histograms_scrapes_protobuf() {
    let t = Tinymon::start(&[]);
    for _ in 0..4 {
        t.get("/hello");
    }
    let saw = Arc::new(AtomicBool::new(false));
    let proxy = recording_proxy(t.addr, saw.clone());
    let prom = common::prom::LocalPrometheus::start(
        "protobuf",
        &proxy.to_string(),
        &["--enable-feature=native-histograms"],
    );
    prom.wait_up(Duration::from_secs(30));
    assert!(saw.load(Ordering::Relaxed), "the scrape was not protobuf");
    let api = prom.api();
    common::prom::wait_for("the counter", Duration::from_secs(20), || {
        let v = api.query("server_handle_request_total{path=\"/hello\"}");
        match v.first().and_then(|s| s["value"][1].as_str()) {
            Some("4") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    common::prom::wait_for("classic buckets", Duration::from_secs(20), || {
        let v = api.query("server_handle_request_seconds_bucket{path=\"/hello\",le=\"+Inf\"}");
        if v.is_empty() {
            Err("none".into())
        } else {
            Ok(())
        }
    });
}
