//! RFC 9112 checks tiny_http leaves out: how a request's body is delimited,
//! `Host`, the version, and what the client said about the connection.
//!
//! tiny_http frames a body by the first `Content-Length` and ignores it when
//! `Transfer-Encoding` is present. Behind a proxy that frames the same bytes
//! differently, the rest becomes a second, smuggled request. RFC 9112 §6.3
//! says a server must reject such messages and close the connection; so a
//! request with both headers, differing or invalid lengths, or a transfer
//! coding other than a final `chunked` is answered `400` and its connection
//! closed (see [`super::closing`]) before tiny_http reads another request
//! from it.

use tiny_http::{HTTPVersion, Request};

/// Largest request body tinymon reads (and discards); larger gets 413.
pub(crate) const MAX_BODY_BYTES: u64 = 64 * 1024;

/// What the request's head says, once checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Served; `body` says whether a body follows that must be consumed.
    Ok { body: BodyFraming },
    /// Answered with this status and a close, never served.
    Reject(u16, &'static str),
}

/// How the body of an acceptable request is delimited.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(crate) enum BodyFraming {
    None,
    Length(u64),
    Chunked,
}

/// What else the head says, gathered in the same pass over the headers.
#[derive(Debug, PartialEq, Eq, Clone, Copy, Default)]
pub(crate) struct Head {
    /// `Connection: close`.
    pub close: bool,
    /// `Connection: keep-alive`.
    pub keep_alive: bool,
    /// Bytes of header names and values (the 431 bound).
    pub header_bytes: usize,
}

/// Checks the head of `request`.
pub(crate) fn check(request: &Request) -> (Admission, Head) {
    let headers = request
        .headers()
        .iter()
        .map(|h| (h.field.as_str().as_str(), h.value.as_str()));
    check_head(request.http_version(), headers)
}

/// [`check`] on the parts, for tests.
pub(crate) fn check_head<'a>(
    version: &HTTPVersion,
    headers: impl Iterator<Item = (&'a str, &'a str)>,
) -> (Admission, Head) {
    let mut wants = Head::default();
    let mut hosts = 0;
    let mut length: Option<Result<u64, ()>> = None;
    let mut chunked_last: Option<bool> = None;
    for (name, value) in headers {
        wants.header_bytes += name.len() + value.len();
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case("content-length") {
            // A list ("5, 5") or a repeat must agree on one value.
            for item in value.split(',') {
                let parsed = parse_length(item.trim());
                length = match (length, parsed) {
                    (None, p) => Some(p),
                    (Some(Ok(a)), Ok(b)) if a == b => Some(Ok(a)),
                    _ => Some(Err(())),
                };
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Codings apply in order across repeated headers; only the last
            // one delimits the body.
            for coding in value.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                chunked_last = Some(coding.eq_ignore_ascii_case("chunked"));
            }
            chunked_last.get_or_insert(false);
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                wants.close |= token.eq_ignore_ascii_case("close");
                wants.keep_alive |= token.eq_ignore_ascii_case("keep-alive");
            }
        }
    }
    let verdict = if *version != HTTPVersion(1, 1) && *version != HTTPVersion(1, 0) {
        Admission::Reject(505, "only HTTP/1.0 and HTTP/1.1 are supported\n")
    } else if length.is_some() && chunked_last.is_some() {
        Admission::Reject(400, "Content-Length and Transfer-Encoding together\n")
    } else if length == Some(Err(())) {
        Admission::Reject(400, "invalid or conflicting Content-Length\n")
    } else if chunked_last == Some(false) {
        Admission::Reject(400, "Transfer-Encoding must end with chunked\n")
    } else if *version == HTTPVersion(1, 1) && hosts != 1 {
        Admission::Reject(400, "an HTTP/1.1 request needs exactly one Host header\n")
    } else {
        let body = match (length, chunked_last) {
            (Some(Ok(0)), _) | (None, None) => BodyFraming::None,
            (Some(Ok(n)), _) => BodyFraming::Length(n),
            _ => BodyFraming::Chunked,
        };
        match body {
            BodyFraming::Length(n) if n > MAX_BODY_BYTES => {
                Admission::Reject(413, "request body too large\n")
            }
            body => Admission::Ok { body },
        }
    };
    (verdict, wants)
}

/// A Content-Length value: digits only (no sign, no spaces inside).
fn parse_length(s: &str) -> Result<u64, ()> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(());
    }
    s.parse().map_err(|_| ())
}

/// The path of a request target: an absolute-form target
/// (`http://host:port/path?q`, RFC 9112 §3.2.2) is routed by its path.
pub(crate) fn origin_form(target: &str) -> &str {
    let lower_starts = |p: &str| {
        target
            .get(..p.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(p))
    };
    let rest = if lower_starts("http://") {
        &target[7..]
    } else if lower_starts("https://") {
        &target[8..]
    } else {
        return target;
    };
    match rest.find(['/', '?']) {
        Some(at) if rest.as_bytes()[at] == b'/' => &rest[at..],
        // `http://host?q` has an empty path, which means "/".
        _ => "/",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(version: (u8, u8), headers: &[(&str, &str)]) -> Admission {
        check_head(&HTTPVersion(version.0, version.1), headers.iter().copied()).0
    }

    const HOST: (&str, &str) = ("Host", "x");

    #[test]
    fn plain_requests_pass() {
        assert_eq!(
            v((1, 1), &[HOST]),
            Admission::Ok {
                body: BodyFraming::None
            }
        );
        assert_eq!(
            v((1, 0), &[]),
            Admission::Ok {
                body: BodyFraming::None
            }
        );
        assert_eq!(
            v((1, 1), &[HOST, ("Content-Length", "12")]),
            Admission::Ok {
                body: BodyFraming::Length(12)
            }
        );
        assert_eq!(
            v(
                (1, 1),
                &[HOST, ("content-length", "5"), ("Content-Length", "5")]
            ),
            Admission::Ok {
                body: BodyFraming::Length(5)
            },
            "an identical repeat is one length"
        );
        assert_eq!(
            v((1, 1), &[HOST, ("Transfer-Encoding", "gzip, chunked")]),
            Admission::Ok {
                body: BodyFraming::Chunked
            }
        );
    }

    #[test]
    fn ambiguous_framing_is_rejected() {
        let bad = |h: &[(&str, &str)]| match v((1, 1), h) {
            Admission::Reject(400, _) => {}
            other => panic!("{h:?}: {other:?}"),
        };
        bad(&[
            HOST,
            ("Content-Length", "5"),
            ("Transfer-Encoding", "chunked"),
        ]);
        bad(&[
            HOST,
            ("Transfer-Encoding", "chunked"),
            ("Content-Length", "0"),
        ]);
        bad(&[HOST, ("Content-Length", "5"), ("Content-Length", "6")]);
        bad(&[HOST, ("Content-Length", "5, 6")]);
        bad(&[HOST, ("Content-Length", "-1")]);
        bad(&[HOST, ("Content-Length", "+5")]);
        bad(&[HOST, ("Content-Length", "5a")]);
        bad(&[HOST, ("Content-Length", "")]);
        bad(&[HOST, ("Content-Length", "99999999999999999999999")]);
        bad(&[HOST, ("Transfer-Encoding", "gzip")]);
        bad(&[HOST, ("Transfer-Encoding", "chunked, gzip")]);
        bad(&[
            HOST,
            ("Transfer-Encoding", "chunked"),
            ("Transfer-Encoding", "identity"),
        ]);
        bad(&[HOST, ("Transfer-Encoding", "")]);
        bad(&[HOST, ("Transfer-Encoding", "xchunked")]);
    }

    #[test]
    fn host_version_and_size() {
        assert!(matches!(v((1, 1), &[]), Admission::Reject(400, _)));
        assert!(matches!(
            v((1, 1), &[HOST, HOST]),
            Admission::Reject(400, _)
        ));
        assert!(matches!(v((2, 0), &[HOST]), Admission::Reject(505, _)));
        assert!(matches!(v((0, 9), &[]), Admission::Reject(505, _)));
        assert!(matches!(
            v((1, 1), &[HOST, ("Content-Length", "65537")]),
            Admission::Reject(413, _)
        ));
        assert_eq!(
            v((1, 1), &[HOST, ("Content-Length", "65536")]),
            Admission::Ok {
                body: BodyFraming::Length(65536)
            }
        );
    }

    #[test]
    fn connection_tokens() {
        let w = |value| {
            let head = check_head(&HTTPVersion(1, 0), [("Connection", value)].into_iter()).1;
            (head.close, head.keep_alive)
        };
        assert_eq!(w("keep-alive"), (false, true));
        assert_eq!(w("Keep-Alive, Upgrade"), (false, true));
        assert_eq!(w("close"), (true, false));
        assert_eq!(w("closed"), (false, false));
        let head = check_head(
            &HTTPVersion(1, 1),
            [("Host", "x"), ("Connection", "close")].into_iter(),
        )
        .1;
        assert_eq!(head.header_bytes, 4 + 1 + 10 + 5, "names and values");
    }

    #[test]
    fn absolute_form_targets_are_routed_by_path() {
        assert_eq!(origin_form("/hello?x=1"), "/hello?x=1");
        assert_eq!(origin_form("http://127.0.0.1:8080/hello"), "/hello");
        assert_eq!(origin_form("HTTP://h/work?delay_ms=1"), "/work?delay_ms=1");
        assert_eq!(origin_form("https://h"), "/");
        assert_eq!(origin_form("http://h?x"), "/");
        assert_eq!(origin_form("*"), "*");
        assert_eq!(origin_form("http:/"), "http:/");
    }
}
