//! The real binary under mixed traffic: routes, statuses and the values
//! of the RED metrics in the next scrape.

mod common;

use common::{promtool_check, sample, Tinymon};

const LATENCY: &str = "server_handle_request_seconds";

#[test]
fn routes_answer_with_the_right_status() {
    let t = Tinymon::start(&[]);
    assert_eq!(t.get("/hello").status, 200);
    assert_eq!(t.get("/healthz").text(), "ok\n");
    assert_eq!(t.get("/nope").status, 404);
    let head = t.request("HEAD", "/hello");
    assert_eq!(head.status, 200);
    let wrong = t.request("POST", "/metrics");
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.header("Allow"), Some("GET, HEAD"));
    assert_eq!(t.get("/work?delay_ms=1").status, 200);
    assert_eq!(t.get("/work?delay_ms=1&fail=1").status, 502);
    let bad = t.get("/work?delay_ms=99999");
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("delay_ms"), "{}", bad.text());
    assert_eq!(t.get("/work?fail=2").status, 400);
    assert_eq!(t.get("/work?x=1").status, 400);
}

#[test]
fn mixed_traffic_is_counted_exactly() {
    let t = Tinymon::start(&["--workers", "4"]);
    for _ in 0..7 {
        assert_eq!(t.get("/hello").status, 200);
    }
    for i in 0..5 {
        assert_eq!(t.get(&format!("/random/{i}?q=\"x\"")).status, 404);
    }
    for _ in 0..3 {
        assert_eq!(t.request("BREW", "/hello").status, 405);
    }
    assert_eq!(t.request("DELETE", "/somewhere").status, 404);
    for _ in 0..4 {
        assert_eq!(t.get("/work?delay_ms=2").status, 200);
    }
    for _ in 0..2 {
        assert_eq!(t.get("/work?delay_ms=2&fail=1").status, 502);
    }
    assert_eq!(t.get("/work?delay_ms=abc").status, 400);

    let text = t.scrape();
    let total = |m: &str, p: &str| {
        sample(
            &text,
            &format!("server_handle_request_total{{type=\"http\",method=\"{m}\",path=\"{p}\"}}"),
        )
    };
    assert_eq!(total("GET", "/hello"), Some(7.0));
    assert_eq!(total("GET", "<unmatched>"), Some(5.0));
    assert_eq!(total("OTHER", "/hello"), Some(3.0));
    assert_eq!(total("DELETE", "<unmatched>"), Some(1.0));
    assert_eq!(total("GET", "/work"), Some(7.0));
    // The scrape itself is counted at its start, like the Go original.
    assert_eq!(total("GET", "/metrics"), Some(1.0));
    assert!(
        !text.contains("/random/"),
        "raw URLs must not become labels"
    );

    let status = |m: &str, p: &str, s: &str| {
        sample(
            &text,
            &format!(
                "server_handle_request_status{{type=\"http\",method=\"{m}\",path=\"{p}\",status=\"{s}\"}}"
            ),
        )
    };
    assert_eq!(status("GET", "/hello", "200"), Some(7.0));
    assert_eq!(status("OTHER", "/hello", "405"), Some(3.0));
    assert_eq!(status("GET", "/work", "200"), Some(4.0));
    assert_eq!(status("GET", "/work", "502"), Some(2.0));
    assert_eq!(status("GET", "/work", "400"), Some(1.0));
    assert_eq!(
        status("GET", "/metrics", "200"),
        None,
        "recorded after the scrape"
    );

    let hello = "type=\"http\",method=\"GET\",path=\"/hello\",status=\"200\"";
    assert_eq!(
        sample(&text, &format!("{LATENCY}_count{{{hello}}}")),
        Some(7.0)
    );
    assert_eq!(
        sample(&text, &format!("{LATENCY}_bucket{{{hello},le=\"+Inf\"}}")),
        Some(7.0)
    );
    let sum = sample(&text, &format!("{LATENCY}_sum{{{hello}}}")).unwrap();
    assert!(sum > 0.0 && sum < 7.0, "{sum}");

    let peer = "type=\"http\",name=\"inventory\",op=\"lookup\",peer=\"inventory:9000\"";
    assert_eq!(
        sample(&text, &format!("client_handle_request_total{{{peer}}}")),
        Some(6.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!("client_handle_request_status{{{peer},status=\"500\"}}")
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, &format!("client_handle_seconds_count{{{peer}}}")),
        Some(6.0)
    );
    let work_sum = sample(&text, &format!("client_handle_seconds_sum{{{peer}}}")).unwrap();
    assert!(work_sum >= 6.0 * 0.002, "slept 2 ms per call: {work_sum}");

    assert_eq!(
        sample(&text, "promhttp_metric_handler_requests_in_flight"),
        Some(1.0)
    );
    // Only the scrape itself is being handled.
    assert_eq!(sample(&text, "server_handle_requests_in_flight"), Some(1.0));
    assert_eq!(
        sample(
            &text,
            "promhttp_metric_handler_requests_total{code=\"200\"}"
        ),
        Some(0.0)
    );
    let again = t.scrape();
    assert_eq!(
        sample(
            &again,
            "promhttp_metric_handler_requests_total{code=\"200\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &again,
            &format!(
                "tinymon_build_info{{version=\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            )
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &again,
            "tinymon_series_dropped_total{family=\"server_handle_request_total\"}"
        ),
        Some(0.0)
    );
}

#[test]
fn scrape_is_promtool_clean_after_hostile_urls() {
    let t = Tinymon::start(&[]);
    for path in [
        "/hello",
        "/work?delay_ms=1&fail=0.5",
        "/%22quoted%22",
        "/back\\slash",
        "/caf%C3%A9/日本",
        "/new%0Aline",
        "/work?delay_ms=%0A",
    ] {
        // Some of these are not valid HTTP; whatever the answer, the next
        // scrape must stay clean.
        let _ = t
            .raw(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes());
    }
    let _ = t.request("PURGE", "/x\"y");
    let text = t.scrape();
    let (ok, out) = promtool_check(&text);
    assert!(ok && out.trim().is_empty(), "promtool: {out}\n---\n{text}");
}

#[test]
fn histogram_lines_are_ordered_and_cumulative() {
    let t = Tinymon::start(&[]);
    for d in [0, 3, 7, 30, 60] {
        t.get(&format!("/work?delay_ms={d}"));
    }
    let text = t.scrape();
    let buckets: Vec<(String, f64)> = text
        .lines()
        .filter(|l| l.starts_with("client_handle_seconds_bucket{"))
        .map(|l| {
            let le = l.split("le=\"").nth(1).unwrap().split('"').next().unwrap();
            (
                le.to_string(),
                l.rsplit(' ').next().unwrap().parse().unwrap(),
            )
        })
        .collect();
    let les: Vec<&str> = buckets.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        les,
        ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]
    );
    assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{buckets:?}");
    assert_eq!(buckets.last().unwrap().1, 5.0);
    assert!(
        buckets[0].1 >= 2.0,
        "0 and 3 ms land at or below 5 ms: {buckets:?}"
    );
    // Each family once, its samples together (the strict parser refuses
    // anything else); families in name order, except that a collector's
    // families stay together as a block.
    let families = tinymon_test_support::parse_text(&text).unwrap();
    let names: Vec<&str> = families.iter().map(|f| f.name.as_str()).collect();
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "{names:?}");
    let i = |n: &str| names.iter().position(|x| *x == n).unwrap();
    assert!(i("client_handle_seconds") < i("process_cpu_seconds_total"));
    assert!(i("process_virtual_memory_max_bytes") < i("server_handle_request_seconds"));
    assert!(i("tinymon_connections_closed_total") < i("tinymon_connections_open"));
}
