//! The connection guard under churn: many short connections open and close
//! while the guard sheds silent connections over the limit and times out
//! idle ones. The guard acts only through duplicates of the sockets it
//! inspected and never writes, so every answer a client gets must be
//! complete and uncorrupted (checked by a strict parser), and a client that
//! gets no answer sees a clean close.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::raw_http::read_all;
use common::{sample, Tinymon};

#[test]
fn churn_while_the_guard_sheds_and_times_out() {
    let t = Tinymon::start(&[
        "--max-connections",
        "40",
        "--idle-timeout",
        "3",
        "--workers",
        "4",
    ]);
    let addr = t.addr;
    let stop = AtomicBool::new(false);
    let answered = AtomicU64::new(0);
    let refused = AtomicU64::new(0);
    let closed_unanswered = AtomicU64::new(0);
    let run_for = Duration::from_secs(5);
    std::thread::scope(|s| {
        // Silent connections, recycled, keep the server over its limit.
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let held: Vec<TcpStream> = (0..60)
                    .filter_map(|_| TcpStream::connect(addr).ok())
                    .collect();
                std::thread::sleep(Duration::from_millis(350));
                drop(held);
            }
        });
        // Keep-alive clients that go idle and must be timed out.
        s.spawn(|| {
            let mut c = TcpStream::connect(addr).unwrap();
            c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            let e = read_all(&mut c, Duration::from_millis(4500));
            assert!(e.answers.len() <= 1, "{e:?}");
            assert!(e.closed, "idle connection not closed: {e:?}");
        });
        // Short connections, one request each.
        for _ in 0..4 {
            s.spawn(|| {
                let start = Instant::now();
                while start.elapsed() < run_for {
                    let Ok(mut c) = TcpStream::connect(addr) else {
                        continue;
                    };
                    if c.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                        .is_err()
                    {
                        closed_unanswered.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let e = read_all(&mut c, Duration::from_secs(4));
                    match e.answers.as_slice() {
                        [] => {
                            assert!(e.closed, "neither answered nor closed: {e:?}");
                            closed_unanswered.fetch_add(1, Ordering::Relaxed);
                        }
                        [a] if a.status == 200 => {
                            assert_eq!(a.body, b"hello from tinymon\n");
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        [a] if a.status == 503 => {
                            assert_eq!(a.body, b"too many connections, try again later\n");
                            assert_eq!(a.header("Connection"), Some("close"));
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                        other => panic!("unexpected answers {other:?}"),
                    }
                }
            });
        }
        std::thread::sleep(run_for);
        stop.store(true, Ordering::Relaxed);
    });
    let (ok, no, gone) = (
        answered.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
        closed_unanswered.load(Ordering::Relaxed),
    );
    eprintln!("answered {ok}, refused with 503 {no}, closed unanswered {gone}");
    assert!(ok + no >= 200, "too few answers: {ok} + {no}");
    assert!(
        gone * 10 <= ok + no,
        "too many connections closed unanswered: {gone}"
    );
    std::thread::sleep(Duration::from_millis(500));
    let text = t.scrape();
    let shed = sample(&text, "tinymon_connections_closed_total{reason=\"shed\"}").unwrap();
    let idle = sample(&text, "tinymon_connections_closed_total{reason=\"idle\"}").unwrap();
    assert!(shed > 0.0, "the guard never shed");
    assert!(idle > 0.0, "the guard never timed out a connection");
    assert_eq!(t.get("/healthz").status, 200);
}
