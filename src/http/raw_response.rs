//! Writing an answer on the connection ourselves.
//!
//! tiny_http's `Response` silently drops a `Connection` header, so through it
//! a server can neither say "this connection closes now" nor confirm an
//! HTTP/1.0 keep-alive. So tinymon takes the connection's writer from the
//! request (`Request::into_writer`, which still sends `100 Continue` when a
//! client asked for it and keeps answers in request order) and writes the
//! status line, headers and body itself. Nothing a client sends is copied
//! into the head, so no client can split a response. The head is built in a
//! buffer each worker reuses, and `Date` is formatted once a second, so an
//! answer allocates nothing.

use std::io::{self, Write};

use crate::wire::number::write_u64;
use std::time::{SystemTime, UNIX_EPOCH};

/// What the answer says about the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Persistence {
    /// HTTP/1.1's default; no header needed.
    KeepAlive,
    /// `Connection: keep-alive`, for an HTTP/1.0 client that asked for it.
    AnnounceKeepAlive,
    /// `Connection: close`: nothing more is read from this connection.
    Close,
}

/// One answer, ready to write.
pub(crate) struct Answer<'a> {
    pub status: u16,
    pub content_type: &'static str,
    /// At most one extra header (`Allow`, `WWW-Authenticate`).
    pub extra: Option<(&'static str, &'a str)>,
    /// Fixed headers (the page's security headers).
    pub fixed: &'static [(&'static str, &'static str)],
    pub body: &'a [u8],
    /// HEAD: the headers of the GET answer, no body.
    pub head_only: bool,
    pub persistence: Persistence,
}

/// `Date` in IMF-fixdate, formatted at most once a second.
#[derive(Default)]
pub(crate) struct DateCache {
    second: u64,
    text: [u8; 29],
}

impl DateCache {
    fn get(&mut self, now: SystemTime) -> &[u8] {
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if secs != self.second || self.text[0] == 0 {
            self.second = secs;
            self.text = imf_fixdate(secs);
        }
        &self.text
    }
}

/// Writes `answer` to `out` as one HTTP/1.1 message and flushes it. `head`
/// is scratch space for the status line and headers.
pub(crate) fn write_answer(
    out: &mut dyn Write,
    head: &mut Vec<u8>,
    date: &mut DateCache,
    answer: &Answer<'_>,
) -> io::Result<()> {
    head.clear();
    head.extend_from_slice(b"HTTP/1.1 ");
    write_u64(head, u64::from(answer.status));
    head.push(b' ');
    head.extend_from_slice(reason(answer.status).as_bytes());
    head.extend_from_slice(b"\r\nServer: tinymon\r\nDate: ");
    head.extend_from_slice(date.get(SystemTime::now()));
    head.extend_from_slice(b"\r\nContent-Type: ");
    let content_type = if has_line_break(answer.content_type) {
        "application/octet-stream"
    } else {
        answer.content_type
    };
    head.extend_from_slice(content_type.as_bytes());
    // 204 and 304 never carry a body (RFC 9110 15.3.5, 15.4.5), so they
    // have no Content-Length either.
    let bodiless = matches!(answer.status, 204 | 304);
    if !bodiless {
        head.extend_from_slice(b"\r\nContent-Length: ");
        write_u64(head, answer.body.len() as u64);
    }
    for (name, value) in answer.extra.iter().chain(answer.fixed) {
        // Handlers supply these; a CR or LF would start a header or a body
        // of the client's choosing, so such a header is left out.
        if has_line_break(name) || has_line_break(value) {
            continue;
        }
        head.extend_from_slice(b"\r\n");
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
    }
    match answer.persistence {
        Persistence::KeepAlive => {}
        Persistence::AnnounceKeepAlive => head.extend_from_slice(b"\r\nConnection: keep-alive"),
        Persistence::Close => head.extend_from_slice(b"\r\nConnection: close"),
    }
    head.extend_from_slice(b"\r\n\r\n");
    out.write_all(head)?;
    if !answer.head_only && !bodiless {
        out.write_all(answer.body)?;
    }
    out.flush()
}

fn has_line_break(s: &str) -> bool {
    s.bytes().any(|b| b == b'\r' || b == b'\n')
}

/// Reason phrases of common statuses; others get an empty one, which
/// RFC 9112 allows (clients go by the code).
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        410 => "Gone",
        413 => "Content Too Large",
        414 => "URI Too Long",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// `secs` since the epoch as `Sun, 06 Nov 1994 08:49:37 GMT`.
fn imf_fixdate(secs: u64) -> [u8; 29] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    let mut out = [0u8; 29];
    let two = |n: u64| [b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8];
    out[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    out[3..5].copy_from_slice(b", ");
    out[5..7].copy_from_slice(&two(day as u64));
    out[7] = b' ';
    out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    out[11] = b' ';
    let y = year as u64;
    out[12..14].copy_from_slice(&two(y / 100));
    out[14..16].copy_from_slice(&two(y));
    out[16] = b' ';
    out[17..19].copy_from_slice(&two(rem / 3600));
    out[19] = b':';
    out[20..22].copy_from_slice(&two(rem / 60 % 60));
    out[22] = b':';
    out[23..25].copy_from_slice(&two(rem % 60));
    out[25..29].copy_from_slice(b" GMT");
    out
}

/// Year, month (1-12) and day (1-31) of a day count since 1970-01-01, in
/// the proleptic Gregorian calendar (Howard Hinnant's civil_from_days).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_imf_fixdate() {
        let s = |secs| String::from_utf8(imf_fixdate(secs).to_vec()).unwrap();
        assert_eq!(s(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(s(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(s(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(s(1_795_600_000), "Wed, 25 Nov 2026 09:46:40 GMT");
        assert_eq!(s(4_102_444_799), "Thu, 31 Dec 2099 23:59:59 GMT");
    }

    fn written(answer: &Answer<'_>) -> String {
        let mut out = Vec::new();
        write_answer(&mut out, &mut Vec::new(), &mut DateCache::default(), answer).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn no_content_and_not_modified_carry_no_body() {
        for status in [204, 304] {
            let text = written(&Answer {
                status,
                content_type: "text/plain; charset=utf-8",
                extra: None,
                fixed: &[],
                body: b"ignored",
                head_only: false,
                persistence: Persistence::KeepAlive,
            });
            assert!(
                !text.contains("Content-Length") && text.ends_with("\r\n\r\n"),
                "{text}"
            );
        }
    }

    #[test]
    fn line_breaks_in_handler_headers_inject_nothing() {
        let text = written(&Answer {
            status: 200,
            content_type: "text/plain\r\nX-Evil: 1",
            extra: Some(("X-Id", "a\r\nSet-Cookie: b")),
            fixed: &[("X-Fine", "yes"), ("X-Bad\n", "no")],
            body: b"ok",
            head_only: false,
            persistence: Persistence::KeepAlive,
        });
        assert!(!text.contains("Evil") && !text.contains("Set-Cookie") && !text.contains("X-Bad"));
        assert!(text.contains("\r\nContent-Type: application/octet-stream\r\n"));
        assert!(text.contains("\r\nX-Fine: yes\r\n"));
    }

    #[test]
    fn heads_say_length_type_and_persistence() {
        let mut a = Answer {
            status: 405,
            content_type: "text/plain; charset=utf-8",
            extra: Some(("Allow", "GET, HEAD")),
            fixed: &[("X-Content-Type-Options", "nosniff")],
            body: b"method not allowed\n",
            head_only: false,
            persistence: Persistence::Close,
        };
        let text = written(&a);
        assert!(text.starts_with("HTTP/1.1 405 Method Not Allowed\r\nServer: tinymon\r\nDate: "));
        assert!(text.ends_with(
            " GMT\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 19\r\n\
             Allow: GET, HEAD\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n\
             method not allowed\n"
        ));
        a.head_only = true;
        a.persistence = Persistence::AnnounceKeepAlive;
        let text = written(&a);
        assert!(text.ends_with(
            "Allow: GET, HEAD\r\nX-Content-Type-Options: nosniff\r\nConnection: keep-alive\r\n\r\n"
        ));
        a.persistence = Persistence::KeepAlive;
        a.extra = None;
        a.fixed = &[];
        assert!(!written(&a).contains("Connection"));
    }
}
