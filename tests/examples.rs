//! The examples in `examples/`, run as a user would run them: each starts on
//! a free loopback port, gets traffic, and its scrape must pass the real
//! promtool and count exactly that traffic.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{promtool_check, sample};
use tinymon_test_support::client::{self, Response};

/// A running example, killed when dropped.
struct Example {
    child: Child,
    base: String,
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `target/<profile>/examples/<name>`, built by `cargo test` (which builds
/// every example); built here when missing.
fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let path = profile_dir.join("examples").join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or("cargo".into());
        let ok = Command::new(cargo)
            .args(["build", "--example", name])
            .status()
            .unwrap()
            .success();
        assert!(ok, "cargo build --example {name}");
    }
    path
}

fn start(name: &str) -> Example {
    let mut child = Command::new(example_binary(name))
        .arg("127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{name} printed {line:?}"))
        .to_owned();
    Example {
        child,
        base: format!("http://{addr}"),
    }
}

impl Example {
    fn get(&self, path: &str) -> Response {
        client::get(&format!("{}{path}", self.base), Duration::from_secs(5)).unwrap()
    }

    fn scrape(&self) -> String {
        let r = self.get("/metrics");
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("Content-Type"),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        let text = r.text();
        let (ok, out) = promtool_check(&text);
        assert!(ok && out.trim().is_empty(), "promtool: {out}\n---\n{text}");
        text
    }
}

#[test]
fn instrument_tiny_http_counts_its_own_routes() {
    let ex = start("instrument_tiny_http");
    for _ in 0..3 {
        assert_eq!(ex.get("/hello").text(), "hello\n");
    }
    assert_eq!(ex.get("/orders/7").text(), "order 7\n");
    assert_eq!(ex.get("/orders/8?x=1").status, 200);
    assert_eq!(ex.get("/nope/../etc").status, 404);
    let text = ex.scrape();
    let total = |path: &str| {
        sample(
            &text,
            &format!("server_handle_request_total{{type=\"http\",method=\"GET\",path=\"{path}\"}}"),
        )
    };
    assert_eq!(total("/hello"), Some(3.0), "{text}");
    assert_eq!(total("/orders/{id}"), Some(2.0), "{text}");
    assert_eq!(total("<unmatched>"), Some(1.0), "{text}");
    assert_eq!(
        sample(
            &text,
            "server_handle_request_seconds_count{type=\"http\",method=\"GET\",path=\"<unmatched>\",status=\"404\"}"
        ),
        Some(1.0)
    );
    // The scrape itself is in flight while it is encoded.
    assert_eq!(sample(&text, "server_handle_requests_in_flight"), Some(1.0));
}

#[test]
fn custom_collector_is_read_at_scrape_time() {
    let ex = start("custom_collector");
    let text = ex.scrape();
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap();
    let one_minute: f64 = loadavg.split(' ').next().unwrap().parse().unwrap();
    let reported = sample(&text, "system_load_average{period=\"1m\"}").expect(&text);
    assert!(
        (reported - one_minute).abs() < 1.0,
        "{reported} vs {one_minute}"
    );
    assert!(sample(&text, "system_load_average{period=\"15m\"}").is_some());
    // The service's own families come with it.
    assert!(sample(&text, "process_open_fds").is_some_and(|n| n > 0.0));
    assert_eq!(
        sample(
            &text,
            "promhttp_metric_handler_requests_total{code=\"200\"}"
        ),
        Some(0.0),
        "counted after the scrape is encoded"
    );
}
