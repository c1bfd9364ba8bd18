//! Which exposition format a scrape gets, from its `Accept` header.
//!
//! Prometheus lists the formats it takes, best first, with q-values:
//! 2.42 sends `application/openmetrics-text;version=1.0.0,
//! application/openmetrics-text;version=0.0.1;q=0.75,
//! text/plain;version=0.0.4;q=0.5,*/*;q=0.1`. [`negotiate`] picks the
//! offered format with the highest q that tinymon writes exactly as asked
//! (ties go to the one listed first), and falls back to the text format
//! 0.0.4 for anything else: no header, a header naming nothing we write, or
//! one that does not parse. It never fails, and it allocates nothing.

/// An exposition format tinymon writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The Prometheus text format, version 0.0.4.
    Text,
    /// OpenMetrics 1.0.0 text.
    OpenMetrics,
    /// Delimited protobuf `io.prometheus.client.MetricFamily` messages.
    Protobuf,
}

impl Format {
    /// The Content-Type of an answer in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => super::CONTENT_TYPE,
            Format::OpenMetrics => super::OPENMETRICS_CONTENT_TYPE,
            Format::Protobuf => super::PROTOBUF_CONTENT_TYPE,
        }
    }
}

/// The format to answer a request whose `Accept` header is `accept`.
///
/// ```
/// use tinymon::encode::{negotiate, Format};
/// let prometheus_2_42 = "application/openmetrics-text;version=1.0.0,\
///     application/openmetrics-text;version=0.0.1;q=0.75,\
///     text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
/// assert_eq!(negotiate(Some(prometheus_2_42)), Format::OpenMetrics);
/// assert_eq!(negotiate(Some("text/plain")), Format::Text);
/// assert_eq!(negotiate(None), Format::Text);
/// assert_eq!(negotiate(Some("image/png, ;;;=")), Format::Text);
/// ```
pub fn negotiate(accept: Option<&str>) -> Format {
    let mut best = Format::Text;
    // Thousandths, so q-values compare exactly; 0 means "not acceptable".
    let mut best_q = 0u16;
    // Bytes, not `str` patterns: the header is ASCII when it is valid, and
    // byte loops are a fraction of the code.
    for range in accept.unwrap_or("").as_bytes().split(|&b| b == b',') {
        if let Some((format, q)) = offer(range) {
            if q > best_q {
                best = format;
                best_q = q;
            }
        }
    }
    best
}

/// One media range: the format it asks for and its q in thousandths, or
/// `None` when it names nothing tinymon writes or does not parse.
fn offer(range: &[u8]) -> Option<(Format, u16)> {
    let mut parts = range.split(|&b| b == b';');
    let media = parts.next()?.trim_ascii();
    let (mut version, mut q) = (None, 1000);
    let (mut proto, mut encoding) = (None, None);
    for param in parts {
        let eq = param.iter().position(|&b| b == b'=')?;
        let key = param[..eq].trim_ascii();
        let value = unquote(param[eq + 1..].trim_ascii());
        if key.eq_ignore_ascii_case(b"q") {
            q = parse_q(value)?;
        } else if key.eq_ignore_ascii_case(b"version") {
            version = Some(value);
        } else if key.eq_ignore_ascii_case(b"proto") {
            proto = Some(value);
        } else if key.eq_ignore_ascii_case(b"encoding") {
            encoding = Some(value);
        }
        // charset, escaping: every name tinymon writes is valid in every
        // escaping scheme.
    }
    let format = if media.eq_ignore_ascii_case(b"application/openmetrics-text") {
        match version {
            None | Some(b"1.0.0") => Format::OpenMetrics,
            _ => return None,
        }
    } else if media.eq_ignore_ascii_case(b"text/plain") {
        match version {
            None | Some(b"0.0.4") => Format::Text,
            _ => return None,
        }
    } else if media.eq_ignore_ascii_case(b"application/vnd.google.protobuf") {
        // Only the delimited MetricFamily stream is written.
        match (proto, encoding) {
            (Some(b"io.prometheus.client.MetricFamily"), Some(b"delimited")) => Format::Protobuf,
            _ => return None,
        }
    } else if media == b"*/*" || media.eq_ignore_ascii_case(b"text/*") {
        Format::Text
    } else {
        return None;
    };
    Some((format, q))
}

/// `value` without the double quotes around it.
fn unquote(value: &[u8]) -> &[u8] {
    let start = value.iter().position(|&b| b != b'"').unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|&b| b != b'"')
        .map_or(start, |i| i + 1);
    &value[start..end]
}

/// `0`, `0.5`, `1.000` … as thousandths (RFC 9110: at most three decimals).
fn parse_q(value: &[u8]) -> Option<u16> {
    let (whole, frac) = match value.iter().position(|&b| b == b'.') {
        Some(dot) => (&value[..dot], &value[dot + 1..]),
        None => (value, &[][..]),
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let frac_value = (frac.iter().chain(std::iter::repeat(&b'0')).take(3))
        .fold(0u16, |n, &b| n * 10 + u16::from(b - b'0'));
    match whole {
        b"0" => Some(frac_value),
        b"1" if frac_value == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_prometheus_sends() {
        let v2 = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(negotiate(Some(v2)), Format::OpenMetrics);
        let v2_native = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(negotiate(Some(v2_native)), Format::Protobuf);
        assert_eq!(
            negotiate(Some("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text")),
            Format::Text
        );
        assert_eq!(
            negotiate(Some("application/vnd.google.protobuf")),
            Format::Text
        );
        let v3 = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";
        assert_eq!(negotiate(Some(v3)), Format::OpenMetrics);
        let text_first = "text/plain;version=0.0.4;q=0.9,application/openmetrics-text;q=0.5";
        assert_eq!(negotiate(Some(text_first)), Format::Text);
    }

    #[test]
    fn q_values_and_ties() {
        assert_eq!(
            negotiate(Some(
                "text/plain;q=0.5, application/openmetrics-text;q=0.501"
            )),
            Format::OpenMetrics
        );
        assert_eq!(
            negotiate(Some("application/openmetrics-text;q=0.5, text/plain;q=0.5")),
            Format::OpenMetrics
        );
        assert_eq!(
            negotiate(Some("text/plain;q=0.5, application/openmetrics-text;q=0.5")),
            Format::Text
        );
        assert_eq!(
            negotiate(Some("application/openmetrics-text;q=0")),
            Format::Text
        );
        assert_eq!(
            negotiate(Some("APPLICATION/OpenMetrics-Text; Q=1.000")),
            Format::OpenMetrics
        );
    }

    #[test]
    fn anything_else_falls_back_to_text() {
        for accept in [
            "",
            "image/png",
            "application/openmetrics-text;version=0.0.1",
            "application/openmetrics-text;version=2.0.0",
            "application/openmetrics-text;q=1.5",
            "application/openmetrics-text;q=0.1234",
            "application/openmetrics-text;q=abc",
            "application/openmetrics-text;q",
            "application/openmetrics-text;;",
            ",,,;;;===",
            "\u{0}\u{7f}é",
        ] {
            assert_eq!(negotiate(Some(accept)), Format::Text, "{accept:?}");
        }
    }
}
