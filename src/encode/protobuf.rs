//! The Prometheus protobuf exposition: length-delimited
//! `io.prometheus.client.MetricFamily` messages (client_model's
//! metrics.proto), written by hand like the text formats: no generated
//! code, no runtime crate.
//!
//! The stream is one message per family, each preceded by its length as a
//! varint. A message is a run of fields, each a key (`field number << 3 |
//! wire type`) and a value: a varint (wire type 0), a double as 8
//! little-endian bytes (1), or a varint length and that many bytes for
//! strings and nested messages (2). Every message is written once, in
//! place. A series' label pairs are copied from the form its label set
//! built when the series was created (`crate::wire::label_forms`), so a
//! counter's or gauge's metric has its length computed before its first
//! byte, as have spans. Any other nested message reserves one byte for its
//! length, and when its body turns out to be 128 bytes or longer, the body
//! moves up by the extra bytes the varint needs. Small messages (buckets, values,
//! exemplars) never move, and a large one (a histogram's metric, a family)
//! moves once, instead of being copied into each parent in turn. The
//! output buffer is reused, so a scrape allocates nothing once it grew.
//!
//! Classic histograms list their finite buckets only, as client_golang
//! does; `sample_count` stands for the `+Inf` bucket. A histogram with
//! native buckets writes them in the same message, beside the classic
//! ones: schema, zero bucket, and per sign the non-empty buckets as spans
//! (runs of consecutive keys; the first span's offset is its first key,
//! later ones the gap after the previous run) and deltas (each count minus
//! the one before, zigzag-encoded, packed). One with no native observation
//! yet still writes a no-op span, so readers see it is native.

use crate::metrics::{
    Exemplar, FamilyDesc, HistogramReading, Labels, MetricType, Registry, Value, Visitor,
};
use crate::wire::label_forms::{protobuf_pair_len, put_protobuf_pair};
use crate::wire::varint::{put_varint, varint_len};

/// The Content-Type of a protobuf scrape.
pub const PROTOBUF_CONTENT_TYPE: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

// Field numbers of metrics.proto.
const FAMILY_NAME: u32 = 1;
const FAMILY_HELP: u32 = 2;
const FAMILY_TYPE: u32 = 3;
const FAMILY_METRIC: u32 = 4;
const METRIC_GAUGE: u32 = 2;
const METRIC_COUNTER: u32 = 3;
const METRIC_HISTOGRAM: u32 = 7;
const VALUE: u32 = 1;
const COUNTER_EXEMPLAR: u32 = 2;
const HISTOGRAM_COUNT: u32 = 1;
const HISTOGRAM_SUM: u32 = 2;
const HISTOGRAM_BUCKET: u32 = 3;
const BUCKET_COUNT: u32 = 1;
const BUCKET_BOUND: u32 = 2;
const BUCKET_EXEMPLAR: u32 = 3;
const HISTOGRAM_SCHEMA: u32 = 5;
const HISTOGRAM_ZERO_THRESHOLD: u32 = 6;
const HISTOGRAM_ZERO_COUNT: u32 = 7;
const HISTOGRAM_NEGATIVE_SPAN: u32 = 9;
const HISTOGRAM_NEGATIVE_DELTA: u32 = 10;
const HISTOGRAM_POSITIVE_SPAN: u32 = 12;
const HISTOGRAM_POSITIVE_DELTA: u32 = 13;
const SPAN_OFFSET: u32 = 1;
const SPAN_LENGTH: u32 = 2;
const EXEMPLAR_VALUE: u32 = 2;
const EXEMPLAR_TIMESTAMP: u32 = 3;
const SECONDS: u32 = 1;
const NANOS: u32 = 2;

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;

/// A reusable buffer that a registry encodes into as protobuf.
///
/// ```
/// use tinymon::encode::ProtobufEncoder;
/// use tinymon::metrics::Registry;
///
/// let registry = Registry::new();
/// registry.gauge("up_gauge", "Up.").unwrap().set(1.0);
/// let bytes = ProtobufEncoder::new().encode(&registry).to_vec();
/// // One MetricFamily: its length, then field 1 (the name).
/// assert_eq!(bytes[1], 1 << 3 | 2);
/// assert_eq!(&bytes[3..11], b"up_gauge");
/// ```
#[derive(Debug, Default)]
pub struct ProtobufEncoder {
    buf: Vec<u8>,
    /// A sign's packed native-bucket deltas, whose length precedes them.
    deltas: Vec<u8>,
}

impl ProtobufEncoder {
    /// An empty encoder; its buffers grow to the registry's size on first use.
    pub fn new() -> Self {
        Self::default()
    }

    /// Encodes every family of `registry` and returns the bytes.
    pub fn encode(&mut self, registry: &Registry) -> &[u8] {
        self.buf.clear();
        let mut writer = Writer {
            out: &mut self.buf,
            deltas: &mut self.deltas,
            kind: MetricType::Gauge,
            family: None,
        };
        registry.read(&mut writer);
        writer.finish_family();
        &self.buf
    }

    /// The bytes of the last encode.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }
}

fn put_key(buf: &mut Vec<u8>, field: u32, wire: u32) {
    put_varint(buf, u64::from(field << 3 | wire));
}

fn put_bytes(buf: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(buf, field, LEN);
    put_varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

/// Bytes of a length-delimited field with a one-byte key.
fn bytes_field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

fn put_double(buf: &mut Vec<u8>, field: u32, v: f64) {
    put_key(buf, field, FIXED64);
    buf.extend_from_slice(&v.to_le_bytes());
}

fn put_uint(buf: &mut Vec<u8>, field: u32, n: u64) {
    put_key(buf, field, VARINT);
    put_varint(buf, n);
}

/// Starts a nested message as field `field`: its key and one byte held for
/// its length. Returns where that byte is, for [`end`].
fn begin(buf: &mut Vec<u8>, field: u32) -> usize {
    put_key(buf, field, LEN);
    buf.push(0);
    buf.len() - 1
}

/// Writes the length of the message begun at `mark`, moving its body up
/// when the length needs more than the one byte held.
fn end(buf: &mut Vec<u8>, mark: usize) {
    let body = buf.len() - mark - 1;
    let extra = varint_len(body as u64) - 1;
    if extra > 0 {
        buf.resize(buf.len() + extra, 0);
        buf.copy_within(mark + 1..mark + 1 + body, mark + 1 + extra);
    }
    let mut n = body as u64;
    for b in &mut buf[mark..=mark + extra] {
        *b = n as u8 & 0x7f;
        n >>= 7;
    }
    for b in &mut buf[mark..mark + extra] {
        *b |= 0x80;
    }
}

/// Zigzag: the encoding of `sint32`/`sint64`, small for small magnitudes.
fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

/// A `BucketSpan` as field `field` of `out`.
fn put_span(out: &mut Vec<u8>, field: u32, offset: i32, length: u32) {
    let offset = zigzag(i64::from(offset));
    let length = u64::from(length);
    put_key(out, field, LEN);
    put_varint(out, (2 + varint_len(offset) + varint_len(length)) as u64);
    put_uint(out, SPAN_OFFSET, offset);
    put_uint(out, SPAN_LENGTH, length);
}

/// One sign's native buckets: spans, then the packed deltas. Returns
/// whether there was any bucket.
fn put_native_side(
    out: &mut Vec<u8>,
    (span_field, delta_field): (u32, u32),
    buckets: impl Iterator<Item = (i32, u64)>,
    deltas: &mut Vec<u8>,
) -> bool {
    deltas.clear();
    // The key after the last span written, once there is one.
    let mut spans_end: Option<i32> = None;
    let mut flush = |out: &mut Vec<u8>, start: i32, len: u32| {
        let offset = spans_end.map_or(start, |end| start - end);
        put_span(out, span_field, offset, len);
        spans_end = Some(start + len as i32);
    };
    let mut run: Option<(i32, u32)> = None;
    let mut previous = 0u64;
    for (key, count) in buckets {
        run = match run {
            Some((start, len)) if key == start + len as i32 => Some((start, len + 1)),
            Some((start, len)) => {
                flush(out, start, len);
                Some((key, 1))
            }
            None => Some((key, 1)),
        };
        put_varint(deltas, zigzag((count as i64).wrapping_sub(previous as i64)));
        previous = count;
    }
    let Some((start, len)) = run else {
        return false;
    };
    flush(out, start, len);
    put_bytes(out, delta_field, deltas);
    true
}

/// An `Exemplar` with `trace_id` and `span_id` labels as field `field`.
fn put_exemplar(out: &mut Vec<u8>, field: u32, e: &Exemplar) {
    let mark = begin(out, field);
    let trace = e.trace.trace_id_hex();
    let span = e.trace.span_id_hex();
    // `Exemplar.label` is field 1, as `Metric.label` is.
    put_protobuf_pair(out, "trace_id", std::str::from_utf8(&trace).unwrap_or(""));
    put_protobuf_pair(out, "span_id", std::str::from_utf8(&span).unwrap_or(""));
    put_double(out, EXEMPLAR_VALUE, e.value);
    let at = begin(out, EXEMPLAR_TIMESTAMP);
    put_uint(out, SECONDS, e.timestamp_ms / 1000);
    put_uint(out, NANOS, e.timestamp_ms % 1000 * 1_000_000);
    end(out, at);
    end(out, mark);
}

struct Writer<'e> {
    out: &'e mut Vec<u8>,
    deltas: &'e mut Vec<u8>,
    kind: MetricType,
    /// Where the open family's length goes, while one is open.
    family: Option<usize>,
}

impl Writer<'_> {
    /// Writes the open family's length before it.
    fn finish_family(&mut self) {
        if let Some(mark) = self.family.take() {
            end(self.out, mark);
        }
    }

    /// Starts a `Metric` with its labels; returns its mark for [`end`].
    fn start_metric(&mut self, labels: &Labels<'_>) -> usize {
        let mark = begin(self.out, FAMILY_METRIC);
        put_labels(self.out, labels);
        mark
    }

    fn value(&mut self, labels: &Labels<'_>, value: Value, exemplar: Option<&Exemplar>) {
        let counter = self.kind == MetricType::Counter;
        if exemplar.is_none() {
            // The common case, a counter or gauge alone: every length is
            // known before the first byte, so the metric is written in one
            // pass into room reserved once.
            return put_plain_value(self.out, labels, counter, value.as_f64());
        }
        let metric = self.start_metric(labels);
        let out = &mut *self.out;
        let inner = begin(
            out,
            if counter {
                METRIC_COUNTER
            } else {
                METRIC_GAUGE
            },
        );
        put_double(out, VALUE, value.as_f64());
        if let Some(e) = exemplar.filter(|_| counter) {
            put_exemplar(out, COUNTER_EXEMPLAR, e);
        }
        end(out, inner);
        end(out, metric);
    }
}

/// The `label` fields of a `Metric`: a series' stored form as it is, or
/// pairs (from collectors) written one by one.
#[inline(always)]
fn put_labels(out: &mut Vec<u8>, labels: &Labels<'_>) {
    match labels.protobuf() {
        Some(bytes) => out.extend_from_slice(bytes),
        None => labels
            .iter()
            .for_each(|(n, v)| put_protobuf_pair(out, n, v)),
    }
}

/// Bytes [`put_labels`] writes.
#[inline(always)]
fn labels_len(labels: &Labels<'_>) -> usize {
    match labels.protobuf() {
        Some(bytes) => bytes.len(),
        None => labels.iter().map(|(n, v)| protobuf_pair_len(n, v)).sum(),
    }
}

/// A `Metric` holding its labels and a `Counter` or `Gauge` with `value`
/// and no exemplar, its length computed first.
fn put_plain_value(out: &mut Vec<u8>, labels: &Labels<'_>, counter: bool, value: f64) {
    // The value message: key, length 9, the double's key and 8 bytes.
    const VALUE_FIELD: usize = 1 + 1 + 9;
    let body = labels_len(labels) + VALUE_FIELD;
    out.reserve(bytes_field_len(body));
    put_key(out, FAMILY_METRIC, LEN);
    put_varint(out, body as u64);
    put_labels(out, labels);
    let field = if counter {
        METRIC_COUNTER
    } else {
        METRIC_GAUGE
    };
    let head = [(field << 3 | LEN) as u8, 9, (VALUE << 3 | FIXED64) as u8];
    out.extend_from_slice(&head);
    out.extend_from_slice(&value.to_le_bytes());
}

impl<'r> Visitor<'r> for Writer<'_> {
    fn family(&mut self, desc: FamilyDesc<'r>) {
        self.finish_family();
        self.kind = desc.kind;
        // A family is the stream's top level: its length has no key.
        let out = &mut *self.out;
        out.push(0);
        self.family = Some(out.len() - 1);
        put_bytes(out, FAMILY_NAME, desc.name.as_bytes());
        put_bytes(out, FAMILY_HELP, desc.help.as_bytes());
        let kind = match desc.kind {
            MetricType::Counter => 0,
            MetricType::Gauge => 1,
            MetricType::Histogram => 4,
        };
        put_uint(out, FAMILY_TYPE, kind);
    }

    fn values(&mut self, samples: &[(Labels<'_>, Value)]) {
        for (labels, value) in samples {
            self.value(labels, *value, None);
        }
    }

    fn value_with_exemplar(
        &mut self,
        labels: Labels<'_>,
        value: Value,
        exemplar: Option<Exemplar>,
    ) {
        self.value(&labels, value, exemplar.as_ref());
    }

    fn histogram(&mut self, labels: Labels<'_>, reading: &HistogramReading<'_>) {
        let metric = self.start_metric(&labels);
        let out = &mut *self.out;
        let inner = begin(out, METRIC_HISTOGRAM);
        put_uint(out, HISTOGRAM_COUNT, reading.count());
        put_double(out, HISTOGRAM_SUM, reading.sum());
        for (i, (&bound, &cumulative)) in reading
            .bounds()
            .iter()
            .zip(reading.cumulative())
            .enumerate()
        {
            let bucket = begin(out, HISTOGRAM_BUCKET);
            put_uint(out, BUCKET_COUNT, cumulative);
            put_double(out, BUCKET_BOUND, bound);
            if let Some(e) = reading.exemplar(i) {
                put_exemplar(out, BUCKET_EXEMPLAR, &e);
            }
            end(out, bucket);
        }
        if let Some(native) = reading.native() {
            put_uint(out, HISTOGRAM_SCHEMA, zigzag(i64::from(native.schema())));
            put_double(out, HISTOGRAM_ZERO_THRESHOLD, native.zero_threshold());
            put_uint(out, HISTOGRAM_ZERO_COUNT, native.zero_count());
            let neg = (HISTOGRAM_NEGATIVE_SPAN, HISTOGRAM_NEGATIVE_DELTA);
            let pos = (HISTOGRAM_POSITIVE_SPAN, HISTOGRAM_POSITIVE_DELTA);
            let any_neg = put_native_side(out, neg, native.negative(), self.deltas);
            let any_pos = put_native_side(out, pos, native.positive(), self.deltas);
            if !any_neg && !any_pos {
                put_span(out, HISTOGRAM_POSITIVE_SPAN, 0, 0);
            }
        }
        end(out, inner);
        end(out, metric);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patched_lengths_match_lengths_written_first() {
        // A body of each size around the one- and two-byte boundaries gets
        // the same bytes as writing its length first.
        for body in [0usize, 1, 127, 128, 129, 16_383, 16_384] {
            let payload: Vec<u8> = (0..body).map(|i| i as u8).collect();
            let mut patched = vec![0xAA];
            let mark = begin(&mut patched, 4);
            patched.extend_from_slice(&payload);
            end(&mut patched, mark);
            let mut direct = vec![0xAA];
            put_bytes(&mut direct, 4, &payload);
            assert_eq!(patched, direct, "body of {body}");
        }
    }
}
