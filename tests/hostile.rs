//! Hostile clients against the real binary: floods of invented URLs and
//! methods, stalled and trickling connections, a connection limit, malformed
//! requests, and SIGTERM under load. Each test fails without the protection
//! it checks.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{promtool_check, sample, Tinymon};
use tinymon_test_support::client::Connection;
use tinymon_test_support::Rng;

fn rss_kb(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn series_count(text: &str) -> usize {
    text.lines().filter(|l| !l.starts_with('#')).count()
}

/// Time for a fresh connection to get /healthz answered.
fn healthz_latency(t: &Tinymon) -> Duration {
    let start = Instant::now();
    let r = tinymon_test_support::client::get(&t.url("/healthz"), Duration::from_secs(5))
        .expect("healthz");
    assert_eq!(r.status, 200);
    start.elapsed()
}

#[test]
fn a_flood_of_invented_urls_and_methods_stays_bounded() {
    let t = Tinymon::start(&[]);
    // Warm up every route so the baseline has its series.
    for p in ["/hello", "/healthz", "/work?delay_ms=0", "/nope"] {
        t.get(p);
    }
    let before_text = t.scrape();
    let before_rss = rss_kb(t.pid());

    let threads: Vec<_> = (0..4u64)
        .map(|seed| {
            let addr = t.addr;
            std::thread::spawn(move || {
                let mut rng = Rng::seeded(seed + 1);
                let mut conn = Connection::open(addr, Duration::from_secs(5)).unwrap();
                for _ in 0..5_000 {
                    let method: String = (0..1 + rng.next_u64() % 10)
                        .map(|_| (b'A' + (rng.next_u64() % 26) as u8) as char)
                        .collect();
                    let path: String = (0..1 + rng.next_u64() % 4)
                        .map(|_| format!("/{:x}", rng.next_u64()))
                        .collect();
                    let r = conn.request(&method, &path).expect("flood request");
                    assert!(
                        r.status == 404 || r.status == 405,
                        "{method} {path}: {}",
                        r.status
                    );
                    if conn.is_closed() {
                        conn = Connection::open(addr, Duration::from_secs(5)).unwrap();
                    }
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }

    let after_text = t.scrape();
    let after_rss = rss_kb(t.pid());
    let (before, after) = (series_count(&before_text), series_count(&after_text));
    eprintln!("series {before} -> {after}; RSS {before_rss} kB -> {after_rss} kB");
    // 20,000 invented URLs and methods fold into <unmatched> and OTHER: a
    // handful of new series, not thousands.
    assert!(after <= before + 40, "series grew from {before} to {after}");
    let folded: f64 = ["OTHER", "GET"]
        .iter()
        .filter_map(|m| {
            sample(
                &after_text,
                &format!(
                    "server_handle_request_total{{type=\"http\",method=\"{m}\",path=\"<unmatched>\"}}"
                ),
            )
        })
        .sum();
    assert!(
        folded >= 19_000.0,
        "only {folded} requests folded into <unmatched>"
    );
    for line in after_text
        .lines()
        .filter(|l| l.starts_with("tinymon_series_dropped_total{"))
    {
        assert!(line.ends_with("} 0"), "a family hit its cap: {line}");
    }
    assert!(
        after_rss < before_rss + 8 * 1024,
        "RSS grew by {} kB",
        after_rss - before_rss
    );
    let (ok, out) = promtool_check(&after_text);
    assert!(ok && out.trim().is_empty(), "{out}");
}

#[test]
fn a_thousand_stalled_clients_do_not_stop_healthz() {
    let t = Tinymon::start(&[]);
    let mut stalled = Vec::new();
    for i in 0..1_000 {
        let mut s = TcpStream::connect(t.addr).unwrap_or_else(|e| panic!("connection {i}: {e}"));
        s.write_all(b"GET /hea").unwrap();
        stalled.push(s);
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        worst = worst.max(healthz_latency(&t));
    }
    eprintln!(
        "healthz with 1000 stalled clients: worst of 5 {worst:?}; RSS {} kB",
        rss_kb(t.pid())
    );
    assert!(worst < Duration::from_secs(1), "{worst:?}");
    let text = t.scrape();
    let open = sample(&text, "tinymon_connections_open").unwrap();
    assert!(open >= 1_000.0, "guard sees {open} connections");
    drop(stalled);
}

#[test]
fn idle_stalled_and_trickling_connections_are_timed_out() {
    let t = Tinymon::start(&["--idle-timeout", "3"]);
    // Nothing sent at all.
    let mut silent = TcpStream::connect(t.addr).unwrap();
    // Half a request, then nothing.
    let mut stalled = TcpStream::connect(t.addr).unwrap();
    stalled
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    // Keep-alive connection that got its answer and went quiet.
    let mut kept = Connection::open(t.addr, Duration::from_secs(10)).unwrap();
    assert_eq!(kept.request("GET", "/hello").unwrap().status, 200);
    // A slowloris: one header byte every 400 ms, never finishing.
    let trickle_addr = t.addr;
    let trickle = std::thread::spawn(move || {
        let mut s = TcpStream::connect(trickle_addr).unwrap();
        s.write_all(b"GET /hello HTTP/1.1\r\nX-Slow: ").unwrap();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if s.write_all(b"a").is_err() {
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(400));
        }
        None
    });

    let start = Instant::now();
    for (name, s) in [("silent", &mut silent), ("stalled", &mut stalled)] {
        s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        let mut buf = [0u8; 64];
        let n = s
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("{name}: not closed: {e}"));
        assert_eq!(n, 0, "{name}: expected end of stream");
    }
    let closed_after = start.elapsed();
    assert!(
        closed_after >= Duration::from_millis(2_500) && closed_after < Duration::from_secs(6),
        "{closed_after:?}"
    );
    // The kept connection's idle time began at its answer, a few ms after
    // the silent one connected, so the guard (one look every 100 ms) may
    // close it one tick later than the other two.
    std::thread::sleep(Duration::from_millis(250));
    assert!(
        kept.request("GET", "/hello").is_err(),
        "idle keep-alive connection still open"
    );
    let cut = trickle
        .join()
        .unwrap()
        .expect("slowloris connection never closed");
    assert!(cut < Duration::from_secs(8), "{cut:?}");

    let text = t.scrape();
    let idle = sample(&text, "tinymon_connections_closed_total{reason=\"idle\"}").unwrap();
    assert!(idle >= 4.0, "closed idle: {idle}");
    assert!(healthz_latency(&t) < Duration::from_secs(1));
}

#[test]
fn the_connection_limit_closes_silent_connections_and_answers_503() {
    let t = Tinymon::start(&["--max-connections", "20"]);
    let mut held: Vec<TcpStream> = (0..40)
        .map(|_| TcpStream::connect(t.addr).unwrap())
        .collect();
    // A few guard ticks.
    std::thread::sleep(Duration::from_millis(600));
    // The guard writes nothing into tiny_http's sockets: connections over
    // the limit that sent nothing are closed without a word.
    let mut shed = 0;
    for s in &mut held {
        s.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 256];
        match s.read(&mut buf) {
            Ok(0) => shed += 1,
            Ok(n) => panic!("the guard wrote {:?}", String::from_utf8_lossy(&buf[..n])),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock),
        }
    }
    assert!(
        (20..=21).contains(&shed),
        "{shed} of 40 shed with a limit of 20"
    );
    let text = t.scrape();
    assert!(sample(&text, "tinymon_connections_closed_total{reason=\"shed\"}").unwrap() >= 20.0);

    // Connections that do send a request while the server is over the
    // limit get a 503 from the app, with Connection: close.
    let busy: Vec<TcpStream> = (0..30)
        .map(|_| {
            let mut s = TcpStream::connect(t.addr).unwrap();
            s.write_all(b"GET /work?delay_ms=1500 HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(400));
    let mut s = TcpStream::connect(t.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
    assert!(answer.contains("\r\nConnection: close\r\n"), "{answer:?}");
    drop(busy);
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    assert!(healthz_latency(&t) < Duration::from_secs(1));
}

#[test]
fn malformed_requests_get_4xx_or_a_closed_connection() {
    let t = Tinymon::start(&[]);
    let big_header = format!(
        "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(200 * 1024)
    );
    let long_target = format!(
        "GET /hello?{} HTTP/1.1\r\nHost: x\r\n\r\n",
        "q".repeat(20_000)
    );
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage line", b"GARBAGE\r\n\r\n".to_vec()),
        ("no target", b"GET\r\n\r\n".to_vec()),
        ("bad version", b"GET / HTTP/9.9\r\n\r\n".to_vec()),
        (
            "binary",
            vec![0xde, 0xad, 0xbe, 0xef, 0, 1, 2, b'\r', b'\n', b'\r', b'\n'],
        ),
        (
            "bad header",
            b"GET /hello HTTP/1.1\r\nno colon here\r\n\r\n".to_vec(),
        ),
        ("200 KB header", big_header.into_bytes()),
        ("20 KB target", long_target.into_bytes()),
        (
            "invalid UTF-8 path",
            b"GET /\xff\xfe\xfd HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        (
            "NUL in path",
            b"GET /hel\0lo HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        (
            "absurd delay",
            b"GET /work?delay_ms=1e999 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        (
            "absurd fail",
            b"GET /work?fail=-inf HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        (
            "huge number",
            format!(
                "GET /work?delay_ms={} HTTP/1.1\r\nHost: x\r\n\r\n",
                "9".repeat(5000)
            )
            .into_bytes(),
        ),
        (
            "percent junk",
            b"GET /work?delay_ms=%00%ff HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
    ];
    for (name, bytes) in cases {
        let answer = t.raw(&bytes);
        let status: Option<u16> = answer
            .strip_prefix("HTTP/1.1 ")
            .and_then(|r| r.get(..3))
            .and_then(|c| c.parse().ok());
        match status {
            Some(code) => assert!((400..500).contains(&code), "{name}: {code}"),
            None => assert!(answer.is_empty(), "{name}: unexpected answer {answer:?}"),
        }
        assert_eq!(
            t.get("/healthz").status,
            200,
            "service stopped after {name}"
        );
    }
    let text = t.scrape();
    let (ok, out) = promtool_check(&text);
    assert!(ok && out.trim().is_empty(), "{out}");
}

#[test]
fn metrics_token_is_required_when_set() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tinymon"))
        .args(["--listen", "127.0.0.1:0"])
        .env("TINYMON_METRICS_TOKEN", "s3cret-token")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stderr.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let addr: std::net::SocketAddr = line
        .split("listening on ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let ask = |auth: Option<&str>| {
        let mut s = TcpStream::connect(addr).unwrap();
        let extra = auth
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let none = ask(None);
    let wrong = ask(Some("Bearer s3cret-tokeN"));
    let prefix = ask(Some("Bearer s3cret"));
    let right = ask(Some("Bearer s3cret-token"));
    let _ = child.kill();
    let _ = child.wait();
    for (name, answer) in [("none", &none), ("wrong", &wrong), ("prefix", &prefix)] {
        assert!(answer.starts_with("HTTP/1.1 401"), "{name}: {answer}");
        assert!(
            answer.contains("WWW-Authenticate: Bearer"),
            "{name}: {answer}"
        );
    }
    assert!(right.starts_with("HTTP/1.1 200"), "{right}");
    assert!(
        right.contains("promhttp_metric_handler_requests_total{code=\"401\"} 3"),
        "{right}"
    );
}

#[test]
fn sigterm_under_load_answers_every_request_already_sent() {
    let mut t = Tinymon::start(&["--workers", "4"]);
    let stop_sending = Arc::new(AtomicBool::new(false));
    let sigterm_at = Arc::new(parking_lot::Mutex::new(None::<Instant>));
    let clients: Vec<_> = (0..6)
        .map(|i| {
            let (addr, stop, at) = (t.addr, stop_sending.clone(), sigterm_at.clone());
            std::thread::spawn(move || {
                let mut lost_before_sigterm = Vec::new();
                let mut answered = 0;
                let mut conn = Connection::open(addr, Duration::from_secs(10)).ok();
                while !stop.load(Ordering::Relaxed) {
                    let Some(c) = conn.as_mut() else { break };
                    let path = if i % 2 == 0 {
                        "/hello"
                    } else {
                        "/work?delay_ms=40"
                    };
                    let sent = Instant::now();
                    match c.request("GET", path) {
                        Ok(r) => {
                            assert_eq!(r.status, 200);
                            answered += 1;
                            if c.is_closed() {
                                conn = Connection::open(addr, Duration::from_secs(1)).ok();
                            }
                        }
                        Err(e) => {
                            if at.lock().is_none_or(|t| sent < t) {
                                let before = at.lock().map(|t| t - sent);
                                lost_before_sigterm
                                    .push(format!("{path}: {e} (sent {before:?} before SIGTERM)"));
                            }
                            conn = Connection::open(addr, Duration::from_secs(1)).ok();
                        }
                    }
                }
                (answered, lost_before_sigterm)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    *sigterm_at.lock() = Some(Instant::now());
    t.signal(libc::SIGTERM);
    let code = t.wait_exit(Duration::from_secs(5));
    stop_sending.store(true, Ordering::Relaxed);
    let mut answered = 0;
    for c in clients {
        let (n, lost) = c.join().unwrap();
        answered += n;
        assert!(
            lost.is_empty(),
            "requests sent before SIGTERM were cut: {lost:?}"
        );
    }
    assert_eq!(code, Some(0));
    assert!(answered > 50, "only {answered} requests answered");
}

/// tiny_http's pool can leave a freshly accepted connection unserved when
/// several arrive at once (a lost wake-up); the guard's nudge must get every
/// one of them answered promptly while all stay open.
#[test]
fn a_burst_of_keep_alive_connections_is_served_promptly() {
    for round in 0..5 {
        let t = Tinymon::start(&["--workers", "4"]);
        let barrier = Arc::new(std::sync::Barrier::new(12));
        let clients: Vec<_> = (0..12)
            .map(|_| {
                let (addr, barrier) = (t.addr, barrier.clone());
                std::thread::spawn(move || {
                    let mut c = Connection::open(addr, Duration::from_secs(3)).unwrap();
                    barrier.wait();
                    let start = Instant::now();
                    let r = c.request("GET", "/hello").map(|r| r.status);
                    // Keep the connection open until everyone is done.
                    (r, start.elapsed(), c)
                })
            })
            .collect();
        let results: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
        for (r, took, _) in &results {
            assert_eq!(*r.as_ref().unwrap(), 200, "round {round}");
            assert!(
                *took < Duration::from_millis(1_500),
                "round {round}: waited {took:?}"
            );
        }
    }
}
