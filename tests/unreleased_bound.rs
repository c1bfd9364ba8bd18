//! The bound on what tiny_http leaks: 5,000 connections that each send the
//! HTTP/2 prior-knowledge preface (tiny_http keeps a thread and two
//! descriptors for each, forever), sent in bursts while other clients use
//! the service. tinymon restarts in place whenever `--max-unreleased` of
//! them are stuck, so the process ends within the cap plus its normal
//! threads and descriptors; no other client sees a failed request; the PID
//! stays; the restarts are counted; SIGTERM still exits 0.
//!
//! Linux only: the guard counts the stuck connections through `TCP_INFO`.
#![cfg(target_os = "linux")]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::sample;
use tinymon_test_support::client::{self, Connection};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const CONNECTIONS: usize = 5_000;
const BURST: usize = 250;
const CAP: usize = 100;

/// Threads and open descriptors of `pid`.
fn footprint(pid: u32) -> (usize, usize, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    (field("Threads:") as usize, fds, field("VmRSS:"))
}

/// What the other clients saw.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: Mutex<Vec<String>>,
}

impl Tally {
    fn fail(&self, what: String) {
        self.failed.lock().unwrap().push(what);
    }
}

/// `/hello` over and over on keep-alive connections; a new connection only
/// when the server said `Connection: close` (as it does while draining).
fn keep_alive_loop(addr: SocketAddr, stop: &AtomicBool, tally: &Tally) {
    let mut conn: Option<Connection> = None;
    while !stop.load(Ordering::Relaxed) {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match Connection::open(addr, Duration::from_secs(10)) {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    tally.fail(format!("keep-alive connect: {e}"));
                    continue;
                }
            },
        };
        match c.request("GET", "/hello") {
            Ok(r) if r.status == 200 => {
                tally.ok.fetch_add(1, Ordering::Relaxed);
                if c.is_closed() {
                    conn = None;
                }
            }
            Ok(r) => tally.fail(format!("keep-alive /hello: {}", r.status)),
            Err(e) => {
                tally.fail(format!("keep-alive /hello: {e}"));
                conn = None;
            }
        }
    }
}

/// One request per connection: `path` over and over.
fn new_connection_loop(addr: SocketAddr, path: &str, stop: &AtomicBool, tally: &Tally) {
    let url = format!("http://{addr}{path}");
    while !stop.load(Ordering::Relaxed) {
        match client::get(&url, Duration::from_secs(10)) {
            Ok(r) if r.status == 200 => {
                tally.ok.fetch_add(1, Ordering::Relaxed);
            }
            Ok(r) => tally.fail(format!("{path}: {}", r.status)),
            Err(e) => tally.fail(format!("{path}: {e}")),
        }
    }
}

fn scrape(addr: SocketAddr) -> String {
    client::get(&format!("http://{addr}/metrics"), Duration::from_secs(10))
        .expect("scrape")
        .text()
}

#[test]
fn five_thousand_http2_prefaces_stay_bounded_and_lose_no_request() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tinymon"))
        .args(["--listen", "127.0.0.1:0", "--idle-timeout", "3"])
        .args(["--max-unreleased", &CAP.to_string()])
        .env_remove("TINYMON_LISTEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr: SocketAddr = line
        .split("listening on ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    // The rest of its log, kept for the restart lines.
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let log = log.clone();
        thread::spawn(move || {
            for l in stderr.lines().map_while(Result::ok) {
                log.lock().unwrap().push(l);
            }
        })
    };
    let start_time = |text: &str| sample(text, "process_start_time_seconds").unwrap();
    let first_start = start_time(&scrape(addr));

    // The other clients, running throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut clients = Vec::new();
    for kind in ["keep-alive", "keep-alive", "new", "slow"] {
        let (stop, tally) = (stop.clone(), tally.clone());
        clients.push(thread::spawn(move || match kind {
            "keep-alive" => keep_alive_loop(addr, &stop, &tally),
            "new" => new_connection_loop(addr, "/hello", &stop, &tally),
            // Requests in flight when a drain begins.
            _ => new_connection_loop(addr, "/work?delay_ms=300", &stop, &tally),
        }));
    }
    thread::sleep(Duration::from_secs(2));
    let normal = footprint(pid);
    eprintln!(
        "with the clients: {} threads, {} fds, RSS {} kB",
        normal.0, normal.1, normal.2
    );

    // The prefaces, in bursts; each connection closes once sent.
    let mut peak = normal;
    let began = Instant::now();
    let mut sent = 0;
    while sent < CONNECTIONS {
        for _ in 0..BURST {
            let mut s = TcpStream::connect(addr).expect("preface connect");
            s.write_all(PREFACE).expect("preface write");
            sent += 1;
        }
        let deadline = Instant::now() + Duration::from_millis(400);
        while Instant::now() < deadline {
            let f = footprint(pid);
            peak = (peak.0.max(f.0), peak.1.max(f.1), peak.2.max(f.2));
            thread::sleep(Duration::from_millis(20));
        }
    }
    eprintln!("{sent} prefaces sent in {:?}", began.elapsed());
    // The last burst's restart, then quiet.
    thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let after = footprint(pid);
    let text = scrape(addr);
    let restarts = sample(
        &text,
        "tinymon_restarts_total{reason=\"unreleased_connections\"}",
    )
    .unwrap();
    let unreleased = sample(&text, "tinymon_connections_unreleased").unwrap();
    let lines = log.lock().unwrap().clone();
    let costs: Vec<u64> = lines
        .iter()
        .filter_map(|l| l.split(" again ").nth(1))
        .filter_map(|r| r.split(" ms").next()?.parse().ok())
        .collect();
    let mut sorted = costs.clone();
    sorted.sort_unstable();
    eprintln!(
        "after: {} threads, {} fds, RSS {} kB; peak {} threads, {} fds, RSS {} kB; \
         {restarts} restarts, drain to listening again: median {:?} ms, max {:?} ms; \
         {unreleased} stuck now; {} requests answered",
        after.0,
        after.1,
        after.2,
        peak.0,
        peak.1,
        peak.2,
        sorted.get(sorted.len() / 2),
        sorted.last(),
        tally.ok.load(Ordering::Relaxed)
    );

    let failed = tally.failed.lock().unwrap().clone();
    assert!(
        failed.is_empty(),
        "{} failed requests: {failed:?}",
        failed.len()
    );
    assert!(tally.ok.load(Ordering::Relaxed) > 100);
    // Every restart is counted and logged, and each one freed what leaked.
    assert!(restarts >= (CONNECTIONS / BURST) as f64 / 2.0, "{restarts}");
    assert_eq!(costs.len() as f64, restarts, "{lines:?}");
    // exec keeps the process, so its start time (from /proc) stays; the
    // counters start again from 0, which `rate` reads as a reset.
    assert_eq!(start_time(&text), first_start);
    let hello = sample(
        &text,
        "server_handle_request_total{method=\"GET\",path=\"/hello\",type=\"http\"}",
    )
    .unwrap_or(0.0);
    assert!(
        hello < tally.ok.load(Ordering::Relaxed) as f64,
        "counters were not reset by the restarts"
    );
    // The bound: what is stuck now stays under the cap, and the process
    // holds at most the cap's threads and descriptors (two per stuck
    // connection) beyond its normal ones. Without the restarts it would hold
    // about 5,000 threads and 10,000 descriptors.
    assert!(unreleased < CAP as f64, "{unreleased}");
    assert!(
        after.0 <= normal.0 + CAP,
        "{} threads, normal {}",
        after.0,
        normal.0
    );
    assert!(
        after.1 <= normal.1 + 2 * CAP,
        "{} fds, normal {}",
        after.1,
        normal.1
    );

    // Same process, and SIGTERM still ends it cleanly.
    assert_eq!(child.id(), pid);
    // SAFETY: plain kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(6);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    reader.join().unwrap();
}
