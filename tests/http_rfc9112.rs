//! RFC 9112 at the socket: ambiguous framing is refused and its connection
//! closed before any byte of its body is read as a request; bodies are
//! consumed; Host, absolute-form targets, HTTP/1.0 keep-alive and
//! unsupported versions behave as the RFC says; answers while draining
//! carry `Connection: close`. Every answer goes through a strict parser.

mod common;

use std::io::Write;
use std::time::Duration;

use common::raw_http::{exchange, read_all, Exchange};
use common::{sample, Tinymon};

const WAIT: Duration = Duration::from_secs(3);

fn work_requests(t: &Tinymon) -> f64 {
    sample(
        &t.scrape(),
        "server_handle_request_total{method=\"GET\",path=\"/work\",type=\"http\"}",
    )
    .unwrap_or(0.0)
}

fn assert_refused_and_closed(e: &Exchange, status: u16, what: &str) {
    assert_eq!(e.answers.len(), 1, "{what}: {e:?}");
    let a = &e.answers[0];
    assert_eq!(a.status, status, "{what}: {e:?}");
    assert_eq!(a.header("Connection"), Some("close"), "{what}: {e:?}");
    assert!(e.closed, "{what}: connection left open: {e:?}");
}

#[test]
fn ambiguous_framing_is_refused_and_nothing_is_smuggled() {
    let t = Tinymon::start(&[]);
    let smuggled = "GET /work?delay_ms=1 HTTP/1.1\r\nHost: x\r\n\r\n";
    let cases: Vec<(&str, String)> = vec![
        (
            "Content-Length and Transfer-Encoding",
            format!(
                "POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}"
            ),
        ),
        (
            "Transfer-Encoding first",
            format!(
                "POST /hello HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: {}\r\n\r\n0\r\n\r\n{smuggled}",
                5 + smuggled.len()
            ),
        ),
        (
            "two different Content-Length",
            format!(
                "POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: {}\r\n\r\n{smuggled}",
                smuggled.len()
            ),
        ),
        (
            "a Content-Length list",
            format!("POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 0, 7\r\n\r\n{smuggled}"),
        ),
        (
            "non-numeric Content-Length",
            format!("POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n{smuggled}"),
        ),
        (
            "negative Content-Length",
            format!("POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n{smuggled}"),
        ),
        (
            "Transfer-Encoding not ending in chunked",
            format!("POST /hello HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n{smuggled}"),
        ),
        (
            "unknown Transfer-Encoding",
            format!("POST /hello HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n{smuggled}"),
        ),
    ];
    for (what, bytes) in cases {
        let e = exchange(t.addr, bytes.as_bytes(), WAIT);
        assert_refused_and_closed(&e, 400, what);
    }
    // Give a smuggled request time to be served, if one were.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(work_requests(&t), 0.0, "a smuggled /work was served");
    assert_eq!(t.get("/healthz").status, 200);
}

#[test]
fn bodies_are_consumed_bounded() {
    let t = Tinymon::start(&[]);
    // A chunked body on a route that never reads it, then a pipelined request.
    let e = exchange(
        t.addr,
        b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
          4\r\nwiki\r\n5\r\npedia\r\n0\r\n\r\n\
          GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        WAIT,
    );
    let statuses: Vec<u16> = e.answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [405, 200], "{e:?}");
    assert_eq!(e.answers[1].body, b"hello from tinymon\n");
    // A Content-Length body, larger than tiny_http buffers itself.
    let body = "b".repeat(5000);
    let e = exchange(
        t.addr,
        format!(
            "POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
        WAIT,
    );
    let statuses: Vec<u16> = e.answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [405, 200], "{e:?}");

    // Over the bound: 413 and a close, without reading it all.
    let e = exchange(
        t.addr,
        b"POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\nxx",
        WAIT,
    );
    assert_refused_and_closed(&e, 413, "huge Content-Length");
    let mut big = b"POST /hello HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..20 {
        big.extend_from_slice(b"1000\r\n");
        big.extend_from_slice(&[b'c'; 4096]);
        big.extend_from_slice(b"\r\n");
    }
    big.extend_from_slice(b"0\r\n\r\n");
    let e = exchange(t.addr, &big, WAIT);
    assert_refused_and_closed(&e, 413, "80 KiB chunked body");
    // A body cut short by the client closing: no answer is owed, and the
    // service goes on.
    let mut s = std::net::TcpStream::connect(t.addr).unwrap();
    s.write_all(b"POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\nabc")
        .unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let _ = read_all(&mut s, WAIT);
    assert_eq!(t.get("/healthz").status, 200);
}

#[test]
fn host_absolute_form_and_versions() {
    let t = Tinymon::start(&[]);
    let e = exchange(t.addr, b"GET /hello HTTP/1.1\r\n\r\n", WAIT);
    assert_refused_and_closed(&e, 400, "no Host");
    let e = exchange(
        t.addr,
        b"GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        WAIT,
    );
    assert_refused_and_closed(&e, 400, "two Host headers");

    let target = format!("http://{}/hello", t.addr);
    let e = exchange(
        t.addr,
        format!(
            "GET {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            t.addr
        )
        .as_bytes(),
        WAIT,
    );
    assert_eq!(e.answers.len(), 1, "{e:?}");
    assert_eq!(e.answers[0].status, 200, "{e:?}");
    assert_eq!(e.answers[0].body, b"hello from tinymon\n");
    let paths = t.scrape();
    assert!(
        paths.contains("path=\"/hello\""),
        "absolute form routed by path"
    );

    // HTTP/1.0 with keep-alive: honoured and announced.
    let mut s = std::net::TcpStream::connect(t.addr).unwrap();
    s.write_all(b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let e = read_all(&mut s, Duration::from_millis(500));
    assert_eq!(e.answers.len(), 1, "{e:?}");
    assert_eq!(
        e.answers[0].header("Connection"),
        Some("keep-alive"),
        "{e:?}"
    );
    assert!(!e.closed, "kept alive");
    s.write_all(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let e = read_all(&mut s, Duration::from_millis(500));
    assert_eq!(
        e.answers.len(),
        1,
        "second request on the same connection: {e:?}"
    );
    assert_eq!(e.answers[0].status, 200);
    // HTTP/1.0 without it: closed, and said so.
    let e = exchange(t.addr, b"GET /hello HTTP/1.0\r\n\r\n", WAIT);
    assert_eq!(e.answers.len(), 1, "{e:?}");
    assert_eq!(e.answers[0].header("Connection"), Some("close"));
    assert!(e.closed);

    // Unsupported versions that reach tinymon: 505 and a prompt close.
    for (what, bytes) in [
        ("HTTP/0.9 request line", &b"GET /hello HTTP/0.9\r\n\r\n"[..]),
        (
            "HTTP/1.2 request line",
            b"GET /hello HTTP/1.2\r\nHost: x\r\n\r\n",
        ),
        (
            "HTTP/5 request line",
            b"GET /hello HTTP/5\r\nHost: x\r\n\r\n",
        ),
    ] {
        let e = exchange(t.addr, bytes, WAIT);
        assert!(e.closed, "{what}: not closed within {WAIT:?}: {e:?}");
        assert!(
            e.elapsed < Duration::from_secs(1),
            "{what}: took {:?}",
            e.elapsed
        );
        assert_eq!(e.answers.len(), 1, "{what}: {e:?}");
        assert!([400, 505].contains(&e.answers[0].status), "{what}: {e:?}");
    }
    assert_eq!(t.get("/healthz").status, 200);
}

/// tiny_http 0.12 answers an `HTTP/2.0` or `HTTP/3.0` request line itself
/// and deadlocks that connection's thread doing so (see the `framing`
/// module docs); tinymon never sees the request. What tinymon can do is
/// what the guard does to any silent connection: close it at the idle
/// timeout, so the client is not left hanging.
#[test]
fn http2_request_lines_are_closed_by_the_idle_timeout() {
    let t = Tinymon::start(&["--idle-timeout", "3"]);
    for (what, bytes) in [
        (
            "HTTP/2 prior-knowledge preface",
            &b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0"[..],
        ),
        (
            "HTTP/2.0 request line",
            b"GET /hello HTTP/2.0\r\nHost: x\r\n\r\n",
        ),
    ] {
        let e = exchange(t.addr, bytes, Duration::from_secs(6));
        assert!(e.closed, "{what}: not closed: {e:?}");
        assert!(
            e.elapsed < Duration::from_millis(4500),
            "{what}: took {:?}",
            e.elapsed
        );
    }
    assert_eq!(t.get("/healthz").status, 200);
    // The threads tiny_http leaves stuck are visible, not hidden.
    std::thread::sleep(Duration::from_millis(400));
    let unreleased = sample(&t.scrape(), "tinymon_connections_unreleased").unwrap();
    assert_eq!(unreleased, 2.0, "one per HTTP/2.0 connection");
}

#[test]
fn answers_while_draining_close_their_connection() {
    let mut t = Tinymon::start(&["--workers", "2"]);
    let mut s = std::net::TcpStream::connect(t.addr).unwrap();
    s.write_all(b"GET /work?delay_ms=800 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    t.signal(libc::SIGTERM);
    let e = read_all(&mut s, WAIT);
    assert_eq!(e.answers.len(), 1, "{e:?}");
    assert_eq!(e.answers[0].status, 200, "{e:?}");
    assert_eq!(e.answers[0].header("Connection"), Some("close"), "{e:?}");
    assert!(e.closed, "{e:?}");
    assert_eq!(t.wait_exit(Duration::from_secs(5)), Some(0));
}
