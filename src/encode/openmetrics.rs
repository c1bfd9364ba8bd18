//! OpenMetrics 1.0 text.
//!
//! The same lines as the text format 0.0.4 (both are written by `lines`),
//! with the differences OpenMetrics 1.0 makes:
//! - a counter family's `# TYPE` and `# HELP` name it without `_total`, and
//!   its sample is always `<name>_total` (a counter registered without the
//!   suffix gets it on the wire, as client_python does);
//! - `# HELP` escapes the double quote too;
//! - `le` values are canonical numbers: `1.0`, not `1`;
//! - histograms write `_count` before `_sum`;
//! - histogram buckets and counters carry their exemplars, as
//!   ` # {trace_id="...",span_id="..."} value timestamp` after the value;
//! - the exposition ends with `# EOF`.
//!
//! Like [`super::TextEncoder`], it reuses its buffers, so a scrape allocates
//! nothing once they have grown.

use super::lines::{Dialect, Lines};
use crate::metrics::{Exemplar, Registry};
use crate::wire::escape::write_label_value;
use crate::wire::number::{write_f64, write_u64};

/// The Content-Type of an OpenMetrics scrape.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A reusable buffer that a registry encodes into as OpenMetrics 1.0.
///
/// ```
/// use tinymon::encode::OpenMetricsEncoder;
/// use tinymon::metrics::Registry;
///
/// let registry = Registry::new();
/// registry.counter("jobs_total", "Jobs run.").unwrap().inc();
/// let text = String::from_utf8(OpenMetricsEncoder::new().encode(&registry).to_vec()).unwrap();
/// assert!(text.starts_with("# HELP jobs Jobs run.\n# TYPE jobs counter\njobs_total 1\n"));
/// assert!(text.ends_with("# EOF\n"));
/// ```
#[derive(Debug, Default)]
pub struct OpenMetricsEncoder {
    lines: Lines,
}

impl OpenMetricsEncoder {
    /// An empty encoder; its buffers grow to the registry's size on first use.
    pub fn new() -> Self {
        Self::default()
    }

    /// Encodes every family of `registry`, then `# EOF`, and returns the bytes.
    pub fn encode(&mut self, registry: &Registry) -> &[u8] {
        self.lines.encode::<OpenMetrics>(registry)
    }

    /// The bytes of the last encode.
    pub fn as_bytes(&self) -> &[u8] {
        self.lines.as_bytes()
    }
}

/// The rules listed in the module doc.
enum OpenMetrics {}

impl Dialect for OpenMetrics {
    fn write_help(buf: &mut Vec<u8>, help: &str) {
        // OpenMetrics escapes help like a label value (`"` as well).
        write_label_value(buf, help);
    }
    fn write_le(buf: &mut Vec<u8>, bound: f64) {
        write_canonical(buf, bound);
    }
    const COUNTER_TOTAL: bool = true;
    const COUNT_FIRST: bool = true;
    const EXEMPLARS: bool = true;
    fn write_exemplar(buf: &mut Vec<u8>, exemplar: &Exemplar) {
        write_exemplar(buf, exemplar);
    }
    const TRAILER: &'static [u8] = b"# EOF\n";
}

/// Writes `v` as an OpenMetrics canonical number: Go's shortest form, with
/// `.0` added to whole numbers (`1.0`, `10.0`, but `1e+06` and `+Inf`).
fn write_canonical(buf: &mut Vec<u8>, v: f64) {
    let start = buf.len();
    write_f64(buf, v);
    if buf[start..]
        .iter()
        .all(|b| b.is_ascii_digit() || *b == b'-')
    {
        buf.extend_from_slice(b".0");
    }
}

/// ` # {trace_id="…",span_id="…"} value timestamp`: 63 characters of
/// label names and values, within OpenMetrics' limit of 128.
fn write_exemplar(buf: &mut Vec<u8>, e: &Exemplar) {
    buf.extend_from_slice(b" # {trace_id=\"");
    buf.extend_from_slice(&e.trace.trace_id_hex());
    buf.extend_from_slice(b"\",span_id=\"");
    buf.extend_from_slice(&e.trace.span_id_hex());
    buf.extend_from_slice(b"\"} ");
    write_f64(buf, e.value);
    buf.push(b' ');
    write_u64(buf, e.timestamp_ms / 1000);
    let ms = e.timestamp_ms % 1000;
    buf.extend_from_slice(&[
        b'.',
        b'0' + (ms / 100) as u8,
        b'0' + (ms / 10 % 10) as u8,
        b'0' + (ms % 10) as u8,
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{
        Buckets, Collected, Collector, Counter, Desc, Family, Histogram, MetricType,
    };

    fn text(r: &Registry) -> String {
        String::from_utf8(OpenMetricsEncoder::new().encode(r).to_vec()).unwrap()
    }

    struct Cpu;
    impl Collector for Cpu {
        fn descs(&self) -> &[Desc] {
            &[Desc {
                name: "cpu_seconds_total",
                help: "CPU \"time\".",
                kind: MetricType::Counter,
            }]
        }
        fn collect(&self, out: &mut Collected<'_, '_>) {
            out.sample(0, &[("mode", "user")], 1.5);
        }
    }

    #[test]
    fn counters_histograms_and_eof() {
        let r = Registry::new();
        r.register(Family::<Counter, 1>::new("hits_total", "Hits.", ["page"]).unwrap())
            .unwrap()
            .get_or_create(&["a\"b"])
            .inc_by(3);
        r.counter("bare", "No suffix.").unwrap().inc();
        r.register(
            Family::<Histogram, 1>::with_config(
                "lat_seconds",
                "Latency.",
                ["path"],
                Buckets::new(&[0.005, 1.0, 1e6]).unwrap(),
            )
            .unwrap(),
        )
        .unwrap()
        .get_or_create(&["/x"])
        .observe(0.5);
        r.register_collector(Cpu).unwrap();
        assert_eq!(
            text(&r),
            "# HELP bare No suffix.\n# TYPE bare counter\nbare_total 1\n\
             # HELP cpu_seconds CPU \\\"time\\\".\n# TYPE cpu_seconds counter\n\
             cpu_seconds_total{mode=\"user\"} 1.5\n\
             # HELP hits Hits.\n# TYPE hits counter\nhits_total{page=\"a\\\"b\"} 3\n\
             # HELP lat_seconds Latency.\n# TYPE lat_seconds histogram\n\
             lat_seconds_bucket{path=\"/x\",le=\"0.005\"} 0\n\
             lat_seconds_bucket{path=\"/x\",le=\"1.0\"} 1\n\
             lat_seconds_bucket{path=\"/x\",le=\"1e+06\"} 1\n\
             lat_seconds_bucket{path=\"/x\",le=\"+Inf\"} 1\n\
             lat_seconds_count{path=\"/x\"} 1\n\
             lat_seconds_sum{path=\"/x\"} 0.5\n\
             # HELP tinymon_series_dropped New label sets past their family's series cap; each was recorded in the family's overflow series (label values \\\"__overflow__\\\") instead.\n\
             # TYPE tinymon_series_dropped counter\n\
             tinymon_series_dropped_total{family=\"hits_total\"} 0\n\
             tinymon_series_dropped_total{family=\"lat_seconds\"} 0\n\
             # EOF\n"
        );
    }

    #[test]
    fn a_counter_named_only_total_keeps_its_name() {
        let r = Registry::new();
        r.counter("_total", "Odd.").unwrap().inc();
        assert_eq!(
            text(&r),
            "# HELP _total Odd.\n# TYPE _total counter\n_total_total 1\n# EOF\n"
        );
    }

    #[test]
    fn canonical_numbers() {
        let s = |v: f64| {
            let mut b = Vec::new();
            write_canonical(&mut b, v);
            String::from_utf8(b).unwrap()
        };
        assert_eq!(s(1.0), "1.0");
        assert_eq!(s(10.0), "10.0");
        assert_eq!(s(-2.0), "-2.0");
        assert_eq!(s(0.25), "0.25");
        assert_eq!(s(1e6), "1e+06");
        assert_eq!(s(f64::INFINITY), "+Inf");
    }

    #[test]
    fn an_empty_registry_is_just_eof() {
        let mut enc = OpenMetricsEncoder::new();
        let r = Registry::new();
        assert_eq!(enc.encode(&r), b"# EOF\n");
        assert_eq!(enc.as_bytes(), b"# EOF\n");
    }
}
