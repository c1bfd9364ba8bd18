//! Instructions per `/hello` request, counted by callgrind: repeatable on a
//! shared machine, where times are not.
//!
//! Three servers answer `GET /hello` with the same 19-byte body:
//!
//! - `bare`: a tiny_http loop and `Request::respond`, no metrics;
//! - `red`: the same loop with [`RedMetrics::serve`] around the handler, so
//!   the difference to `bare` is the RED instrumentation alone (request
//!   counter with exemplar slot, in-flight gauge, status gauge, latency
//!   histogram with classic and native buckets, two clock reads);
//! - `service`: tinymon's own pipeline (`Service` on `Server`): routing,
//!   the RFC 9112 framing checks, the connection guard, the RED metrics and
//!   its own response writer.
//!
//! Each runs under `valgrind --tool=callgrind` twice, for 500 and 4,500
//! requests on one keep-alive connection; the difference of the two totals
//! over 4,000 is the cost of one request, with start-up and shutdown
//! cancelled out. Every thread is counted (the guard's 100 ms ticks in
//! `service` too).
//!
//! Threads interleave differently from run to run: valgrind runs one
//! thread at a time, and where it switches decides how often a thread
//! finds one of tiny_http's mutexes held and spins on it. That moves a
//! run by up to ~300 instructions a request, as much as the instrumentation
//! itself, so each mode runs five times and the table gives the median and
//! the range.
//!
//! `make bench-requests` runs it (needs valgrind).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::sync::Arc;

#[path = "fixtures/callgrind.rs"]
mod callgrind;

use tiny_http::{Header, Method, Request, Response};
use tinymon::http::{RedMetrics, Reply, Server, ServerSettings, Service};
use tinymon::metrics::Registry;

const HELLO: &str = "hello from tinymon\n";
const FEW: u64 = 500;
const MANY: u64 = 4_500;
const MODES: [&str; 3] = ["bare", "red", "service"];
/// Runs of each mode; the table reports their median.
const RUNS: usize = 5;

fn hello<'a>(_: &'a (), _: &Request) -> Reply<'a> {
    Reply::text(200, HELLO)
}

fn hello_response() -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_string(HELLO).with_header(
        Header::from_bytes("Content-Type", "text/plain; charset=utf-8").expect("valid header"),
    )
}

/// Serves until standard input closes, printing the address first.
fn serve(mode: &str) {
    let stop_on_eof = || {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    };
    match mode {
        "service" => {
            let service = Service::new(Arc::new(Registry::new()), ())
                .expect("service")
                .route(Method::Get, "/hello", hello)
                .expect("route");
            let settings = ServerSettings {
                listen: "127.0.0.1:0".parse().unwrap(),
                workers: 1,
                ..ServerSettings::default()
            };
            let server = Server::start(&settings, Arc::new(service)).expect("start");
            println!("{}", server.addr());
            stop_on_eof();
            server.shutdown_handle().shutdown();
            server.wait().expect("clean stop");
        }
        _ => {
            let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind"));
            println!("{}", server.server_addr().to_ip().expect("TCP"));
            let registry = Registry::new();
            let red = (mode == "red").then(|| RedMetrics::register(&registry).expect("register"));
            let worker = {
                let server = server.clone();
                std::thread::spawn(move || {
                    while let Ok(request) = server.recv() {
                        let _ = match &red {
                            Some(red) => red.serve(request, "/hello", |_| hello_response()),
                            None => request.respond(hello_response()),
                        };
                    }
                })
            };
            stop_on_eof();
            server.unblock();
            worker.join().expect("worker");
        }
    }
}

/// Total instructions of one run of `mode` that answers `requests`.
fn instructions(mode: &str, requests: u64) -> u64 {
    let out = callgrind::out_file(mode);
    let mut child = callgrind::command(&out)
        .args(["--serve", mode])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("valgrind (Debian package valgrind)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let mut conn = TcpStream::connect(line.trim()).expect("connect");
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    for _ in 0..requests {
        conn.write_all(b"GET /hello HTTP/1.1\r\nHost: bench\r\n\r\n")
            .unwrap();
        let mut length = 0;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            if header == "\r\n" {
                break;
            }
            if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        assert_eq!(body, HELLO.as_bytes(), "{mode}");
    }
    drop((conn, reader));
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success(), "{mode} under valgrind");
    callgrind::total(&out)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--serve") {
        serve(&args[i + 1]);
        return;
    }
    // `cargo test --all-targets` runs bench binaries without `--bench`;
    // this one needs valgrind and a minute, so it runs only as a bench.
    if !args.iter().any(|a| a == "--bench") {
        println!("benches/request_cost.rs: run with `make bench-requests`");
        return;
    }
    println!(
        "| server | instructions per /hello request (median of {RUNS}) | range | against bare |"
    );
    println!("|---|---|---|---|");
    let mut bare = 0.0;
    for mode in MODES {
        let mut per: Vec<f64> = (0..RUNS)
            .map(|_| {
                let (few, many) = (instructions(mode, FEW), instructions(mode, MANY));
                (many as f64 - few as f64) / (MANY - FEW) as f64
            })
            .collect();
        per.sort_by(f64::total_cmp);
        let median = per[RUNS / 2];
        if mode == "bare" {
            bare = median;
        }
        println!(
            "| {mode} | {median:.0} | {:.0}–{:.0} | {:+.1} % |",
            per[0],
            per[RUNS - 1],
            (median / bare - 1.0) * 100.0
        );
    }
}
