//! HTTP cost of the instrumentation, measured with wrk on loopback.
//!
//! `make bench-http` runs this. This process is pinned to CPU 0 and serves
//! two servers with the same worker count: tinymon's instrumented app, and a
//! bare tiny_http server that answers `/hello` with the same bytes and
//! records nothing. wrk runs pinned to CPU 1. The rounds alternate between
//! the two servers, so drift on a shared machine hits both alike. The bench
//! reports median requests/s, p50 and p99 latency, and their ratio.
//!
//! Then it fills the registry to about 400 samples and measures the /metrics
//! round trip at one connection next to the /hello round trip of the same
//! server. The difference is the cost of a scrape above the floor set by
//! loopback and thread wake-ups.
//!
//! Last, the real binary's RSS: idle, and at its peak under 64 connections.
//!
//! When a Go toolchain and Debian's client_golang are installed (`make
//! bench-http` installs them as root), a Go rebuild of the original service
//! (`benches/go_original/main.go`: net/http, client_golang, the same three
//! request families) joins the rounds, pinned to CPU 0 like the others.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tiny_http::{Method, Request};
use tinymon::http::{Reply, Server, ServerSettings, Service};
use tinymon::metrics::Registry;

const WORKERS: usize = 4;
const ROUNDS: usize = 3;
const SECONDS: u32 = 5;
const HELLO: &[u8] = b"hello from tinymon\n";

fn hello<'a>(_: &'a (), _: &Request) -> Reply<'a> {
    Reply::text(200, "hello from tinymon\n")
}

/// The demo's routes, answered at once (the real `/work` sleeps).
fn ok<'a>(_: &'a (), _: &Request) -> Reply<'a> {
    Reply::text(200, "ok\n")
}

fn pin_to_cpu(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET stays in bounds.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// tiny_http with the same worker pool shape, no metrics.
fn bare_server() -> String {
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let addr = server.server_addr().to_string();
    for _ in 0..WORKERS {
        let server = server.clone();
        std::thread::spawn(move || {
            let header =
                tiny_http::Header::from_bytes("Content-Type", "text/plain; charset=utf-8").unwrap();
            while let Ok(rq) = server.recv() {
                let r = tiny_http::Response::new(
                    tiny_http::StatusCode(200),
                    vec![header.clone()],
                    HELLO,
                    Some(HELLO.len()),
                    None,
                );
                let _ = rq.respond(r);
            }
        });
    }
    addr
}

struct WrkResult {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
}

fn wrk(url: &str, connections: u32) -> WrkResult {
    let out = Command::new("taskset")
        .args(["-c", "1", "wrk", "-t1"])
        .arg(format!("-c{connections}"))
        .arg(format!("-d{SECONDS}s"))
        .args(["--latency", url])
        .stderr(Stdio::inherit())
        .output()
        .expect("wrk and taskset are required: apt-get install wrk util-linux");
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |prefix: &str| -> f64 {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in wrk output:\n{text}"));
        let value = line[prefix.len()..].trim();
        parse_duration_us(value).unwrap_or_else(|| value.parse().unwrap())
    };
    WrkResult {
        rps: field("Requests/sec:"),
        p50_us: field("50%"),
        p99_us: field("99%"),
    }
}

fn parse_duration_us(v: &str) -> Option<f64> {
    for (unit, scale) in [("us", 1.0), ("ms", 1e3), ("s", 1e6)] {
        if let Some(n) = v.strip_suffix(unit) {
            if let Ok(n) = n.parse::<f64>() {
                return Some(n * scale);
            }
        }
    }
    None
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn sample_lines(addr: &str) -> usize {
    let r = tinymon_test_support::client::get(
        &format!("http://{addr}/metrics"),
        Duration::from_secs(5),
    )
    .unwrap();
    r.text().lines().filter(|l| !l.starts_with('#')).count()
}

fn rss_kb(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(key)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Builds and starts the Go rebuild of the original on CPU 0, if `go` is
/// installed; its address and process.
fn go_server() -> Option<(String, std::process::Child)> {
    let out = std::env::temp_dir().join("tinymon-go-original");
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/go_original/main.go");
    let built = Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg(src)
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOCACHE", std::env::temp_dir().join("tinymon-go-cache"))
        .status();
    if !matches!(built, Ok(s) if s.success()) {
        println!("(no Go toolchain with client_golang: the Go row is skipped)");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new("taskset")
        .args(["-c", "0"])
        .arg(&out)
        .arg(&addr)
        .spawn()
        .ok()?;
    for _ in 0..50 {
        if std::net::TcpStream::connect(&addr).is_ok() {
            return Some((addr, child));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

fn main() {
    // `cargo test --all-targets` runs bench binaries without `--bench`; this
    // one needs wrk, two quiet CPUs and a minute, so it runs only as a bench.
    if !std::env::args().any(|a| a == "--bench") {
        println!("benches/http.rs: run with `make bench-http`");
        return;
    }
    pin_to_cpu(0);
    let service = Service::new(Arc::new(Registry::new()), ())
        .unwrap()
        .route(Method::Get, "/hello", hello)
        .and_then(|s| s.route(Method::Get, "/healthz", ok))
        .and_then(|s| s.route(Method::Get, "/work", ok))
        .unwrap();
    let settings = ServerSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        workers: WORKERS,
        raise_fd_limit: true,
        ..ServerSettings::default()
    };
    let server = Server::start(&settings, Arc::new(service)).unwrap();
    let tinymon = server.addr().to_string();
    let bare = bare_server();

    let mut go = go_server();
    println!("## /hello, 64 connections, {ROUNDS} alternating rounds of {SECONDS} s (server on CPU 0, wrk on CPU 1)");
    let (mut t_rps, mut b_rps, mut t50, mut b50, mut t99, mut b99) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut g_rps, mut g50, mut g99) = (vec![], vec![], vec![]);
    for round in 0..ROUNDS {
        let b = wrk(&format!("http://{bare}/hello"), 64);
        let t = wrk(&format!("http://{tinymon}/hello"), 64);
        println!(
            "round {round}: bare {:.0} req/s p50 {:.0} us p99 {:.0} us | tinymon {:.0} req/s p50 {:.0} us p99 {:.0} us",
            b.rps, b.p50_us, b.p99_us, t.rps, t.p50_us, t.p99_us
        );
        if let Some((addr, _)) = &go {
            let g = wrk(&format!("http://{addr}/hello"), 64);
            println!(
                "round {round}: Go original {:.0} req/s p50 {:.0} us p99 {:.0} us",
                g.rps, g.p50_us, g.p99_us
            );
            g_rps.push(g.rps);
            g50.push(g.p50_us);
            g99.push(g.p99_us);
        }
        b_rps.push(b.rps);
        t_rps.push(t.rps);
        b50.push(b.p50_us);
        t50.push(t.p50_us);
        b99.push(b.p99_us);
        t99.push(t.p99_us);
    }
    let (tr, br) = (median(t_rps), median(b_rps));
    println!("| server | req/s (median) | p50 µs | p99 µs |");
    println!("|---|---|---|---|");
    println!(
        "| bare tiny_http | {br:.0} | {:.0} | {:.0} |",
        median(b50),
        median(b99)
    );
    println!(
        "| tinymon (instrumented) | {tr:.0} | {:.0} | {:.0} |",
        median(t50),
        median(t99)
    );
    if let Some((addr, mut child)) = go.take() {
        println!(
            "| Go original (net/http, client_golang) | {:.0} | {:.0} | {:.0} |",
            median(g_rps),
            median(g50),
            median(g99)
        );
        let hello = median(
            (0..ROUNDS)
                .map(|_| wrk(&format!("http://{addr}/hello"), 1).p50_us)
                .collect(),
        );
        let metrics = median(
            (0..ROUNDS)
                .map(|_| wrk(&format!("http://{addr}/metrics"), 1).p50_us)
                .collect(),
        );
        println!(
            "Go original at 1 connection: /hello p50 {hello:.0} us, /metrics p50 {metrics:.0} us"
        );
        println!(
            "Go original RSS after the rounds: {:.1} MB",
            rss_kb(child.id(), "VmRSS:") as f64 / 1024.0
        );
        let _ = child.kill();
        let _ = child.wait();
    }
    println!(
        "middleware cost: {:.1} % of bare req/s",
        (1.0 - tr / br) * 100.0
    );

    // Grow the registry to ~400 samples with every method/path/status mix.
    let methods = [
        "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "BREW",
    ];
    let paths = [
        "/hello",
        "/healthz",
        "/work?delay_ms=0",
        "/metrics",
        "/nope",
        "/work?fail=1&delay_ms=0",
        "/work?x=1",
    ];
    'fill: for path in paths {
        for m in methods {
            if sample_lines(&tinymon) >= 400 {
                break 'fill;
            }
            let mut c = tinymon_test_support::client::Connection::open(
                server.addr(),
                Duration::from_secs(5),
            )
            .unwrap();
            let _ = c.request(m, path);
        }
    }
    let samples = sample_lines(&tinymon);
    println!("\n## round trip at 1 connection, registry of {samples} samples");
    let hello = median(
        (0..ROUNDS)
            .map(|_| wrk(&format!("http://{tinymon}/hello"), 1).p50_us)
            .collect(),
    );
    let metrics = median(
        (0..ROUNDS)
            .map(|_| wrk(&format!("http://{tinymon}/metrics"), 1).p50_us)
            .collect(),
    );
    println!("| route | p50 µs (median of {ROUNDS}) |");
    println!("|---|---|");
    println!("| /hello | {hello:.0} |");
    println!("| /metrics | {metrics:.0} |");
    println!("/metrics minus /hello: {:.0} µs", metrics - hello);

    // The real binary's memory.
    let bin = env!("CARGO_BIN_EXE_tinymon");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new("taskset")
        .args(["-c", "0", bin, "--listen", &format!("127.0.0.1:{port}")])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let _ = tinymon_test_support::client::get(
        &format!("http://127.0.0.1:{port}/metrics"),
        Duration::from_secs(5),
    );
    let idle = rss_kb(child.id(), "VmRSS:");
    let _ = wrk(&format!("http://127.0.0.1:{port}/hello"), 64);
    let peak = rss_kb(child.id(), "VmHWM:");
    let _ = child.kill();
    let _ = child.wait();
    println!("\n## memory of {bin}");
    println!(
        "RSS idle {:.1} MB, peak under 64 connections {:.1} MB",
        idle as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    let static_bin = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/image/linux/amd64/tinymon"
    );
    if let Ok(meta) = std::fs::metadata(static_bin) {
        println!(
            "static stripped binary ({static_bin}): {:.2} MB",
            meta.len() as f64 / 1e6
        );
    } else {
        println!("static binary not built; run `make build` for its size");
    }
}
