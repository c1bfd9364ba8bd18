//! A metric family: one name, fixed label names, one series per label set.
//!
//! # Lookup without locks or allocation
//!
//! Series are kept in an insert-only open-addressing hash table of
//! `AtomicPtr`s, sized at the power of two at or above twice the series
//! cap, so it never fills (256 KiB of pointers for the default cap of
//! 10,000: 32,768 slots). Looking up
//! an existing series hashes the label values, probes, and compares: plain
//! atomic loads, no lock, no allocation. A new series is built off to the
//! side and published with one compare-and-swap into the empty slot the probe
//! ended on; if another thread won that slot with the same labels, the loser
//! frees its copy and uses the winner's. Series are never removed, so a
//! `&M` handed out lives as long as the family.
//!
//! # Bounded cardinality
//!
//! `reserved` counts series created or being created; a new label set first
//! reserves a place with a compare-and-swap that refuses past the cap.
//! Beyond the cap nothing more is allocated: [`Family::get_or_create`] returns the
//! family's *overflow series*, whose every label value is
//! [`OVERFLOW_LABEL_VALUE`], and the family's `overflowed` counter (exported
//! as `tinymon_series_dropped_total{family="..."}`) goes up. So callers never
//! handle a missing series, nothing recorded is lost from the totals, and
//! memory stays bounded whatever label values arrive. The overflow series is
//! built by the first label set past the cap (once: a family holds one) and
//! written out only once something landed in it.
//!
//! # Label arity
//!
//! `Family<M, N>` has `N` label names and takes `&[&str; N]`, so the wrong
//! number of values does not compile.
//!
//! Encoding walks `order`, the series in creation order, so output is stable
//! from scrape to scrape.

use std::marker::PhantomData;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use once_cell::race::OnceBox;

use super::label_key::{hash_label_values, process_key, Key, LabelKey};
use super::labels::LabelSet;
use super::zeroed::zeroed_slice;
use super::{Counter, FamilyDesc, Labels, Metric, MetricError, MetricType, Value, Visitor};

/// The series cap a family gets unless built with [`Family::with_series_cap`].
pub const DEFAULT_SERIES_CAP: usize = 10_000;

/// The largest series cap accepted (the table is the power of two at or
/// above twice the cap).
pub const MAX_SERIES_CAP: usize = 1 << 24;

/// Every label value of a family's overflow series: label sets past the
/// series cap are all recorded there.
pub const OVERFLOW_LABEL_VALUE: &str = "__overflow__";

struct Series<M> {
    hash: u64,
    labels: LabelSet,
    metric: M,
}

impl<M> Series<M> {
    fn matches(&self, hash: u64, values: &[&str]) -> bool {
        self.hash == hash && self.labels.matches(values)
    }
}

/// A family of series of metric `M`, keyed by `N` label values.
///
/// ```
/// use tinymon::metrics::{Counter, Family};
/// let requests = Family::<Counter, 1>::new("requests_total", "Requests.", ["method"]).unwrap();
/// requests.get_or_create(&["GET"]).inc();
/// requests.get_or_create(&["GET"]).inc();
/// assert_eq!(requests.get(&["GET"]).map(Counter::get), Some(2));
/// assert!(requests.get(&["PUT"]).is_none(), "get never creates");
/// assert_eq!(requests.len(), 1);
/// ```
pub struct Family<M: Metric, const N: usize> {
    name: Box<str>,
    help: Box<str>,
    label_names: Box<[Box<str>]>,
    config: M::Config,
    cap: usize,
    /// Hash table, length a power of two ≥ 2 × cap. Null means empty.
    slots: Box<[AtomicPtr<Series<M>>]>,
    /// Series in creation order; `order[i]` is stored (Release) after the
    /// series won its slot, so a reader may briefly see null and skip it.
    order: Box<[AtomicPtr<Series<M>>]>,
    /// Series created or being created, never above `cap`.
    reserved: AtomicUsize,
    /// Next free index in `order`.
    published: AtomicUsize,
    /// Lookups of new label sets past the cap, recorded in `overflow`.
    overflowed: Counter,
    /// Where label sets past the cap are recorded: made by the first of
    /// them (see [`Family::overflow`]), so a family that never overflows
    /// never holds it.
    overflow: OnceBox<Series<M>>,
    /// The family owns its series (for Send/Sync and drop check).
    _owns: PhantomData<Box<Series<M>>>,
    /// The process's hash key, copied here so that a lookup reads it with
    /// the family's other fields instead of through a `OnceLock`
    /// (`label_key`; a lookup of 3 labels took 269 instructions through
    /// the lock, by callgrind's count).
    key: Key,
}

impl<M: Metric, const N: usize> std::fmt::Debug for Family<M, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Family")
            .field("name", &self.name)
            .field("label_names", &self.label_names)
            .field("series", &self.len())
            .field("cap", &self.cap)
            .finish_non_exhaustive()
    }
}

/// The parts of a new family that do not depend on its metric type, built
/// by one function rather than by a copy per family type.
struct Head {
    name: Box<str>,
    help: Box<str>,
    label_names: Box<[Box<str>]>,
}

impl Head {
    #[inline(never)]
    fn new(
        name: &str,
        help: &str,
        label_names: &[&str],
        kind: MetricType,
    ) -> Result<Self, MetricError> {
        let reserved: &[&str] = if kind == MetricType::Histogram {
            &["le"]
        } else {
            &[]
        };
        super::error::check_definition(name, help, label_names, reserved)?;
        let label_names: Box<[Box<str>]> = label_names.iter().map(|&n| n.into()).collect();
        Ok(Head {
            name: name.into(),
            help: help.into(),
            label_names,
        })
    }
}

impl<M: Metric, const N: usize> Family<M, N>
where
    M::Config: Default,
{
    /// A family with the metric's default configuration (default buckets for
    /// histograms) and the default series cap.
    pub fn new(name: &str, help: &str, label_names: [&str; N]) -> Result<Self, MetricError> {
        Self::with_config(name, help, label_names, M::Config::default())
    }
}

impl<M: Metric, const N: usize> Family<M, N> {
    /// A family whose series are built from `config` (buckets for histograms).
    // Not inlined: families are built once, and a copy per call site would
    // only grow the binary.
    #[inline(never)]
    pub fn with_config(
        name: &str,
        help: &str,
        label_names: [&str; N],
        config: M::Config,
    ) -> Result<Self, MetricError> {
        let head = Head::new(name, help, &label_names, M::TYPE)?;
        let mut family = Family {
            name: head.name,
            help: head.help,
            label_names: head.label_names,
            config,
            cap: 0,
            slots: Box::new([]),
            order: Box::new([]),
            reserved: AtomicUsize::new(0),
            published: AtomicUsize::new(0),
            overflowed: Counter::new(),
            overflow: OnceBox::new(),
            _owns: PhantomData,
            key: *process_key(),
        };
        family.set_cap(if N == 0 { 1 } else { DEFAULT_SERIES_CAP });
        Ok(family)
    }

    /// Sets how many label sets this family holds before new ones go to its
    /// overflow series.
    pub fn with_series_cap(mut self, cap: usize) -> Result<Self, MetricError> {
        if cap == 0 || cap > MAX_SERIES_CAP {
            return Err(MetricError::InvalidSeriesCap(self.name.to_string(), cap));
        }
        self.set_cap(cap);
        Ok(self)
    }

    fn set_cap(&mut self, cap: usize) {
        self.cap = cap;
        self.slots = zeroed_slice((cap * 2).next_power_of_two());
        self.order = zeroed_slice(cap);
    }

    /// The family name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The family's help text.
    pub fn help(&self) -> &str {
        &self.help
    }

    /// Lookups of new label sets past the series cap, each recorded in the
    /// overflow series instead.
    pub fn overflowed(&self) -> u64 {
        self.overflowed.get()
    }

    /// The overflow series (every label value [`OVERFLOW_LABEL_VALUE`]),
    /// made on the first call or the first label set past the cap. Threads
    /// that race to make it keep the first one published (the others drop
    /// theirs), so making it takes no lock; it is exported once a label
    /// set has overflowed.
    pub fn overflow(&self) -> &M {
        let series = self.overflow.get_or_init(|| {
            Box::new(Series {
                hash: 0,
                labels: LabelSet::new(&self.label_names, &[OVERFLOW_LABEL_VALUE; N]),
                metric: M::with_config(&self.config),
            })
        });
        &series.metric
    }

    /// Number of series, not counting the overflow series.
    pub fn len(&self) -> usize {
        self.published.load(Ordering::Relaxed)
    }

    /// True when no series exists yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The series for `values` (one per label name, in order), created on
    /// first use. Past the series cap, a new label set gets the overflow
    /// series (see the module docs). Lock-free; allocates only when it
    /// creates a series.
    #[inline]
    pub fn get_or_create(&self, values: &[&str; N]) -> &M {
        self.get_or_create_hashed(values, hash_label_values(&self.key, values))
    }

    /// [`Family::get_or_create`] with the label values hashed by the
    /// caller, who looks the same values up in several families.
    #[inline]
    pub fn get_or_create_by_key(&self, key: &LabelKey<'_, N>) -> &M {
        self.get_or_create_hashed(key.values(), key.hash())
    }

    /// The lookup of both: `hash` is the keyed hash of `values`.
    #[inline(always)]
    fn get_or_create_hashed(&self, values: &[&str; N], hash: u64) -> &M {
        match self.find(values, hash) {
            Ok(metric) => metric,
            Err(at) => self.insert(values, hash, at),
        }
    }

    /// The series for `values` if it exists; never creates one.
    #[inline]
    pub fn get(&self, values: &[&str; N]) -> Option<&M> {
        self.find(values, hash_label_values(&self.key, values)).ok()
    }

    /// Whether `metric` is this family's overflow series: what a lookup
    /// past the series cap returns. A caller that caches handles by label
    /// values should not cache that one, or later lookups of the same
    /// values would skip the `overflowed` count.
    #[inline]
    pub fn is_overflow(&self, metric: &M) -> bool {
        self.overflow
            .get()
            .is_some_and(|s| ptr::eq(&s.metric, metric))
    }

    /// Probes for `values`: the series, or the empty slot the probe ended on.
    #[inline]
    fn find(&self, values: &[&str; N], hash: u64) -> Result<&M, usize> {
        let mask = self.slots.len() - 1;
        let mut at = hash as usize & mask;
        loop {
            // Acquire pairs with the Release of the insert's CAS: a non-null
            // pointer comes with the fully built series behind it.
            let p = self.slots[at].load(Ordering::Acquire);
            if p.is_null() {
                return Err(at);
            }
            // SAFETY: a non-null slot points to a series published by
            // `insert`, which is never freed before the family (`Drop`), and
            // `&self` keeps the family alive for the returned borrow.
            let series = unsafe { &*p };
            if series.matches(hash, values) {
                return Ok(&series.metric);
            }
            at = (at + 1) & mask;
        }
    }

    /// Slots a lookup of `key` visits before it finds its series (or an
    /// empty slot).
    #[cfg(test)]
    pub(super) fn probe_len(&self, key: &LabelKey<'_, N>) -> usize {
        let mask = self.slots.len() - 1;
        let mut at = key.hash() as usize & mask;
        let mut visited = 1;
        loop {
            let p = self.slots[at].load(Ordering::Acquire);
            // SAFETY: as in `find`.
            if p.is_null() || unsafe { &*p }.matches(key.hash(), key.values()) {
                return visited;
            }
            at = (at + 1) & mask;
            visited += 1;
        }
    }

    #[cold]
    fn insert(&self, values: &[&str; N], hash: u64, first_empty: usize) -> &M {
        // Relaxed is enough: `reserved` only bounds how many series exist; it
        // publishes no memory.
        let reserved = self
            .reserved
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.cap).then_some(n + 1)
            });
        if reserved.is_err() {
            self.overflowed.inc();
            return self.overflow();
        }
        let fresh = Box::into_raw(Box::new(Series {
            hash,
            labels: LabelSet::new(&self.label_names, values),
            metric: M::with_config(&self.config),
        }));
        let mask = self.slots.len() - 1;
        // Slots before `first_empty` on the probe path were full and did not
        // match; they never change, so an equal series can only be at or after it.
        let mut at = first_empty;
        loop {
            match self.slots[at].compare_exchange(
                ptr::null_mut(),
                fresh,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    // Winners number at most `cap`, so the index is in bounds.
                    let index = self.published.fetch_add(1, Ordering::Relaxed);
                    self.order[index].store(fresh, Ordering::Release);
                    // SAFETY: `fresh` came from `Box::into_raw` above and is
                    // now owned by the table, which frees it only in `Drop`.
                    return unsafe { &(*fresh).metric };
                }
                Err(existing) => {
                    // SAFETY: as in `find`: a published series lives as long
                    // as the family.
                    let series = unsafe { &*existing };
                    if series.matches(hash, values) {
                        // SAFETY: `fresh` came from `Box::into_raw` and lost
                        // every CAS, so no other thread ever saw it.
                        drop(unsafe { Box::from_raw(fresh) });
                        self.reserved.fetch_sub(1, Ordering::Relaxed);
                        return &series.metric;
                    }
                    at = (at + 1) & mask;
                }
            }
        }
    }

    /// Calls `f` with the labels and metric of every series, in creation
    /// order (the overflow series is not included).
    pub fn for_each(&self, mut f: impl FnMut(Labels<'_>, &M)) {
        self.each_series(|s| f(Labels::series(&self.label_names, &s.labels), &s.metric));
    }

    fn each_series(&self, f: impl FnMut(&Series<M>)) {
        self.series().for_each(f);
    }

    /// The published series in creation order.
    #[inline]
    fn series(&self) -> impl Iterator<Item = &Series<M>> {
        let published = self.published.load(Ordering::Acquire);
        self.order[..published].iter().filter_map(|slot| {
            let p = slot.load(Ordering::Acquire);
            // SAFETY: as in `find`: a published series lives as long as the
            // family, which `&self` borrows for the iterator's life.
            (!p.is_null()).then(|| unsafe { &*p })
        })
    }
}

/// What the registry needs from a family, whatever its metric type.
pub(crate) trait ReadFamily: Send + Sync {
    fn desc(&self) -> FamilyDesc<'_>;
    /// Lookups past the series cap; `None` for unlabelled metrics.
    fn overflowed(&self) -> Option<u64>;
    /// Hands the family and every series to `out`; nothing for a family
    /// with no series yet (client_golang does the same).
    fn read<'r>(&'r self, out: &mut dyn Visitor<'r>);
}

impl<M: Metric, const N: usize> ReadFamily for Family<M, N> {
    fn desc(&self) -> FamilyDesc<'_> {
        FamilyDesc {
            name: &self.name,
            help: &self.help,
            kind: M::TYPE,
        }
    }

    fn overflowed(&self) -> Option<u64> {
        Some(self.overflowed.get())
    }

    fn read<'r>(&'r self, out: &mut dyn Visitor<'r>) {
        if self.is_empty() {
            return;
        }
        out.family(self.desc());
        // Counter and gauge readings go out in batches, one dynamic call
        // per batch; other metrics one series at a time.
        let mut batch = [(Labels::NONE, Value::Int(0)); BATCH];
        let mut len = 0;
        let overflow = (self.overflowed.get() > 0)
            .then(|| self.overflow.get())
            .flatten();
        for series in self.series().chain(overflow) {
            let labels = Labels::series(&self.label_names, &series.labels);
            match series.metric.value() {
                Some(value) => {
                    batch[len] = (labels, value);
                    len += 1;
                    if len == BATCH {
                        out.values(&batch);
                        len = 0;
                    }
                }
                None => {
                    if len > 0 {
                        out.values(&batch[..len]);
                        len = 0;
                    }
                    series.metric.read(labels, out);
                }
            }
        }
        if len > 0 {
            out.values(&batch[..len]);
        }
    }
}

/// Counter and gauge readings per [`Visitor::values`] call.
const BATCH: usize = 32;

impl<M: Metric, const N: usize> Drop for Family<M, N> {
    fn drop(&mut self) {
        // `&mut self`: no insert is in progress, so every winner is in `order`.
        for slot in self.order.iter() {
            let p = slot.load(Ordering::Relaxed);
            if !p.is_null() {
                // SAFETY: each published series is owned by the family alone.
                drop(unsafe { Box::from_raw(p) });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Gauge, Histogram, HistogramReading, Value};

    fn quoted(labels: &Labels<'_>) -> String {
        String::from_utf8(labels.quoted().unwrap().to_vec()).unwrap()
    }

    /// Records what a family hands to a visitor, as text.
    #[derive(Default)]
    struct Seen(Vec<String>);

    impl<'r> Visitor<'r> for Seen {
        fn family(&mut self, desc: FamilyDesc<'r>) {
            self.0.push(format!("{} {}", desc.kind.as_str(), desc.name));
        }
        fn values(&mut self, samples: &[(Labels<'_>, Value)]) {
            for (labels, value) in samples {
                self.0.push(format!("{} {value:?}", quoted(labels)));
            }
        }
        fn histogram(&mut self, labels: Labels<'_>, r: &HistogramReading<'_>) {
            let buckets: Vec<String> = r.buckets().map(|(b, n)| format!("{b}:{n}")).collect();
            self.0.push(format!(
                "{} [{}] sum={} count={}",
                quoted(&labels),
                buckets.join(" "),
                r.sum(),
                r.count()
            ));
        }
    }

    fn seen<F: ReadFamily>(f: &F) -> Vec<String> {
        let mut v = Seen::default();
        f.read(&mut v);
        v.0
    }

    #[test]
    fn same_labels_same_series() {
        let f = Family::<Counter, 2>::new("c_total", "help", ["a", "b"]).unwrap();
        f.get_or_create(&["x", "y"]).inc();
        f.get_or_create(&["x", "y"]).inc();
        f.get_or_create(&["xy", ""]).inc();
        f.get_or_create(&["", "xy"]).inc();
        assert_eq!(f.len(), 3);
        assert_eq!(f.get(&["x", "y"]).unwrap().get(), 2);
        assert!(f.get(&["y", "x"]).is_none());
        assert_eq!(f.len(), 3, "get does not create");
        let mut seen = Vec::new();
        f.for_each(|l, c| {
            let values: Vec<&str> = l.iter().map(|(_, v)| v).collect();
            seen.push((values.join("|"), c.get()))
        });
        assert_eq!(
            seen,
            [
                ("x|y".to_string(), 2),
                ("xy|".to_string(), 1),
                ("|xy".to_string(), 1)
            ]
        );
    }

    #[test]
    fn past_the_cap_label_sets_share_the_overflow_series() {
        let f = Family::<Counter, 1>::new("c_total", "help", ["id"])
            .unwrap()
            .with_series_cap(3)
            .unwrap();
        for id in ["a", "b", "c", "d", "e", "d"] {
            f.get_or_create(&[id]).inc();
        }
        assert_eq!(f.len(), 3);
        assert_eq!(f.overflowed(), 3);
        assert_eq!(f.overflow().get(), 3);
        assert!(f.get(&["d"]).is_none(), "past the cap nothing is created");
        // Existing series keep working at the cap.
        f.get_or_create(&["a"]).inc();
        assert_eq!(f.get(&["a"]).unwrap().get(), 2);
        assert_eq!(
            seen(&f),
            [
                "counter c_total",
                "id=\"a\" Int(2)",
                "id=\"b\" Int(1)",
                "id=\"c\" Int(1)",
                "id=\"__overflow__\" Int(3)"
            ]
        );
        for bad in [0, MAX_SERIES_CAP + 1, usize::MAX] {
            assert!(Family::<Counter, 1>::new("c", "h", ["x"])
                .unwrap()
                .with_series_cap(bad)
                .is_err());
        }
    }

    #[test]
    fn cap_holds_under_concurrent_inserts() {
        let f = Family::<Counter, 1>::new("c_total", "help", ["id"])
            .unwrap()
            .with_series_cap(100)
            .unwrap();
        let per_thread = crate::metrics::stress(1_000);
        std::thread::scope(|s| {
            for t in 0..4 {
                let f = &f;
                s.spawn(move || {
                    for i in 0..per_thread {
                        // Overlapping ids across threads race on the same slots.
                        let id = format!("{}", (i * 7 + t) % 500);
                        f.get_or_create(&[&id]).inc();
                    }
                });
            }
        });
        assert_eq!(f.len(), (4 * per_thread).min(100));
        let mut total = 0;
        let mut ids = std::collections::HashSet::new();
        f.for_each(|l, c| {
            total += c.get();
            assert!(
                ids.insert(l.iter().next().unwrap().1.to_string()),
                "duplicate series {l:?}"
            );
        });
        assert_eq!(f.overflow().get(), f.overflowed());
        assert_eq!(
            total + f.overflowed(),
            4 * per_thread as u64,
            "nothing lost"
        );
    }

    #[test]
    fn reads_labels_and_skips_when_empty() {
        let f = Family::<Histogram, 1>::with_config(
            "h_seconds",
            "Time.",
            ["path"],
            crate::metrics::Buckets::new(&[1.0]).unwrap(),
        )
        .unwrap();
        assert!(seen(&f).is_empty());
        f.get_or_create(&["a\"b\\c\nd"]).observe(0.5);
        assert_eq!(
            seen(&f),
            [
                "histogram h_seconds",
                "path=\"a\\\"b\\\\c\\nd\" [1:1 inf:1] sum=0.5 count=1"
            ]
        );
    }

    #[test]
    fn histogram_reserves_le() {
        assert_eq!(
            Family::<Histogram, 1>::new("h", "help", ["le"]).err(),
            Some(MetricError::ReservedLabelName("le".into()))
        );
        assert!(Family::<Gauge, 1>::new("c", "help", ["le"]).is_ok());
    }
}
