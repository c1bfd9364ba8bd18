//! The Prometheus text format, version 0.0.4.
//!
//! Layout, per family: `# HELP name text`, `# TYPE name type`, then one line
//! per sample, `name{labels} value`. A histogram series writes its
//! `_bucket{...,le="..."}` lines in ascending `le`, cumulative, ending with
//! `le="+Inf"`, then `_sum` and `_count`. The lines themselves are written
//! by `lines`, which OpenMetrics shares; this file holds the rules that
//! make them 0.0.4.

use super::lines::{Dialect, Lines};
use crate::metrics::Registry;
use crate::wire::escape::write_help;
use crate::wire::number::write_f64;

/// The Content-Type of a text-format scrape.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A reusable buffer that a registry encodes into.
///
/// ```
/// use tinymon::encode::TextEncoder;
/// use tinymon::metrics::{Counter, Family, Registry};
///
/// let registry = Registry::new();
/// let hits = registry
///     .register(Family::<Counter, 1>::new("hits_total", "Pages served.", ["page"]).unwrap())
///     .unwrap();
/// hits.get_or_create(&["home"]).inc();
///
/// let mut encoder = TextEncoder::new();
/// let text = std::str::from_utf8(encoder.encode(&registry)).unwrap();
/// assert!(text.contains("# TYPE hits_total counter\nhits_total{page=\"home\"} 1\n"));
/// ```
#[derive(Debug, Default)]
pub struct TextEncoder {
    lines: Lines,
}

/// Text 0.0.4: help escapes only backslash and newline, bounds in Go's
/// shortest form (`1`), `_sum` before `_count`, no exemplars, no trailer.
enum Text {}

impl Dialect for Text {
    fn write_help(buf: &mut Vec<u8>, help: &str) {
        write_help(buf, help);
    }
    fn write_le(buf: &mut Vec<u8>, bound: f64) {
        write_f64(buf, bound);
    }
    const COUNTER_TOTAL: bool = false;
    const COUNT_FIRST: bool = false;
    const EXEMPLARS: bool = false;
    const TRAILER: &'static [u8] = b"";
}

impl TextEncoder {
    /// An empty encoder; its buffers grow to the registry's size on first use.
    pub fn new() -> Self {
        Self::default()
    }

    /// Encodes every family of `registry` and returns the bytes.
    pub fn encode(&mut self, registry: &Registry) -> &[u8] {
        self.lines.encode::<Text>(registry)
    }

    /// The bytes of the last encode.
    pub fn as_bytes(&self) -> &[u8] {
        self.lines.as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{
        Buckets, Collected, Collector, Counter, Desc, Family, Gauge, Histogram, MetricError,
        MetricType, SERIES_DROPPED,
    };

    fn text(r: &Registry) -> String {
        String::from_utf8(TextEncoder::new().encode(r).to_vec()).unwrap()
    }

    #[test]
    fn families_series_and_escaping() {
        let r = Registry::new();
        let h = r
            .register(
                Family::<Histogram, 2>::with_config(
                    "h",
                    "line\none \\ two",
                    ["a", "b"],
                    Buckets::new(&[0.5, 1e6]).unwrap(),
                )
                .unwrap(),
            )
            .unwrap();
        h.get_or_create(&["1", "q\""]).observe(1.5);
        r.gauge("g", "A gauge.").unwrap().set(f64::NEG_INFINITY);
        assert_eq!(
            text(&r),
            "# HELP g A gauge.\n# TYPE g gauge\ng -Inf\n\
             # HELP h line\\none \\\\ two\n# TYPE h histogram\n\
             h_bucket{a=\"1\",b=\"q\\\"\",le=\"0.5\"} 0\n\
             h_bucket{a=\"1\",b=\"q\\\"\",le=\"1e+06\"} 1\n\
             h_bucket{a=\"1\",b=\"q\\\"\",le=\"+Inf\"} 1\n\
             h_sum{a=\"1\",b=\"q\\\"\"} 1.5\n\
             h_count{a=\"1\",b=\"q\\\"\"} 1\n\
             # HELP tinymon_series_dropped_total New label sets past their family's series cap; each was recorded in the family's overflow series (label values \"__overflow__\") instead.\n\
             # TYPE tinymon_series_dropped_total counter\n\
             tinymon_series_dropped_total{family=\"h\"} 0\n"
        );
    }

    #[test]
    fn histograms_with_different_bounds_get_their_own_le() {
        let r = Registry::new();
        r.histogram("a_seconds", "A.", Buckets::new(&[1.0]).unwrap())
            .unwrap()
            .observe(0.5);
        r.histogram("b_seconds", "B.", Buckets::default())
            .unwrap()
            .observe(7.0);
        let out = text(&r);
        assert!(out.contains("a_seconds_bucket{le=\"1\"} 1\na_seconds_bucket{le=\"+Inf\"} 1\n"));
        assert!(out.contains("b_seconds_bucket{le=\"0.005\"} 0\n"), "{out}");
        assert!(out.contains("b_seconds_bucket{le=\"10\"} 1\nb_seconds_bucket{le=\"+Inf\"} 1\n"));
    }

    #[test]
    fn duplicates_are_errors() {
        let r = Registry::new();
        r.counter("a_total", "h").unwrap();
        let again = r.register(Family::<Gauge, 1>::new("a_total", "h", ["x"]).unwrap());
        assert_eq!(again.err(), Some(MetricError::Duplicate("a_total".into())));
        r.histogram("lat", "h", Buckets::default()).unwrap();
        let clash = r.counter("lat_count", "h");
        assert_eq!(
            clash.err(),
            Some(MetricError::Duplicate("lat_count".into()))
        );
        assert!(r.counter(SERIES_DROPPED, "h").is_err());
        assert_eq!(
            r.gauge("bad name", "h").err(),
            Some(MetricError::InvalidMetricName("bad name".into()))
        );
        assert_eq!(
            r.gauge("g", " ").err(),
            Some(MetricError::EmptyHelp("g".into()))
        );
    }

    #[test]
    fn families_come_out_sorted() {
        let r = Registry::new();
        for name in ["zeta", "alpha", "mid", "beta"] {
            r.gauge(name, "h").unwrap().set(1.0);
        }
        let out = text(&r);
        let types: Vec<&str> = out
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        assert_eq!(types, ["alpha", "beta", "mid", "zeta"]);
    }

    #[test]
    fn overflow_is_reported_per_family() {
        let r = Registry::new();
        let f = r
            .register(
                Family::<Counter, 1>::new("c_total", "h", ["id"])
                    .unwrap()
                    .with_series_cap(1)
                    .unwrap(),
            )
            .unwrap();
        for id in ["1", "2", "3"] {
            f.get_or_create(&[id]).inc();
        }
        let out = text(&r);
        assert!(
            out.contains("\nc_total{id=\"1\"} 1\nc_total{id=\"__overflow__\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("tinymon_series_dropped_total{family=\"c_total\"} 2\n"),
            "{out}"
        );
    }

    struct Flaky;
    impl Collector for Flaky {
        fn descs(&self) -> &[Desc] {
            &[
                Desc {
                    name: "b_missing",
                    help: "Never written.",
                    kind: MetricType::Gauge,
                },
                Desc {
                    name: "b_present",
                    help: "Always here.",
                    kind: MetricType::Counter,
                },
            ]
        }
        fn collect(&self, out: &mut Collected<'_, '_>) {
            out.sample(1, &[("v", "q\"")], 0.25);
            out.sample(1, &[], 2.0);
        }
    }

    #[test]
    fn collectors_sit_at_their_first_name_and_skip_empty_families() {
        let r = Registry::new();
        r.gauge("a", "h").unwrap().set(2.0);
        r.gauge("c", "h").unwrap().set(3.0);
        r.register_collector(Flaky).unwrap();
        assert!(matches!(
            r.register_collector(Flaky),
            Err(MetricError::Duplicate(_))
        ));
        let out = text(&r);
        assert!(!out.contains("b_missing"), "{out}");
        assert!(
            out.contains(
                "# TYPE a gauge\na 2\n\
                 # HELP b_present Always here.\n# TYPE b_present counter\n\
                 b_present{v=\"q\\\"\"} 0.25\nb_present 2\n\
                 # HELP c h\n"
            ),
            "{out}"
        );
    }

    #[test]
    fn registration_while_scraping() {
        let r = Registry::new();
        let n = crate::metrics::stress(200);
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0..n {
                    r.counter(&format!("c{i}"), "h").unwrap().inc();
                }
            });
            let mut enc = TextEncoder::new();
            let mut seen = 0;
            for _ in 0..n {
                let out = std::str::from_utf8(enc.encode(&r)).unwrap();
                let now = out.matches("# TYPE c").count();
                assert!(now >= seen, "families disappeared: {seen} -> {now}");
                seen = now;
            }
        });
        assert_eq!(text(&r).matches("# TYPE c").count(), n);
    }
}
