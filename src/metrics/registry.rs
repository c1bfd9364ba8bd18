//! The set of families and collectors a scrape reads, in name order.
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
//! A scrape is a walk: [`Registry::read`] hands every family to a
//! [`Visitor`], and an encoder is such a visitor. Families come out in name
//! order; a [`Collector`]'s families come out together, at the place of the
//! first of them.

use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Arc;

use once_cell::sync::Lazy;
use parking_lot::Mutex;

use super::collector::Collected;
use super::error::check_metric_name;
use super::family::ReadFamily;
use super::{
    Buckets, Collector, Counter, Family, FamilyDesc, Gauge, Histogram, Labels, Metric, MetricError,
    MetricType, Value, Visitor,
};

/// Name of the family reporting, per labelled family, the lookups of new
/// label sets past its series cap (recorded in its overflow series).
pub const SERIES_DROPPED: &str = "tinymon_series_dropped_total";
const SERIES_DROPPED_HELP: &str = "New label sets past their family's series cap; each was recorded in the family's overflow series (label values \"__overflow__\") instead.";

/// An unlabelled metric under a name: a family with exactly one series.
struct Single<M> {
    name: Box<str>,
    help: Box<str>,
    metric: Arc<M>,
}

impl<M: Metric> ReadFamily for Single<M> {
    fn desc(&self) -> FamilyDesc<'_> {
        FamilyDesc {
            name: &self.name,
            help: &self.help,
            kind: M::TYPE,
        }
    }

    fn overflowed(&self) -> Option<u64> {
        None
    }

    fn read<'r>(&'r self, out: &mut dyn Visitor<'r>) {
        out.family(self.desc());
        self.metric.read(Labels::NONE, out);
    }
}

#[derive(Clone)]
enum Source {
    Family(Arc<dyn ReadFamily>),
    Collector(Arc<dyn Collector>),
    Overflowed,
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
    /// Names in use, including histograms' `_bucket`, `_sum`, `_count` and
    /// every family of each collector.
    taken: Vec<Arc<str>>,
}

/// Families and collectors, read together in name order.
///
/// Own one (`Arc<Registry>`) per service, or share the process-wide
/// [`default_registry`].
///
/// ```
/// use std::sync::Arc;
/// use tinymon::encode::TextEncoder;
/// use tinymon::metrics::{Counter, Family, Registry};
///
/// let registry = Arc::new(Registry::new());
/// let jobs = registry.counter("jobs_total", "Jobs run.").unwrap();
/// let errors = registry
///     .register(Family::<Counter, 1>::new("job_errors_total", "Jobs failed.", ["kind"]).unwrap())
///     .unwrap();
/// jobs.inc();
/// errors.get_or_create(&["timeout"]).inc();
///
/// let text = String::from_utf8(TextEncoder::new().encode(&registry).to_vec()).unwrap();
/// assert!(text.contains("\njobs_total 1\n"));
/// assert!(text.contains("\njob_errors_total{kind=\"timeout\"} 1\n"));
/// ```
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

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.snapshot().entries.iter().map(|e| &*e.name).collect();
        f.debug_struct("Registry")
            .field("families", &names)
            .finish()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// A registry holding only `tinymon_series_dropped_total`.
    pub fn new() -> Self {
        let dropped: Arc<str> = SERIES_DROPPED.into();
        let first = Arc::new(Snapshot {
            entries: vec![Entry {
                name: dropped.clone(),
                source: Source::Overflowed,
            }],
            taken: vec![dropped],
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

    /// Adds a labelled family and returns a shared handle to it.
    #[inline(never)]
    pub fn register<M: Metric, const N: usize>(
        &self,
        family: Family<M, N>,
    ) -> Result<Arc<Family<M, N>>, MetricError> {
        let family = Arc::new(family);
        self.add(family.name(), M::TYPE, Source::Family(family.clone()))?;
        Ok(family)
    }

    /// Adds an unlabelled counter.
    pub fn counter(&self, name: &str, help: &str) -> Result<Arc<Counter>, MetricError> {
        self.single(name, help, Counter::new())
    }

    /// Adds an unlabelled gauge.
    pub fn gauge(&self, name: &str, help: &str) -> Result<Arc<Gauge>, MetricError> {
        self.single(name, help, Gauge::new())
    }

    /// Adds an unlabelled histogram over `buckets`.
    pub fn histogram(
        &self,
        name: &str,
        help: &str,
        buckets: Buckets,
    ) -> Result<Arc<Histogram>, MetricError> {
        self.single(name, help, Histogram::new(buckets))
    }

    fn single<M: Metric>(&self, name: &str, help: &str, metric: M) -> Result<Arc<M>, MetricError> {
        super::error::check_definition(name, help, &[], &[])?;
        let metric = Arc::new(metric);
        let single = Single {
            name: name.into(),
            help: help.into(),
            metric: metric.clone(),
        };
        self.add(name, M::TYPE, Source::Family(Arc::new(single)))?;
        Ok(metric)
    }

    fn add(&self, name: &str, kind: MetricType, source: Source) -> Result<(), MetricError> {
        let mut names = vec![name.to_owned()];
        if kind == MetricType::Histogram {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.push(format!("{name}{suffix}"));
            }
        }
        self.insert(&names, name.into(), source)
    }

    /// Adds a collector; its family names must be valid and unused.
    pub fn register_collector(&self, collector: impl Collector) -> Result<(), MetricError> {
        let descs = collector.descs();
        for d in descs {
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
        let Some(first) = descs.first() else {
            return Ok(());
        };
        let names: Vec<String> = descs.iter().map(|d| d.name.to_owned()).collect();
        let first: Arc<str> = first.name.into();
        self.insert(&names, first, Source::Collector(Arc::new(collector)))
    }

    fn insert(
        &self,
        names: &[String],
        at_name: Arc<str>,
        source: Source,
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
        let at = next.entries.partition_point(|e| e.name < at_name);
        next.entries.insert(
            at,
            Entry {
                name: at_name,
                source,
            },
        );
        self.publish(&mut all, Arc::new(next));
        Ok(())
    }

    /// Hands every family with samples to `out`, in name order. Lock-free
    /// apart from each histogram's scrape lock; allocation-free.
    pub fn read<'r>(&'r self, out: &mut dyn Visitor<'r>) {
        let snapshot = self.snapshot();
        for entry in &snapshot.entries {
            match &entry.source {
                Source::Family(family) => family.read(out),
                Source::Collector(collector) => {
                    collector.collect(&mut Collected::new(collector.descs(), out));
                }
                Source::Overflowed => read_overflowed(snapshot, out),
            }
        }
    }
}

/// One `tinymon_series_dropped_total{family="..."}` sample per labelled
/// family.
fn read_overflowed<'r>(snapshot: &'r Snapshot, out: &mut dyn Visitor<'r>) {
    let mut families = snapshot.entries.iter().filter_map(|e| match &e.source {
        Source::Family(f) => f.overflowed().map(|n| (f.desc().name, n)),
        _ => None,
    });
    let Some(first) = families.next() else { return };
    out.family(FamilyDesc {
        name: SERIES_DROPPED,
        help: SERIES_DROPPED_HELP,
        kind: MetricType::Counter,
    });
    for (name, n) in std::iter::once(first).chain(families) {
        out.values(&[(Labels::pairs(&[("family", name)]), Value::Int(n))]);
    }
}

/// The process-wide registry, for code that has no registry handed to it.
pub fn default_registry() -> Arc<Registry> {
    static DEFAULT: Lazy<Arc<Registry>> = Lazy::new(|| Arc::new(Registry::new()));
    DEFAULT.clone()
}
