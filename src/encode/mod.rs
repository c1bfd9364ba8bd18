//! The Prometheus text exposition format, version 0.0.4, written by hand.
//!
//! [`TextEncoder`] owns a reusable output buffer: after the first scrape has
//! grown it, encoding a registry allocates nothing. The registry
//! ([`crate::metrics::Registry::encode`]) walks its families in name order and
//! each family writes its series through a [`SeriesWriter`], which knows the
//! family name and the series' pre-escaped label pairs, so a sample line is a
//! handful of `memcpy`s plus one number.
//!
//! The rules that trip hand-written encoders live here and in the two helper
//! modules: escaping ([`write_help`], [`write_label_value`]) and numbers
//! ([`write_u64`], [`write_f64`]).

mod escape;
mod number;
mod parse;

pub use escape::{write_help, write_label_value};
pub use number::{write_f64, write_u64};
pub use parse::{parse_text, ParseError, ParsedFamily, ParsedSample};

/// The Content-Type of a text-format scrape.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `# TYPE` of a family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
}

impl MetricType {
    /// The word written after the family name in `# TYPE`.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
        }
    }
}

/// A reusable buffer that a registry encodes into.
///
/// ```
/// use tinymon::encode::TextEncoder;
/// use tinymon::metrics::{Counter, Family, Registry};
///
/// let registry = Registry::new();
/// let hits = registry
///     .register(Family::<Counter>::new("hits_total", "Pages served.", &["page"]).unwrap())
///     .unwrap();
/// hits.get(&["home"]).unwrap().inc();
///
/// let mut encoder = TextEncoder::new();
/// let text = std::str::from_utf8(registry.encode(&mut encoder)).unwrap();
/// assert!(text.contains("# TYPE hits_total counter\nhits_total{page=\"home\"} 1\n"));
/// ```
#[derive(Default)]
pub struct TextEncoder {
    pub(crate) buf: Vec<u8>,
    /// One buffer per collector-provided family, refilled on every scrape.
    pub(crate) collected: Vec<Vec<u8>>,
}

impl TextEncoder {
    /// An empty encoder; its buffers grow to the registry's size on first use.
    pub fn new() -> Self {
        Self::default()
    }

    /// The bytes of the last encode.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }
}

/// Writes `# HELP` and `# TYPE` for a family.
pub fn write_family_header(buf: &mut Vec<u8>, name: &str, help: &str, kind: MetricType) {
    buf.extend_from_slice(b"# HELP ");
    buf.extend_from_slice(name.as_bytes());
    buf.push(b' ');
    write_help(buf, help);
    buf.extend_from_slice(b"\n# TYPE ");
    buf.extend_from_slice(name.as_bytes());
    buf.push(b' ');
    buf.extend_from_slice(kind.as_str().as_bytes());
    buf.push(b'\n');
}

/// Appends `name="value"` pairs, escaped and comma-separated, without braces.
///
/// Families call this once per series when the series is created and keep the
/// result, so label escaping is never repeated at scrape time.
pub fn write_label_pairs(buf: &mut Vec<u8>, names: &[impl AsRef<str>], values: &[&str]) {
    for (i, (name, value)) in names.iter().zip(values).enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(name.as_ref().as_bytes());
        buf.extend_from_slice(b"=\"");
        write_label_value(buf, value);
        buf.push(b'"');
    }
}

/// Writes the sample lines of one series.
///
/// `labels` is the series' pre-escaped `a="x",b="y"` text (empty for a series
/// without labels).
pub struct SeriesWriter<'a> {
    buf: &'a mut Vec<u8>,
    name: &'a str,
    labels: &'a str,
}

impl<'a> SeriesWriter<'a> {
    /// A writer for the series `name{labels}`.
    pub fn new(buf: &'a mut Vec<u8>, name: &'a str, labels: &'a str) -> Self {
        SeriesWriter { buf, name, labels }
    }

    fn start(&mut self, suffix: &str) {
        self.buf.extend_from_slice(self.name.as_bytes());
        self.buf.extend_from_slice(suffix.as_bytes());
        if !self.labels.is_empty() {
            self.buf.push(b'{');
            self.buf.extend_from_slice(self.labels.as_bytes());
            self.buf.push(b'}');
        }
        self.buf.push(b' ');
    }

    /// `name{suffix}{labels} value` with an integer value.
    pub fn sample_u64(&mut self, suffix: &str, value: u64) {
        self.start(suffix);
        write_u64(self.buf, value);
        self.buf.push(b'\n');
    }

    /// `name{suffix}{labels} value` with a float value.
    pub fn sample_f64(&mut self, suffix: &str, value: f64) {
        self.start(suffix);
        write_f64(self.buf, value);
        self.buf.push(b'\n');
    }

    /// `name_bucket{labels,le="..."} count`; `le_pair` is the pre-built
    /// `le="0.005"` text of the bucket.
    pub fn bucket(&mut self, le_pair: &str, count: u64) {
        self.buf.extend_from_slice(self.name.as_bytes());
        self.buf.extend_from_slice(b"_bucket{");
        if !self.labels.is_empty() {
            self.buf.extend_from_slice(self.labels.as_bytes());
            self.buf.push(b',');
        }
        self.buf.extend_from_slice(le_pair.as_bytes());
        self.buf.extend_from_slice(b"} ");
        write_u64(self.buf, count);
        self.buf.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_escapes_help() {
        let mut buf = Vec::new();
        write_family_header(&mut buf, "x_total", "line\none \\ two", MetricType::Counter);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "# HELP x_total line\\none \\\\ two\n# TYPE x_total counter\n"
        );
    }

    #[test]
    fn series_lines_with_and_without_labels() {
        let mut labels = Vec::new();
        write_label_pairs(&mut labels, &["a", "b"], &["1", "q\""]);
        let labels = String::from_utf8(labels).unwrap();
        assert_eq!(labels, r#"a="1",b="q\"""#);

        let mut buf = Vec::new();
        let mut w = SeriesWriter::new(&mut buf, "h", &labels);
        w.bucket("le=\"0.5\"", 3);
        w.sample_f64("_sum", 1.5);
        w.sample_u64("_count", 3);
        let mut w = SeriesWriter::new(&mut buf, "g", "");
        w.sample_f64("", f64::NEG_INFINITY);
        w.bucket("le=\"+Inf\"", 0);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "h_bucket{a=\"1\",b=\"q\\\"\",le=\"0.5\"} 3\n\
             h_sum{a=\"1\",b=\"q\\\"\"} 1.5\n\
             h_count{a=\"1\",b=\"q\\\"\"} 3\n\
             g -Inf\n\
             g_bucket{le=\"+Inf\"} 0\n"
        );
    }
}
