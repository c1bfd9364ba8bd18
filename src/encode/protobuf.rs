//! The Prometheus protobuf exposition: length-delimited
//! `io.prometheus.client.MetricFamily` messages (client_model's
//! metrics.proto), written by hand like the text formats: no generated
//! code, no runtime crate.
//!
//! The stream is one message per family, each preceded by its length as a
//! varint. A message is a run of fields, each a key (`field number << 3 |
//! wire type`) and a value: a varint (wire type 0), a double as 8
//! little-endian bytes (1), or a varint length and that many bytes for
//! strings and nested messages (2). A nested message is written into a
//! scratch buffer first, so its length is known when its parent writes it;
//! the buffers are reused, so a scrape allocates nothing once they grew.
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

/// The Content-Type of a protobuf scrape.
pub const PROTOBUF_CONTENT_TYPE: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

// Field numbers of metrics.proto.
const FAMILY_NAME: u32 = 1;
const FAMILY_HELP: u32 = 2;
const FAMILY_TYPE: u32 = 3;
const FAMILY_METRIC: u32 = 4;
const METRIC_LABEL: u32 = 1;
const METRIC_GAUGE: u32 = 2;
const METRIC_COUNTER: u32 = 3;
const METRIC_HISTOGRAM: u32 = 7;
const LABEL_NAME: u32 = 1;
const LABEL_VALUE: u32 = 2;
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
const EXEMPLAR_LABEL: u32 = 1;
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
#[derive(Default)]
pub struct ProtobufEncoder {
    buf: Vec<u8>,
    scratch: Scratch,
}

#[derive(Default)]
struct Scratch {
    family: Vec<u8>,
    metric: Vec<u8>,
    inner: Vec<u8>,
    bucket: Vec<u8>,
    exemplar: Vec<u8>,
    pair: Vec<u8>,
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
            s: &mut self.scratch,
            kind: MetricType::Gauge,
            open: false,
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

fn put_varint(buf: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        buf.push(n as u8 | 0x80);
        n >>= 7;
    }
    buf.push(n as u8);
}

fn put_key(buf: &mut Vec<u8>, field: u32, wire: u32) {
    put_varint(buf, u64::from(field << 3 | wire));
}

fn put_bytes(buf: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(buf, field, LEN);
    put_varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

fn put_double(buf: &mut Vec<u8>, field: u32, v: f64) {
    put_key(buf, field, FIXED64);
    buf.extend_from_slice(&v.to_le_bytes());
}

fn put_uint(buf: &mut Vec<u8>, field: u32, n: u64) {
    put_key(buf, field, VARINT);
    put_varint(buf, n);
}

/// Zigzag: the encoding of `sint32`/`sint64`, small for small magnitudes.
fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

/// A `BucketSpan` as field `field` of `out`.
fn put_span(out: &mut Vec<u8>, field: u32, offset: i32, length: u32, pair: &mut Vec<u8>) {
    pair.clear();
    put_uint(pair, SPAN_OFFSET, zigzag(i64::from(offset)));
    put_uint(pair, SPAN_LENGTH, u64::from(length));
    put_bytes(out, field, pair);
}

/// One sign's native buckets: spans, then the packed deltas. Returns
/// whether there was any bucket.
fn put_native_side(
    out: &mut Vec<u8>,
    (span_field, delta_field): (u32, u32),
    buckets: impl Iterator<Item = (i32, u64)>,
    deltas: &mut Vec<u8>,
    pair: &mut Vec<u8>,
) -> bool {
    deltas.clear();
    // The key after the last span written, once there is one.
    let mut spans_end: Option<i32> = None;
    let mut flush = |out: &mut Vec<u8>, start: i32, len: u32| {
        let offset = spans_end.map_or(start, |end| start - end);
        put_span(out, span_field, offset, len, pair);
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

/// A `LabelPair` as field `field` of `out`.
fn put_label(out: &mut Vec<u8>, field: u32, name: &str, value: &str, pair: &mut Vec<u8>) {
    pair.clear();
    put_bytes(pair, LABEL_NAME, name.as_bytes());
    put_bytes(pair, LABEL_VALUE, value.as_bytes());
    put_bytes(out, field, pair);
}

/// An `Exemplar` with `trace_id` and `span_id` labels as field `field`.
fn put_exemplar(out: &mut Vec<u8>, field: u32, e: &Exemplar, ex: &mut Vec<u8>, pair: &mut Vec<u8>) {
    ex.clear();
    let trace = e.trace.trace_id_hex();
    let span = e.trace.span_id_hex();
    put_label(
        ex,
        EXEMPLAR_LABEL,
        "trace_id",
        std::str::from_utf8(&trace).unwrap_or(""),
        pair,
    );
    put_label(
        ex,
        EXEMPLAR_LABEL,
        "span_id",
        std::str::from_utf8(&span).unwrap_or(""),
        pair,
    );
    put_double(ex, EXEMPLAR_VALUE, e.value);
    pair.clear();
    put_uint(pair, SECONDS, e.timestamp_ms / 1000);
    put_uint(pair, NANOS, e.timestamp_ms % 1000 * 1_000_000);
    put_bytes(ex, EXEMPLAR_TIMESTAMP, pair);
    put_bytes(out, field, ex);
}

struct Writer<'e> {
    out: &'e mut Vec<u8>,
    s: &'e mut Scratch,
    kind: MetricType,
    /// A family message is being built in `s.family`.
    open: bool,
}

impl Writer<'_> {
    /// Appends the family built so far to the output, length first.
    fn finish_family(&mut self) {
        if self.open {
            put_varint(self.out, self.s.family.len() as u64);
            self.out.extend_from_slice(&self.s.family);
            self.open = false;
        }
    }

    /// Starts a `Metric` in `s.metric` with its labels.
    fn start_metric(&mut self, labels: &Labels<'_>) {
        let Scratch { metric, pair, .. } = &mut *self.s;
        metric.clear();
        for (name, value) in labels.iter() {
            put_label(metric, METRIC_LABEL, name, value, pair);
        }
    }

    /// Appends the metric in `s.metric` to the family.
    fn finish_metric(&mut self) {
        let Scratch { family, metric, .. } = &mut *self.s;
        put_bytes(family, FAMILY_METRIC, metric);
    }

    fn value(&mut self, labels: &Labels<'_>, value: Value, exemplar: Option<&Exemplar>) {
        self.start_metric(labels);
        let Scratch {
            metric,
            inner,
            exemplar: ex,
            pair,
            ..
        } = &mut *self.s;
        inner.clear();
        put_double(inner, VALUE, value.as_f64());
        let field = if self.kind == MetricType::Counter {
            if let Some(e) = exemplar {
                put_exemplar(inner, COUNTER_EXEMPLAR, e, ex, pair);
            }
            METRIC_COUNTER
        } else {
            METRIC_GAUGE
        };
        put_bytes(metric, field, inner);
        self.finish_metric();
    }
}

impl<'r> Visitor<'r> for Writer<'_> {
    fn family(&mut self, desc: FamilyDesc<'r>) {
        self.finish_family();
        self.kind = desc.kind;
        let family = &mut self.s.family;
        family.clear();
        put_bytes(family, FAMILY_NAME, desc.name.as_bytes());
        put_bytes(family, FAMILY_HELP, desc.help.as_bytes());
        let kind = match desc.kind {
            MetricType::Counter => 0,
            MetricType::Gauge => 1,
            MetricType::Histogram => 4,
        };
        put_uint(family, FAMILY_TYPE, kind);
        self.open = true;
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
        self.start_metric(&labels);
        let Scratch {
            metric,
            inner,
            bucket,
            exemplar: ex,
            pair,
            deltas,
            ..
        } = &mut *self.s;
        inner.clear();
        put_uint(inner, HISTOGRAM_COUNT, reading.count());
        put_double(inner, HISTOGRAM_SUM, reading.sum());
        for (i, (&bound, &cumulative)) in reading
            .bounds()
            .iter()
            .zip(reading.cumulative())
            .enumerate()
        {
            bucket.clear();
            put_uint(bucket, BUCKET_COUNT, cumulative);
            put_double(bucket, BUCKET_BOUND, bound);
            if let Some(e) = reading.exemplar(i) {
                put_exemplar(bucket, BUCKET_EXEMPLAR, &e, ex, pair);
            }
            put_bytes(inner, HISTOGRAM_BUCKET, bucket);
        }
        if let Some(native) = reading.native() {
            put_uint(inner, HISTOGRAM_SCHEMA, zigzag(i64::from(native.schema())));
            put_double(inner, HISTOGRAM_ZERO_THRESHOLD, native.zero_threshold());
            put_uint(inner, HISTOGRAM_ZERO_COUNT, native.zero_count());
            let neg = (HISTOGRAM_NEGATIVE_SPAN, HISTOGRAM_NEGATIVE_DELTA);
            let pos = (HISTOGRAM_POSITIVE_SPAN, HISTOGRAM_POSITIVE_DELTA);
            let any_neg = put_native_side(inner, neg, native.negative(), deltas, pair);
            let any_pos = put_native_side(inner, pos, native.positive(), deltas, pair);
            if !any_neg && !any_pos {
                put_span(inner, HISTOGRAM_POSITIVE_SPAN, 0, 0, pair);
            }
        }
        put_bytes(metric, METRIC_HISTOGRAM, inner);
        self.finish_metric();
    }
}
