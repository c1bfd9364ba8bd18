//! Families whose values are computed at scrape time.
//!
//! A [`Collector`] names its families up front ([`Collector::descs`]) so the
//! registry can refuse clashing names at registration, and writes their
//! samples when a scrape calls [`Collector::collect`], once per scrape. The
//! samples go straight to the scrape's visitor through [`Collected`]: nothing
//! is buffered, so a collector costs no memory between scrapes.

use super::{FamilyDesc, Labels, MetricType, Value, Visitor};

/// Describes one family a [`Collector`] provides.
#[derive(Clone, Copy, Debug)]
pub struct Desc {
    /// The metric name.
    pub name: &'static str,
    /// Help text (must not be empty).
    pub help: &'static str,
    /// Counter or gauge; collectors do not provide histograms.
    pub kind: MetricType,
}

/// A source of families computed at scrape time.
///
/// ```
/// use tinymon::encode::TextEncoder;
/// use tinymon::metrics::{Collected, Collector, Desc, MetricType, Registry};
///
/// struct Answer;
/// impl Collector for Answer {
///     fn descs(&self) -> &[Desc] {
///         &[Desc { name: "answer", help: "The answer.", kind: MetricType::Gauge }]
///     }
///     fn collect(&self, out: &mut Collected<'_, '_>) {
///         out.sample(0, &[("kind", "universal")], 42.0);
///     }
/// }
///
/// let registry = Registry::new();
/// registry.register_collector(Answer).unwrap();
/// let text = String::from_utf8(TextEncoder::new().encode(&registry).to_vec()).unwrap();
/// assert!(text.contains("answer{kind=\"universal\"} 42\n"));
/// ```
pub trait Collector: Send + Sync + 'static {
    /// The families this collector writes, in the order it writes them;
    /// index into it in [`Collected::sample`].
    fn descs(&self) -> &[Desc];
    /// Writes the current samples, family by family in `descs` order. A
    /// family with no sample is left out of the scrape entirely.
    fn collect(&self, out: &mut Collected<'_, '_>);
}

/// Where a collector writes its samples during one scrape.
pub struct Collected<'c, 'r> {
    descs: &'r [Desc],
    out: &'c mut dyn Visitor<'r>,
    /// One past the family whose samples are being written (0: none yet).
    next: usize,
}

impl std::fmt::Debug for Collected<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collected")
            .field("descs", &self.descs)
            .finish_non_exhaustive()
    }
}

impl<'c, 'r> Collected<'c, 'r> {
    pub(crate) fn new(descs: &'r [Desc], out: &'c mut dyn Visitor<'r>) -> Self {
        Collected {
            descs,
            out,
            next: 0,
        }
    }

    /// Writes one sample of the family `descs()[desc]`, with `labels` as
    /// `(name, value)` pairs (names must be valid label names).
    ///
    /// A family's samples must be contiguous, so families are written in
    /// `descs` order: a sample for a family before the current one is a bug
    /// in the collector and is left out (and asserts in debug builds).
    ///
    /// # Panics
    /// When `desc` is not an index into `descs()`.
    pub fn sample(&mut self, desc: usize, labels: &[(&str, &str)], value: f64) {
        let d = self.descs[desc];
        if desc + 1 < self.next {
            if cfg!(debug_assertions) {
                panic!("{}: sample written after a later family", d.name);
            }
            return;
        }
        if desc + 1 > self.next {
            self.next = desc + 1;
            self.out.family(FamilyDesc {
                name: d.name,
                help: d.help,
                kind: d.kind,
            });
        }
        self.out
            .values(&[(Labels::pairs(labels), Value::Float(value))]);
    }
}
