//! Raw HTTP/1.1 over a TCP socket, with every answer checked by a strict
//! response parser (`httparse`): a status line, well-formed headers, exactly
//! one Content-Length, and a body of exactly that length.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What came back on one connection.
#[derive(Debug)]
pub struct Exchange {
    pub answers: Vec<Answer>,
    /// The server closed the connection (read returned end-of-file).
    pub closed: bool,
    /// How long until the server closed, or the wait ended.
    pub elapsed: Duration,
}

/// Sends `bytes` on a new connection and reads until the server closes it
/// or `wait` passes. Panics if what came back is not a sequence of complete,
/// well-formed responses.
pub fn exchange(addr: SocketAddr, bytes: &[u8], wait: Duration) -> Exchange {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(bytes).unwrap();
    read_all(&mut s, wait)
}

/// Reads from `s` until it closes or `wait` passes, then parses strictly.
pub fn read_all(s: &mut TcpStream, wait: Duration) -> Exchange {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut closed = false;
    let mut buf = [0u8; 8192];
    while start.elapsed() < wait {
        s.set_read_timeout(Some((wait - start.elapsed()).max(Duration::from_millis(1))))
            .unwrap();
        match s.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                closed = true;
                break;
            }
            Err(_) => break,
        }
    }
    Exchange {
        answers: parse_all(&got),
        closed,
        elapsed: start.elapsed(),
    }
}

/// Parses back-to-back responses; panics on anything malformed or cut short.
pub fn parse_all(mut bytes: &[u8]) -> Vec<Answer> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut r = httparse::Response::new(&mut headers);
        let head = match r.parse(bytes) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                panic!(
                    "incomplete response head: {:?}",
                    String::from_utf8_lossy(bytes)
                )
            }
            Err(e) => panic!(
                "malformed response ({e}): {:?}",
                String::from_utf8_lossy(bytes)
            ),
        };
        assert_eq!(r.version, Some(1), "HTTP/1.1 answers");
        let status = r.code.unwrap();
        let headers: Vec<(String, String)> = r
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8(h.value.to_vec()).expect("ASCII header"),
                )
            })
            .collect();
        let lengths: Vec<&(String, String)> = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .collect();
        assert_eq!(lengths.len(), 1, "exactly one Content-Length: {headers:?}");
        assert!(
            !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding")),
            "{headers:?}"
        );
        let len: usize = lengths[0].1.parse().expect("numeric Content-Length");
        let body = bytes
            .get(head..head + len)
            .unwrap_or_else(|| panic!("body cut short: {:?}", String::from_utf8_lossy(bytes)));
        out.push(Answer {
            status,
            headers,
            body: body.to_vec(),
        });
        bytes = &bytes[head + len..];
    }
    out
}
