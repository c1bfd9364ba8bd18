//! The two forms a series' labels are kept in, each built once when the
//! series is created, so that no scrape escapes or sizes a family's labels:
//!
//! - quoted, `a="x",b="y"`: what the Prometheus text format and OpenMetrics
//!   write between the braces (values escaped by [`super::escape`]);
//! - protobuf: the `label` fields of an `io.prometheus.client.Metric`, each
//!   a `LabelPair {name = 1, value = 2}` with its length first. A protobuf
//!   scrape copies them into the metric as they are, and since their
//!   length is known, the metric's own length is computed before it is
//!   written.

use super::escape::write_label_value;
use super::varint::{put_varint, varint_len};

/// Key of a length-delimited field `field` (wire type 2), for field numbers
/// below 16, whose key is one byte.
const fn len_key(field: u8) -> u8 {
    field << 3 | 2
}

/// `Metric.label` (field 1), `LabelPair.name` (1), `LabelPair.value` (2).
const LABEL_KEY: u8 = len_key(1);
const NAME_KEY: u8 = len_key(1);
const VALUE_KEY: u8 = len_key(2);

/// Appends `pairs` in the quoted form, `a="x",b="y"`.
pub(crate) fn put_quoted<'a>(
    buf: &mut Vec<u8>,
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    for (i, (name, value)) in pairs.into_iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(name.as_bytes());
        buf.extend_from_slice(b"=\"");
        write_label_value(buf, value);
        buf.push(b'"');
    }
}

/// Bytes of a `LabelPair`'s body.
fn pair_body_len(name: &str, value: &str) -> usize {
    2 + varint_len(name.len() as u64) + name.len() + varint_len(value.len() as u64) + value.len()
}

/// Bytes [`put_protobuf_pair`] writes for this pair.
#[inline]
pub(crate) fn protobuf_pair_len(name: &str, value: &str) -> usize {
    let body = pair_body_len(name, value);
    1 + varint_len(body as u64) + body
}

/// Appends one `LabelPair` as field 1 of the message being written (the
/// `label` field of both `Metric` and `Exemplar`).
#[inline]
pub(crate) fn put_protobuf_pair(buf: &mut Vec<u8>, name: &str, value: &str) {
    buf.push(LABEL_KEY);
    put_varint(buf, pair_body_len(name, value) as u64);
    buf.push(NAME_KEY);
    put_varint(buf, name.len() as u64);
    buf.extend_from_slice(name.as_bytes());
    buf.push(VALUE_KEY);
    put_varint(buf, value.len() as u64);
    buf.extend_from_slice(value.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_form_escapes_values() {
        let mut buf = Vec::new();
        put_quoted(&mut buf, [("a", "1"), ("b", "q\"\\\n")]);
        assert_eq!(buf, br#"a="1",b="q\"\\\n""#);
        buf.clear();
        put_quoted(&mut buf, []);
        assert!(buf.is_empty());
    }

    #[test]
    fn protobuf_pairs_have_the_length_computed_and_the_bytes_of_the_proto() {
        let long = "v".repeat(200);
        let pairs = [("a", ""), ("method", "GET"), ("path", long.as_str())];
        let mut buf = Vec::new();
        for (n, v) in pairs {
            let at = buf.len();
            put_protobuf_pair(&mut buf, n, v);
            assert_eq!(buf.len() - at, protobuf_pair_len(n, v), "{n}");
            assert!(buf.ends_with(v.as_bytes()), "{n}");
        }
        // A 200-byte value: its length (200) and the pair's (209) take two
        // varint bytes each.
        let mut head = b"\x0a\xd1\x01\x0a\x04path\x12\xc8\x01".to_vec();
        head.extend_from_slice(long.as_bytes());
        assert!(buf.ends_with(&head));
        // The bytes of `method="GET"`, by hand from metrics.proto: field 1
        // length 13, then name (field 1, 6 bytes) and value (field 2, 3).
        let mut one = Vec::new();
        put_protobuf_pair(&mut one, "method", "GET");
        assert_eq!(one, b"\x0a\x0d\x0a\x06method\x12\x03GET");
    }
}
