//! OpenMetrics, read back by independent parsers: the official Python
//! client's parser (`prometheus_client.openmetrics.parser`, from PyPI; `make
//! test` installs it in target/pyenv) and a real Prometheus 2.42.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::Tinymon;
use serde_json::Value as Json;
use tinymon::encode::{OpenMetricsEncoder, TextEncoder};
use tinymon::metrics::{
    Buckets, Collected, Collector, Counter, Desc, Family, Gauge, Histogram, MetricType, Registry,
};
use tinymon_test_support::client::Connection;
use tinymon_test_support::{parse_text, Kind};

/// What Prometheus 2.42 sends on every scrape.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// The Python parser's reading of `text`.
fn python_read(text: &str) -> Vec<Json> {
    let python = std::env::var("TINYMON_PYTHON").unwrap_or(format!(
        "{}/target/pyenv/bin/python",
        env!("CARGO_MANIFEST_DIR")
    ));
    let script = format!("{}/tests/openmetrics/read.py", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(&python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{python}: {e}; `make pyenv` installs the Python client"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Python parser refused:\n{}\n---\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Json>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// Python's repr of a float, as read.py prints it.
fn py_repr(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.into()
    } else if v == v.trunc() && v.abs() < 1e16 {
        format!("{v:.1}")
    } else {
        let s = format!("{v:?}");
        // Rust writes 1e21 and 1.5e-9 where Python writes 1e+21 and 1.5e-09.
        match s.split_once('e') {
            Some((m, e)) => {
                let (sign, digits) = e.strip_prefix('-').map_or(("+", e), |d| ("-", d));
                format!("{m}e{sign}{digits:0>2}")
            }
            None => s,
        }
    }
}

struct Odd;
impl Collector for Odd {
    fn descs(&self) -> &[Desc] {
        &[Desc {
            name: "odd_cpu_seconds_total",
            help: "A float counter from a collector.",
            kind: MetricType::Counter,
        }]
    }
    fn collect(&self, out: &mut Collected<'_, '_>) {
        out.sample(0, &[("mode", "user")], 12.25);
        out.sample(0, &[("mode", "sy\"s\\\n")], 0.5);
    }
}

const AWKWARD: [&str; 6] = [
    "plain",
    "with \"quotes\"",
    "back\\slash",
    "new\nline",
    "café ✓ 日本語",
    "",
];

/// One registry, encoded both ways at the same instant: the Python parser's
/// reading of the OpenMetrics text must equal the strict parser's reading of
/// the 0.0.4 text, family by family and sample by sample.
#[test]
fn python_reads_the_same_families_and_values_as_the_text_format() {
    let r = Registry::new();
    let hits = r
        .register(
            Family::<Counter, 1>::new("odd_hits_total", "Help \"quoted\" \\ and\nnewline.", ["v"])
                .unwrap(),
        )
        .unwrap();
    let level = r
        .register(Family::<Gauge, 2>::new("odd_level", "Gauge.", ["v", "w"]).unwrap())
        .unwrap();
    let lat = r
        .register(
            Family::<Histogram, 1>::with_config(
                "odd_seconds",
                "Histogram.",
                ["v"],
                Buckets::new(&[1e-5, 0.5, 1.0, 10.0, 1e6]).unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
    r.counter("odd_bare", "A counter without the suffix.")
        .unwrap()
        .inc_by(7);
    r.register_collector(Odd).unwrap();
    for (i, v) in AWKWARD.iter().enumerate() {
        hits.get_or_create(&[v]).inc_by(i as u64 + 1);
        level
            .get_or_create(&[v, "x"])
            .set([f64::NAN, f64::INFINITY, -1.5e-9, 1e21, 0.0, -3.0][i]);
        lat.get_or_create(&[v]).observe(i as f64 * 0.3);
    }

    let om = String::from_utf8(OpenMetricsEncoder::new().encode(&r).to_vec()).unwrap();
    let text = String::from_utf8(TextEncoder::new().encode(&r).to_vec()).unwrap();
    let from_python = python_read(&om);
    let from_text = parse_text(&text).unwrap();
    assert_eq!(from_python.len(), from_text.len(), "{om}");

    for (py, tx) in from_python.iter().zip(&from_text) {
        let kind = match tx.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let base = match tx.kind {
            Kind::Counter => tx.name.strip_suffix("_total").unwrap_or(&tx.name),
            _ => &tx.name,
        };
        assert_eq!(py["name"], base, "{om}");
        assert_eq!(py["type"], kind);
        assert_eq!(py["help"], tx.help.as_str());
        // Samples as name → labels → value; OpenMetrics writes `le` in
        // canonical form (1.0), the text format as Go does (1).
        let mut want = BTreeMap::new();
        for s in &tx.samples {
            let name = match tx.kind {
                Kind::Counter => format!("{base}_total"),
                _ => s.name.clone(),
            };
            let labels: BTreeMap<String, String> = s
                .labels
                .iter()
                .map(|(k, v)| {
                    let v = if k == "le" && v != "+Inf" {
                        py_repr(v.parse().unwrap())
                    } else {
                        v.clone()
                    };
                    (k.clone(), v)
                })
                .collect();
            want.insert((name, labels), py_repr(s.value));
        }
        let mut got = BTreeMap::new();
        for s in py["samples"].as_array().unwrap() {
            let mut labels: BTreeMap<String, String> =
                serde_json::from_value(s["labels"].clone()).unwrap();
            if let Some(le) = labels.get_mut("le") {
                if le != "+Inf" {
                    *le = py_repr(le.parse().unwrap());
                }
            }
            got.insert(
                (s["name"].as_str().unwrap().to_owned(), labels),
                s["value"].as_str().unwrap().to_owned(),
            );
        }
        assert_eq!(got, want, "family {base}\n{om}");
    }
    assert!(
        om.contains("odd_seconds_bucket{v=\"plain\",le=\"1.0\"} 1\n"),
        "{om}"
    );
    assert!(om.ends_with("# EOF\n"));
}

/// The real binary under traffic, scraped as Prometheus scrapes it.
#[test]
fn the_service_answers_prometheus_with_openmetrics() {
    let t = Tinymon::start(&[]);
    for _ in 0..5 {
        assert_eq!(t.get("/hello").status, 200);
    }
    t.get("/work?delay_ms=1");
    t.get("/nope");
    let mut c = Connection::open(t.addr, Duration::from_secs(5)).unwrap();
    let r = c
        .request_with("GET", "/metrics", &[("Accept", PROMETHEUS_ACCEPT)])
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("Content-Type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let om = r.text();
    let families = python_read(&om);
    let family = |name: &str| {
        families
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no family {name}\n{om}"))
    };
    assert_eq!(family("server_handle_request")["type"], "counter");
    assert_eq!(family("server_handle_request_seconds")["type"], "histogram");
    assert_eq!(family("process_cpu_seconds")["type"], "counter");
    let hello = family("server_handle_request")["samples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["labels"]["path"] == "/hello")
        .unwrap()
        .clone();
    assert_eq!(hello["name"], "server_handle_request_total");
    assert_eq!(hello["value"], "5.0");

    // A malformed Accept header, or one naming nothing tinymon writes,
    // gets the text format.
    for accept in ["application/openmetrics-text;q=2", "image/png", ";;,,="] {
        let r = c
            .request_with("GET", "/metrics", &[("Accept", accept)])
            .unwrap();
        assert_eq!(r.status, 200, "{accept}");
        assert_eq!(
            r.header("Content-Type"),
            Some("text/plain; version=0.0.4; charset=utf-8"),
            "{accept}"
        );
    }
}

/// A real Prometheus 2.42 (no feature flags) scrapes the binary: the target
/// is up, and the `le` values it stored are OpenMetrics' canonical ones,
/// which only an OpenMetrics scrape produces.
#[test]
fn a_real_prometheus_scrapes_openmetrics() {
    let t = Tinymon::start(&[]);
    for _ in 0..3 {
        t.get("/hello");
    }
    let prom = common::prom::LocalPrometheus::start("openmetrics", &t.addr.to_string(), &[]);
    prom.wait_up(Duration::from_secs(30));
    let api = prom.api();
    common::prom::wait_for("an OpenMetrics le series", Duration::from_secs(30), || {
        let v = api.query("server_handle_request_seconds_bucket{path=\"/hello\",le=\"1.0\"}");
        if v.is_empty() {
            Err("not yet".into())
        } else {
            Ok(())
        }
    });
    assert!(
        api.query("server_handle_request_seconds_bucket{le=\"1\"}")
            .is_empty(),
        "a 0.0.4 scrape happened"
    );
    let up = api.query("up");
    assert_eq!(up[0]["value"][1], "1", "{up:?}");
    let hello = api.query("server_handle_request_total{path=\"/hello\"}");
    let scraped: f64 = hello[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert_eq!(scraped, 3.0, "{hello:?}");
}

const TRACE: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const WORK_TRACE: &str = "00-1bf7651916cd43dd8448eb211c80319d-c7ad6b7169203332-01";
const WORK_TRACE_ID: &str = "1bf7651916cd43dd8448eb211c80319d";

/// Requests with `traceparent` leave exemplars on the request counter, the
/// request latency buckets and the dependency latency buckets; a bad
/// `traceparent` is ignored and never echoed; the 0.0.4 text has none.
#[test]
fn traceparent_becomes_exemplars_in_openmetrics_only() {
    let t = Tinymon::start(&[]);
    let mut c = Connection::open(t.addr, Duration::from_secs(5)).unwrap();
    for (path, trace) in [
        ("/hello", TRACE),
        ("/work?delay_ms=2", WORK_TRACE),
        ("/hello", "00-<script>alert(1)</script>-b7ad6b7169203331-01"),
        ("/healthz", "garbage"),
    ] {
        let r = c
            .request_with("GET", path, &[("traceparent", trace)])
            .unwrap();
        assert_eq!(r.status, 200, "{path}");
    }
    let om = c
        .request_with("GET", "/metrics", &[("Accept", PROMETHEUS_ACCEPT)])
        .unwrap()
        .text();
    assert!(!om.contains("<script>") && !om.contains("garbage"), "{om}");
    let families = python_read(&om);
    let exemplar_ids = |family: &str, path_label: (&str, &str)| -> Vec<String> {
        families
            .iter()
            .filter(|f| f["name"] == family)
            .flat_map(|f| f["samples"].as_array().unwrap().clone())
            .filter(|s| s["labels"][path_label.0] == path_label.1)
            .filter_map(|s| {
                s["exemplar"]["labels"]["trace_id"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect()
    };
    assert_eq!(
        exemplar_ids("server_handle_request", ("path", "/hello")),
        [TRACE_ID],
        "{om}"
    );
    let buckets = exemplar_ids("server_handle_request_seconds", ("path", "/hello"));
    assert_eq!(buckets, [TRACE_ID], "one bucket holds it\n{om}");
    assert_eq!(
        exemplar_ids("server_handle_request_seconds", ("path", "/work")),
        [WORK_TRACE_ID]
    );
    assert_eq!(
        exemplar_ids("client_handle_seconds", ("op", "lookup")),
        [WORK_TRACE_ID]
    );
    assert!(exemplar_ids("server_handle_request", ("path", "/healthz")).is_empty());
    let text = t.scrape();
    assert!(!text.contains(TRACE_ID) && !text.contains(" # {"), "{text}");
}

/// Prometheus 2.42 with `--enable-feature=exemplar-storage` keeps the
/// exemplars it scrapes; `/api/v1/query_exemplars` gives the trace ids back.
#[test]
fn a_real_prometheus_stores_the_exemplars() {
    let t = Tinymon::start(&[]);
    let mut c = Connection::open(t.addr, Duration::from_secs(5)).unwrap();
    let prom = common::prom::LocalPrometheus::start(
        "exemplars",
        &t.addr.to_string(),
        &["--enable-feature=exemplar-storage"],
    );
    prom.wait_up(Duration::from_secs(30));
    let api = prom.api();
    common::prom::wait_for("exemplars in Prometheus", Duration::from_secs(30), || {
        // Again each round: a newer scrape carries them for sure.
        c.request_with("GET", "/hello", &[("traceparent", TRACE)])
            .map_err(|e| e.to_string())?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let v = api.api(&format!(
            "/api/v1/query_exemplars?query=server_handle_request_seconds_bucket&start={}&end={}",
            now - 120,
            now + 60
        ));
        let found = v["data"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|series| series["exemplars"].as_array().cloned().unwrap_or_default())
            .any(|e| e["labels"]["trace_id"] == TRACE_ID);
        if found {
            Ok(())
        } else {
            Err(format!("{v}"))
        }
    });
}
