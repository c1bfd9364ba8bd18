//! Native histograms end to end: the real binary under traffic, scraped at
//! once by two Prometheus 3.5.3 servers (Debian's, from sid).
//!
//! - *native*: the tinymon job of the shipped prometheus.yml with the flags
//!   of docker-compose.yml (`native-histograms`, `exemplar-storage`). It
//!   offers protobuf first, so it stores `server_handle_request_seconds` as
//!   a native histogram and, as the config asks, its classic buckets too.
//! - *classic*: a job with no settings and no flags: Prometheus 3's default
//!   Accept header, OpenMetrics first. It stores the classic buckets, as any
//!   Prometheus without native histograms does.
//!
//! The traffic is `/work` with known delays, so the true p99 is known: the
//! native estimate must land near it and in the classic bucket that holds
//! the classic estimate; counts and sums must agree with the counter and
//! with the classic series; the trace ids sent come back as exemplars.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::prom::{wait_for, LocalPrometheus, PromApi};
use common::Tinymon;
use serde_json::Value;
use tinymon_test_support::client::Connection;

/// What a recording proxy saw of one scrape: the `Accept` header Prometheus
/// sent and the `Content-Type` tinymon answered with.
#[derive(Default, Debug, Clone)]
struct Seen {
    accept: Option<String>,
    content_type: Option<String>,
}

/// The value of header `name` in an HTTP head, if `chunk` holds one.
fn header(chunk: &str, name: &str) -> Option<String> {
    chunk.split("\r\n").find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

/// Copies bytes both ways between a client and `to`, and notes the first
/// scrape's `Accept` and `Content-Type` headers.
fn recording_proxy(to: std::net::SocketAddr) -> (std::net::SocketAddr, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(to) else {
                continue;
            };
            let (c_read, s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (s_read, c_write) = (server, client);
            for (mut from, mut into, name, is_request) in [
                (c_read, s_write, "accept", true),
                (s_read, c_write, "content-type", false),
            ] {
                let record = record.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16384];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 || into.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        if let Some(v) = header(&String::from_utf8_lossy(&buf[..n]), name) {
                            let mut seen = record.lock().unwrap();
                            let slot = if is_request {
                                &mut seen.accept
                            } else {
                                &mut seen.content_type
                            };
                            slot.get_or_insert(v);
                        }
                    }
                });
            }
        }
    });
    (addr, seen)
}

/// The single value of an instant query that must return one series.
fn scalar(api: &PromApi, expr: &str) -> Result<f64, String> {
    let v = api.query(expr);
    match v.as_slice() {
        [one] => one["value"][1]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("{expr}: {one}")),
        other => Err(format!("{expr}: {} series: {other:?}", other.len())),
    }
}

/// How many samples of `expr` Prometheus has stored over the last minute.
fn samples(api: &PromApi, expr: &str) -> usize {
    api.query(&format!("count_over_time({expr}[1m])"))
        .first()
        .and_then(|s| s["value"][1].as_str()?.parse().ok())
        .unwrap_or(0)
}

fn trace_for(i: usize) -> (String, String) {
    let trace_id = format!(
        "{:032x}",
        0x5eed_0000_0000_0000_0000_0000_0000_0000u128 + i as u128
    );
    (
        format!("00-{trace_id}-{:016x}-01", 0xabc0 + i as u64),
        trace_id,
    )
}

/// The delays sent: 10..=109 ms, once each. 99 of the 100 requests take at
/// most ~108 ms, so the true p99 lies between 0.108 and 0.109 s plus the
/// handler's overhead.
const DELAYS_MS: std::ops::RangeInclusive<u64> = 10..=109;

#[test]
fn native_histograms_on_a_real_prometheus_agree_with_classic_ones() {
    let t = Tinymon::start(&[]);
    // Create the /work series before Prometheus starts, so every request
    // below falls inside the rate window of both servers.
    assert_eq!(t.get("/work?delay_ms=0").status, 200);
    let (native_proxy, native_seen) = recording_proxy(t.addr);
    let (classic_proxy, classic_seen) = recording_proxy(t.addr);
    let native = LocalPrometheus::start_shipped_job(
        "native",
        &native_proxy.to_string(),
        &[
            "--enable-feature=native-histograms",
            "--enable-feature=exemplar-storage",
        ],
    );
    let classic = LocalPrometheus::start("classic", &classic_proxy.to_string(), &[]);
    native.wait_up(Duration::from_secs(30));
    classic.wait_up(Duration::from_secs(30));
    let (n, c) = (native.api(), classic.api());
    // Each server's Accept header ranks formats; tinymon answers in the
    // first of them that it writes.
    for (name, seen, first, answered) in [
        (
            "native",
            &native_seen,
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited",
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
        ),
        (
            "classic",
            &classic_seen,
            "application/openmetrics-text;version=1.0.0",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
    ] {
        let seen = seen.lock().unwrap().clone();
        eprintln!("{name}: Accept {:?} answered {:?}", seen.accept, seen.content_type);
        let accept = seen.accept.unwrap_or_else(|| panic!("{name}: no Accept header seen"));
        assert!(accept.starts_with(first), "{name}: Accept {accept}");
        assert_eq!(seen.content_type.as_deref(), Some(answered), "{name}");
    }
    wait_for(
        "two scrapes before the traffic",
        Duration::from_secs(20),
        || {
            let (a, b) = (
                samples(&n, "server_handle_request_total{path=\"/work\"}"),
                samples(&c, "server_handle_request_total{path=\"/work\"}"),
            );
            if a >= 2 && b >= 2 {
                Ok(())
            } else {
                Err(format!("native {a}, classic {b}"))
            }
        },
    );

    // 100 /work requests over 4 connections, each with its own traceparent.
    let delays: Vec<u64> = DELAYS_MS.collect();
    std::thread::scope(|s| {
        for (k, chunk) in delays.chunks(25).enumerate() {
            let addr = t.addr;
            s.spawn(move || {
                let mut conn = Connection::open(addr, Duration::from_secs(10)).unwrap();
                for (j, d) in chunk.iter().enumerate() {
                    let (traceparent, _) = trace_for(k * 25 + j);
                    let r = conn
                        .request_with(
                            "GET",
                            &format!("/work?delay_ms={d}"),
                            &[("traceparent", &traceparent)],
                        )
                        .unwrap();
                    assert_eq!(r.status, 200);
                }
            });
        }
    });
    let sent = delays.len() as f64 + 1.0;
    // Every response has been read, so every observation is recorded. The
    // counter alone cannot tell a scrape taken after this from one taken
    // while the last request was still in its handler: it counts requests
    // when they start.
    let answered = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();

    // Both servers have scraped since, and saw the final count.
    let total = "sum(server_handle_request_total{path=\"/work\"})";
    for (name, api) in [("native", &n), ("classic", &c)] {
        wait_for(
            &format!("{name}: a scrape after the last response"),
            Duration::from_secs(20),
            || match scalar(api, "max(timestamp(up))")? {
                at if at > answered => Ok(()),
                at => Err(format!("last scrape at {at}, answered at {answered}")),
            },
        );
        assert_eq!(scalar(api, total).unwrap(), sent, "{name}: the final count");
    }

    // The counts and sums: native against the counter and the classic series.
    let native_count = scalar(
        &n,
        "sum(histogram_count(server_handle_request_seconds{path=\"/work\"}))",
    )
    .unwrap();
    assert_eq!(
        native_count, sent,
        "histogram_count against the request counter"
    );
    let native_sum = scalar(
        &n,
        "sum(histogram_sum(server_handle_request_seconds{path=\"/work\"}))",
    )
    .unwrap();
    let classic_sum = scalar(&c, "sum(server_handle_request_seconds_sum{path=\"/work\"})").unwrap();
    let want_sum = delays.iter().sum::<u64>() as f64 / 1000.0;
    assert!(
        (native_sum - classic_sum).abs() <= 1e-9 * classic_sum,
        "histogram_sum {native_sum} against the classic _sum {classic_sum}"
    );
    assert!(
        native_sum >= want_sum && native_sum < want_sum + 2.0,
        "sum {native_sum} for {want_sum} s of delays"
    );
    // The classic buckets are kept beside the native ones
    // (always_scrape_classic_histograms), and agree with them.
    let classic_on_native = scalar(
        &n,
        "sum(server_handle_request_seconds_count{path=\"/work\"})",
    )
    .unwrap();
    assert_eq!(
        classic_on_native, sent,
        "classic _count on the native server"
    );
    assert!(!n
        .query("server_handle_request_seconds_bucket{path=\"/work\",le=\"0.25\"}")
        .is_empty());

    // p99, native (the query) against classic and the truth.
    let native_p99 = scalar(
        &n,
        "histogram_quantile(0.99, rate(server_handle_request_seconds{path=\"/work\"}[1m]))",
    )
    .unwrap();
    let classic_p99 = scalar(
        &c,
        "histogram_quantile(0.99, sum by (le) (rate(server_handle_request_seconds_bucket{path=\"/work\"}[1m])))",
    )
    .unwrap();
    eprintln!(
        "p99: native {native_p99:.4} s, classic {classic_p99:.4} s, true 0.108-0.109 s + overhead"
    );
    // The classic estimate interpolates inside the bucket (0.1, 0.25].
    assert!(
        classic_p99 > 0.1 && classic_p99 <= 0.25,
        "classic p99 {classic_p99}"
    );
    assert!(
        native_p99 > 0.1 && native_p99 <= 0.25,
        "native p99 {native_p99} outside the classic estimate's bucket"
    );
    // Schema 3 buckets are 9% wide: the native estimate is within one
    // bucket of the truth, which a classic bucket 150 ms wide is not.
    assert!(
        (0.108 / 1.1..=0.109 * 1.1 + 0.005).contains(&native_p99),
        "native p99 {native_p99}"
    );

    // The dashboard's native panel runs on the native server.
    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/grafana/dashboards/tinymon.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let native_exprs: Vec<String> = dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["title"].as_str().is_some_and(|t| t.contains("native")))
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| {
            t["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "1m")
                .replace("$instance", ".*")
                .replace("$path", ".*")
        })
        .collect();
    assert!(!native_exprs.is_empty(), "no native panel in the dashboard");
    for expr in &native_exprs {
        let v = n.query(expr);
        let work = v
            .iter()
            .find(|s| s["metric"]["path"] == "/work")
            .unwrap_or_else(|| panic!("{expr}: {v:?}"));
        let q: f64 = work["value"][1].as_str().unwrap().parse().unwrap();
        assert!(q > 0.0 && q < 0.25, "{expr}: {q}");
    }

    // Exemplars: the trace ids sent, on the counter and the histogram.
    let sent_ids: Vec<String> = (0..delays.len()).map(|i| trace_for(i).1).collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for metric in [
        "server_handle_request_total",
        "server_handle_request_seconds",
    ] {
        wait_for(
            &format!("exemplars of {metric}"),
            Duration::from_secs(20),
            || {
                let v = n.api(&format!(
                    "/api/v1/query_exemplars?query={metric}{{path=\"/work\"}}&start={}&end={}",
                    now - 300,
                    now + 60
                ));
                let ids: Vec<String> = v["data"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|series| series["exemplars"].as_array().cloned().unwrap_or_default())
                    .filter_map(|e| e["labels"]["trace_id"].as_str().map(str::to_owned))
                    .collect();
                if !ids.is_empty() && ids.iter().all(|id| sent_ids.contains(id)) {
                    Ok(())
                } else {
                    Err(format!("{v}"))
                }
            },
        );
    }

    // Prometheus 3 normalises `le` to a float's text on ingestion: le="1"
    // is stored as le="1.0", and le="0.25" stays le="0.25", so the rules'
    // and dashboard's selectors on le="0.25" keep working. On both servers.
    assert_eq!(scalar(&c, "up").unwrap(), 1.0);
    assert_eq!(scalar(&n, "up").unwrap(), 1.0);
    for api in [&n, &c] {
        assert!(!api
            .query("server_handle_request_seconds_bucket{le=\"0.25\"}")
            .is_empty());
        assert!(!api
            .query("server_handle_request_seconds_bucket{le=\"10.0\"}")
            .is_empty());
        assert!(api
            .query("server_handle_request_seconds_bucket{le=\"10\"}")
            .is_empty());
    }
    assert!(!c
        .query("server_handle_request_seconds_bucket{le=\"1.0\"}")
        .is_empty());
    assert!(c
        .query("server_handle_request_seconds_bucket{le=\"1\"}")
        .is_empty());
}
