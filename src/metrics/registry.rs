//! The set of families and collectors a scrape writes, in name order.
//!
//! Registration is rare and may lock; finding the families to scrape does
//! not. The registry keeps its sorted entries in an immutable snapshot behind
//! an `AtomicPtr`: a registration copies the list, inserts, and swaps the
//! pointer; a scrape loads the pointer and walks the list. Replaced snapshots
//! are kept (each in an `Arc` the registry holds) until the registry is
//! dropped, so a scrape that is still walking an old one never sees it freed.
//! (Registrations happen a handful of times per process, so the kept copies
//! are small.) The one lock on the scrape path is each histogram's own: two
//! scrapes of one histogram take turns, and observers never touch it (see
//! [`super::Histogram`]).
//!
//! Collectors ([`Collector`]) supply families whose values are read at scrape
//! time, such as the process metrics from /proc. They write into per-family
//! buffers of the [`TextEncoder`], and the registry merges those with its own
//! families in name order.

use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Arc;

use once_cell::sync::Lazy;
use parking_lot::Mutex;

use super::error::{check_label_name, check_metric_name};
use super::family::EncodeFamily;
use super::{Family, Metric, MetricError};
use crate::encode::{
    write_f64, write_family_header, write_label_value, write_u64, MetricType, TextEncoder,
};

/// Name of the family reporting label sets refused by series caps.
pub const SERIES_DROPPED: &str = "tinymon_series_dropped_total";
const SERIES_DROPPED_HELP: &str =
    "Observations not recorded because their metric family had reached its series cap.";
/// Name of the family reporting lookups with the wrong number of label values.
pub const ARITY_ERRORS: &str = "tinymon_label_arity_errors_total";
const ARITY_ERRORS_HELP: &str =
    "Observations not recorded because the caller passed the wrong number of label values (a bug in the caller).";

/// Describes one family a [`Collector`] provides.
#[derive(Clone, Copy, Debug)]
pub struct Desc {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: MetricType,
}

/// A source of families computed at scrape time.
///
/// ```
/// use tinymon::encode::{MetricType, TextEncoder};
/// use tinymon::metrics::{Collected, Collector, Desc, Registry};
///
/// struct Answer;
/// impl Collector for Answer {
///     fn descs(&self) -> &[Desc] {
///         &[Desc { name: "answer", help: "The answer.", kind: MetricType::Gauge }]
///     }
///     fn collect(&self, out: &mut Collected<'_>) {
///         out.sample(0, &[("kind", "universal")], 42.0);
///     }
/// }
///
/// let registry = Registry::new();
/// registry.register_collector(Answer).unwrap();
/// let mut enc = TextEncoder::new();
/// let text = String::from_utf8(registry.encode(&mut enc).to_vec()).unwrap();
/// assert!(text.contains("answer{kind=\"universal\"} 42\n"));
/// ```
pub trait Collector: Send + Sync + 'static {
    /// The families this collector writes; index into it in [`Collected::sample`].
    fn descs(&self) -> &[Desc];
    /// Writes the current samples. A family with no sample is left out of the
    /// scrape entirely.
    fn collect(&self, out: &mut Collected<'_>);
}

/// Where a collector writes its samples during one scrape.
pub struct Collected<'a> {
    slots: &'a mut [Vec<u8>],
    descs: &'a [Desc],
}

impl Collected<'_> {
    /// Writes `name{labels} value` for the family `descs()[desc]`.
    pub fn sample(&mut self, desc: usize, labels: &[(&str, &str)], value: f64) {
        let buf = &mut self.slots[desc];
        buf.extend_from_slice(self.descs[desc].name.as_bytes());
        if !labels.is_empty() {
            buf.push(b'{');
            for (i, (name, value)) in labels.iter().enumerate() {
                debug_assert!(check_label_name(name).is_ok(), "label {name:?}");
                if i > 0 {
                    buf.push(b',');
                }
                buf.extend_from_slice(name.as_bytes());
                buf.extend_from_slice(b"=\"");
                write_label_value(buf, value);
                buf.push(b'"');
            }
            buf.push(b'}');
        }
        buf.push(b' ');
        write_f64(buf, value);
        buf.push(b'\n');
    }
}

#[derive(Clone)]
enum Source {
    Family(Arc<dyn EncodeFamily>),
    /// Family `desc` of the collector whose output starts at buffer `slot`.
    Collected {
        slot: usize,
        desc: Desc,
    },
    SeriesDropped,
    ArityErrors,
}

#[derive(Clone)]
struct Entry {
    name: Arc<str>,
    source: Source,
}

#[derive(Clone, Default)]
struct Snapshot {
    /// Sorted by name.
    entries: Vec<Entry>,
    /// Each collector with the index of its first buffer.
    collectors: Vec<(Arc<dyn Collector>, usize)>,
    /// Names in use, including histograms' `_bucket`, `_sum`, `_count`.
    taken: Vec<Arc<str>>,
    slots: usize,
}

/// Families and collectors, encoded together in name order.
pub struct Registry {
    /// The current snapshot: `Arc::as_ptr` of the last entry of `all`.
    /// Stored with Release after the snapshot is fully built, and loaded
    /// with Acquire by scrapes, so a scrape sees every write that built it.
    current: AtomicPtr<Snapshot>,
    /// Every snapshot ever published; also the registering side's lock.
    /// Each `Arc` keeps its snapshot alive, at the same address, until the
    /// registry is dropped, so a pointer loaded from `current` never
    /// dangles. (Registration is rare; keeping old snapshots costs a few
    /// hundred bytes each and spares scrapes any reference counting.)
    all: Mutex<Vec<Arc<Snapshot>>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// A registry holding only `tinymon_series_dropped_total` and
    /// `tinymon_label_arity_errors_total`.
    pub fn new() -> Self {
        let dropped: Arc<str> = SERIES_DROPPED.into();
        let arity: Arc<str> = ARITY_ERRORS.into();
        let first = Arc::new(Snapshot {
            entries: vec![
                Entry {
                    name: arity.clone(),
                    source: Source::ArityErrors,
                },
                Entry {
                    name: dropped.clone(),
                    source: Source::SeriesDropped,
                },
            ],
            taken: vec![dropped, arity],
            ..Snapshot::default()
        });
        let registry = Registry {
            current: AtomicPtr::new(ptr::null_mut()),
            all: Mutex::new(Vec::new()),
        };
        registry.publish(&mut registry.all.lock(), first);
        registry
    }

    fn publish(&self, all: &mut Vec<Arc<Snapshot>>, snapshot: Arc<Snapshot>) {
        // The pointer comes from the Arc's own heap allocation, not from a
        // reference to it, so moving the Arc into the Vec does not disturb it.
        let p = Arc::as_ptr(&snapshot).cast_mut();
        all.push(snapshot);
        self.current.store(p, Ordering::Release);
    }

    fn snapshot(&self) -> &Snapshot {
        let p = self.current.load(Ordering::Acquire);
        // SAFETY: `p` was stored by `publish` (never null after `new`), and it
        // points into an `Arc` held by `all`, which only grows until the
        // registry drops; the returned borrow cannot outlive `&self`. Nothing
        // writes through it: snapshots are immutable once published.
        unsafe { &*p }
    }

    /// Adds a family and returns a shared handle to it.
    pub fn register<M: Metric>(&self, family: Family<M>) -> Result<Arc<Family<M>>, MetricError> {
        let family = Arc::new(family);
        let mut names = vec![family.name().to_owned()];
        if M::TYPE == MetricType::Histogram {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.push(format!("{}{suffix}", family.name()));
            }
        }
        self.insert(&names, |_| {
            vec![(
                family.name().into(),
                Source::Family(family.clone() as Arc<dyn EncodeFamily>),
            )]
        })?;
        Ok(family)
    }

    /// Adds a collector; its family names must be valid and unused.
    pub fn register_collector(&self, collector: impl Collector) -> Result<(), MetricError> {
        let collector: Arc<dyn Collector> = Arc::new(collector);
        let descs = collector.descs().to_vec();
        for d in &descs {
            check_metric_name(d.name)?;
            if d.help.trim().is_empty() {
                return Err(MetricError::EmptyHelp(d.name.to_owned()));
            }
            if d.kind == MetricType::Histogram {
                return Err(MetricError::InvalidMetricName(format!(
                    "{}: collectors write counters and gauges only",
                    d.name
                )));
            }
        }
        let names: Vec<String> = descs.iter().map(|d| d.name.to_owned()).collect();
        let c = collector.clone();
        self.insert(&names, move |snapshot| {
            let first = snapshot.slots;
            snapshot.slots += descs.len();
            snapshot.collectors.push((c, first));
            descs
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    (
                        d.name.into(),
                        Source::Collected {
                            slot: first + i,
                            desc: *d,
                        },
                    )
                })
                .collect()
        })
    }

    fn insert(
        &self,
        names: &[String],
        make: impl FnOnce(&mut Snapshot) -> Vec<(Arc<str>, Source)>,
    ) -> Result<(), MetricError> {
        let mut all = self.all.lock();
        let mut next = self.snapshot().clone();
        for (i, name) in names.iter().enumerate() {
            if names[..i].contains(name) || next.taken.iter().any(|t| **t == **name) {
                return Err(MetricError::Duplicate(name.clone()));
            }
        }
        next.taken
            .extend(names.iter().map(|n| Arc::from(n.as_str())));
        for (name, source) in make(&mut next) {
            let at = next.entries.partition_point(|e| e.name < name);
            next.entries.insert(at, Entry { name, source });
        }
        self.publish(&mut all, Arc::new(next));
        Ok(())
    }

    /// Encodes every family into `encoder` and returns the bytes.
    /// Allocation-free once the encoder's buffers have grown.
    pub fn encode<'e>(&self, encoder: &'e mut TextEncoder) -> &'e [u8] {
        let snapshot = self.snapshot();
        let TextEncoder { buf, collected } = encoder;
        buf.clear();
        if collected.len() < snapshot.slots {
            collected.resize_with(snapshot.slots, Vec::new);
        }
        for slot in collected.iter_mut() {
            slot.clear();
        }
        for (collector, first) in &snapshot.collectors {
            let descs = collector.descs();
            collector.collect(&mut Collected {
                slots: &mut collected[*first..*first + descs.len()],
                descs,
            });
        }
        for entry in &snapshot.entries {
            match &entry.source {
                Source::Family(family) => family.encode(buf),
                Source::Collected { slot, desc } => {
                    let samples = &collected[*slot];
                    if !samples.is_empty() {
                        write_family_header(buf, desc.name, desc.help, desc.kind);
                        buf.extend_from_slice(samples);
                    }
                }
                Source::SeriesDropped => {
                    per_family(snapshot, buf, (SERIES_DROPPED, SERIES_DROPPED_HELP), |f| {
                        f.dropped()
                    })
                }
                Source::ArityErrors => {
                    per_family(snapshot, buf, (ARITY_ERRORS, ARITY_ERRORS_HELP), |f| {
                        f.arity_errors()
                    })
                }
            }
        }
        buf
    }
}

/// One `NAME{family="..."}` sample per registered family, valued by `value`.
fn per_family(
    snapshot: &Snapshot,
    buf: &mut Vec<u8>,
    (name, help): (&str, &str),
    value: impl Fn(&dyn EncodeFamily) -> u64,
) {
    let mut families = snapshot.entries.iter().filter_map(|e| match &e.source {
        Source::Family(f) => Some(f),
        _ => None,
    });
    let Some(first) = families.next() else { return };
    write_family_header(buf, name, help, MetricType::Counter);
    for family in std::iter::once(first).chain(families) {
        buf.extend_from_slice(name.as_bytes());
        buf.extend_from_slice(b"{family=\"");
        write_label_value(buf, family.name());
        buf.extend_from_slice(b"\"} ");
        write_u64(buf, value(family.as_ref()));
        buf.push(b'\n');
    }
}

/// The process-wide registry the service's own metrics live in.
pub fn default_registry() -> &'static Registry {
    static DEFAULT: Lazy<Registry> = Lazy::new(Registry::new);
    &DEFAULT
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Counter, Gauge, Histogram};

    fn text(r: &Registry) -> String {
        String::from_utf8(r.encode(&mut TextEncoder::new()).to_vec()).unwrap()
    }

    #[test]
    fn duplicates_are_errors() {
        let r = Registry::new();
        r.register(Family::<Counter>::new("a_total", "h", &[]).unwrap())
            .unwrap();
        let again = r.register(Family::<Gauge>::new("a_total", "h", &[]).unwrap());
        assert_eq!(again.err(), Some(MetricError::Duplicate("a_total".into())));
        r.register(Family::<Histogram>::new("lat", "h", &[]).unwrap())
            .unwrap();
        let clash = r.register(Family::<Counter>::new("lat_count", "h", &[]).unwrap());
        assert_eq!(
            clash.err(),
            Some(MetricError::Duplicate("lat_count".into()))
        );
        let own = r.register(Family::<Counter>::new(SERIES_DROPPED, "h", &[]).unwrap());
        assert!(own.is_err());
    }

    #[test]
    fn families_come_out_sorted() {
        let r = Registry::new();
        for name in ["zeta", "alpha", "mid", "beta"] {
            r.register(Family::<Gauge>::new(name, "h", &[]).unwrap())
                .unwrap()
                .get(&[])
                .unwrap()
                .set(1.0);
        }
        let out = text(&r);
        let types: Vec<&str> = out
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        assert_eq!(
            types,
            ["alpha", "beta", "mid", ARITY_ERRORS, SERIES_DROPPED, "zeta"]
        );
    }

    #[test]
    fn series_dropped_reports_each_family() {
        let r = Registry::new();
        let f = r
            .register(
                Family::<Counter>::new("c_total", "h", &["id"])
                    .unwrap()
                    .with_series_cap(1)
                    .unwrap(),
            )
            .unwrap();
        assert!(f.get(&["1"]).is_some());
        assert!(f.get(&["2"]).is_none());
        assert!(f.get(&["3"]).is_none());
        let out = text(&r);
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
                    name: "b_present",
                    help: "Always here.",
                    kind: MetricType::Gauge,
                },
                Desc {
                    name: "b_missing",
                    help: "Never written.",
                    kind: MetricType::Gauge,
                },
            ]
        }
        fn collect(&self, out: &mut Collected<'_>) {
            out.sample(0, &[("v", "q\"")], 0.25);
        }
    }

    #[test]
    fn collectors_merge_in_order_and_skip_empty_families() {
        let r = Registry::new();
        r.register(Family::<Gauge>::new("a", "h", &[]).unwrap())
            .unwrap()
            .get(&[])
            .unwrap()
            .set(2.0);
        r.register_collector(Flaky).unwrap();
        assert!(matches!(
            r.register_collector(Flaky),
            Err(MetricError::Duplicate(_))
        ));
        let out = text(&r);
        assert!(!out.contains("b_missing"), "{out}");
        let a = out.find("# TYPE a gauge").unwrap();
        let b = out.find("# HELP b_present Always here.\n# TYPE b_present gauge\nb_present{v=\"q\\\"\"} 0.25\n").unwrap();
        assert!(a < b);
    }

    #[test]
    fn wrong_arity_has_its_own_family() {
        let r = Registry::new();
        let f = r
            .register(Family::<Counter>::new("calls_total", "h", &["a", "b"]).unwrap())
            .unwrap();
        assert!(f.get(&["only one"]).is_none());
        let out = text(&r);
        assert!(
            out.contains("\ntinymon_label_arity_errors_total{family=\"calls_total\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("\ntinymon_series_dropped_total{family=\"calls_total\"} 0\n"),
            "{out}"
        );
    }

    #[test]
    fn registration_while_scraping() {
        let r = Registry::new();
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0..crate::metrics::stress(200) {
                    r.register(Family::<Counter>::new(&format!("c{i}"), "h", &[]).unwrap())
                        .unwrap()
                        .get(&[])
                        .unwrap()
                        .inc();
                }
            });
            let mut enc = TextEncoder::new();
            let mut seen = 0;
            for _ in 0..crate::metrics::stress(200) {
                let out = std::str::from_utf8(r.encode(&mut enc)).unwrap();
                let now = out.matches("# TYPE c").count();
                assert!(now >= seen, "families disappeared: {seen} -> {now}");
                seen = now;
            }
        });
        assert_eq!(
            text(&r).matches("# TYPE c").count(),
            crate::metrics::stress(200)
        );
    }
}
