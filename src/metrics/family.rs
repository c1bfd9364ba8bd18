//! A metric family: one name, fixed label names, one series per label set.
//!
//! # Lookup without locks or allocation
//!
//! Series are kept in an insert-only open-addressing hash table of
//! `AtomicPtr`s, sized at twice the series cap so it never fills. Looking up
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
//! reserves a place with a compare-and-swap that refuses past the cap. Beyond
//! the cap nothing is allocated: the lookup returns `None` and the family's
//! `dropped` counter (exported as `tinymon_series_dropped_total`) goes up.
//!
//! Encoding walks `order`, the series in creation order, so output is stable
//! from scrape to scrape.

use std::marker::PhantomData;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use super::{Counter, Metric, MetricError};
use crate::encode::{write_family_header, write_label_pairs, MetricType, SeriesWriter};

/// The series cap a family gets unless built with [`Family::with_series_cap`].
pub const DEFAULT_SERIES_CAP: usize = 10_000;

/// The largest series cap accepted (the table is sized at twice the cap).
pub const MAX_SERIES_CAP: usize = 1 << 24;

struct Series<M> {
    hash: u64,
    values: Box<[Box<str>]>,
    /// Escaped `a="x",b="y"`, built once at creation for the encoder.
    labels: Box<str>,
    metric: M,
}

impl<M> Series<M> {
    fn matches(&self, hash: u64, values: &[&str]) -> bool {
        self.hash == hash
            && self.values.len() == values.len()
            && self.values.iter().zip(values).all(|(a, b)| **a == **b)
    }
}

/// A family of series of metric `M`, keyed by label values.
///
/// ```
/// use tinymon::metrics::{Counter, Family};
/// let requests = Family::<Counter>::new("requests_total", "Requests.", &["method"]).unwrap();
/// requests.get(&["GET"]).unwrap().inc();
/// requests.get(&["GET"]).unwrap().inc();
/// assert_eq!(requests.get(&["GET"]).unwrap().get(), 2);
/// assert_eq!(requests.len(), 1);
/// ```
pub struct Family<M: Metric> {
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
    /// Label sets refused because the family was at its cap.
    dropped: Counter,
    /// Label sets refused because their number of values was wrong: a bug
    /// in the caller, not load, so it is counted apart.
    arity_errors: Counter,
    /// The family owns its series (for Send/Sync and drop check).
    _owns: PhantomData<Box<Series<M>>>,
}

impl<M: Metric> Family<M>
where
    M::Config: Default,
{
    /// A family with the metric's default configuration (default buckets for
    /// histograms) and the default series cap.
    pub fn new(name: &str, help: &str, label_names: &[&str]) -> Result<Self, MetricError> {
        Self::with_config(name, help, label_names, M::Config::default())
    }
}

impl<M: Metric> Family<M> {
    /// A family whose series are built from `config` (buckets for histograms).
    pub fn with_config(
        name: &str,
        help: &str,
        label_names: &[&str],
        config: M::Config,
    ) -> Result<Self, MetricError> {
        let reserved: &[&str] = if M::TYPE == MetricType::Histogram {
            &["le"]
        } else {
            &[]
        };
        super::error::check_definition(name, help, label_names, reserved)?;
        let mut family = Family {
            name: name.into(),
            help: help.into(),
            label_names: label_names.iter().map(|&n| n.into()).collect(),
            config,
            cap: 0,
            slots: Box::new([]),
            order: Box::new([]),
            reserved: AtomicUsize::new(0),
            published: AtomicUsize::new(0),
            dropped: Counter::new(),
            arity_errors: Counter::new(),
            _owns: PhantomData,
        };
        family.set_cap(if label_names.is_empty() {
            1
        } else {
            DEFAULT_SERIES_CAP
        });
        Ok(family)
    }

    /// Sets how many label sets this family accepts before dropping new ones.
    pub fn with_series_cap(mut self, cap: usize) -> Result<Self, MetricError> {
        if cap == 0 || cap > MAX_SERIES_CAP {
            return Err(MetricError::InvalidSeriesCap(self.name.to_string(), cap));
        }
        self.set_cap(cap);
        Ok(self)
    }

    fn set_cap(&mut self, cap: usize) {
        self.cap = cap;
        self.slots = zeroed_slots((cap * 2).next_power_of_two());
        self.order = zeroed_slots(cap);
    }

    /// The family name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The family's help text.
    pub fn help(&self) -> &str {
        &self.help
    }

    /// Label sets refused because the family was at its cap.
    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }

    /// Lookups refused because the number of values did not match the
    /// label names.
    pub fn arity_errors(&self) -> u64 {
        self.arity_errors.get()
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.published.load(Ordering::Relaxed)
    }

    /// True when no series exists yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The series for `values` (one per label name, in order), created on
    /// first use. `None` when the family is at its series cap (counted in
    /// [`Family::dropped`]) or the number of values is wrong (counted in
    /// [`Family::arity_errors`]).
    #[inline]
    pub fn get(&self, values: &[&str]) -> Option<&M> {
        if values.len() != self.label_names.len() {
            self.arity_errors.inc();
            return None;
        }
        let hash = hash_label_values(values);
        let mask = self.slots.len() - 1;
        let mut at = hash as usize & mask;
        loop {
            // Acquire pairs with the Release of the insert's CAS: a non-null
            // pointer comes with the fully built series behind it.
            let p = self.slots[at].load(Ordering::Acquire);
            if p.is_null() {
                return self.insert(values, hash, at);
            }
            // SAFETY: published series are never freed before the family.
            let series = unsafe { &*p };
            if series.matches(hash, values) {
                return Some(&series.metric);
            }
            at = (at + 1) & mask;
        }
    }

    #[cold]
    fn insert(&self, values: &[&str], hash: u64, first_empty: usize) -> Option<&M> {
        // Relaxed is enough: `reserved` only bounds how many series exist; it
        // publishes no memory.
        let reserved = self
            .reserved
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.cap).then_some(n + 1)
            });
        if reserved.is_err() {
            self.dropped.inc();
            return None;
        }
        let mut labels = Vec::new();
        write_label_pairs(&mut labels, &self.label_names, values);
        let fresh = Box::into_raw(Box::new(Series {
            hash,
            values: values.iter().map(|&v| v.into()).collect(),
            labels: String::from_utf8(labels)
                .expect("escaping keeps UTF-8")
                .into_boxed_str(),
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
                    // SAFETY: just published; lives as long as the family.
                    return Some(unsafe { &(*fresh).metric });
                }
                Err(existing) => {
                    // SAFETY: as in `get`.
                    let series = unsafe { &*existing };
                    if series.matches(hash, values) {
                        // SAFETY: `fresh` was never shared.
                        drop(unsafe { Box::from_raw(fresh) });
                        self.reserved.fetch_sub(1, Ordering::Relaxed);
                        return Some(&series.metric);
                    }
                    at = (at + 1) & mask;
                }
            }
        }
    }

    /// Calls `f` with the label values and metric of every series, in
    /// creation order.
    pub fn for_each(&self, mut f: impl FnMut(&[Box<str>], &M)) {
        self.each_series(|s| f(&s.values, &s.metric));
    }

    fn each_series(&self, mut f: impl FnMut(&Series<M>)) {
        let published = self.published.load(Ordering::Acquire);
        for slot in &self.order[..published] {
            let p = slot.load(Ordering::Acquire);
            if !p.is_null() {
                // SAFETY: as in `get`.
                f(unsafe { &*p });
            }
        }
    }
}

/// What the registry needs from a family, whatever its metric type.
pub(crate) trait EncodeFamily: Send + Sync {
    fn name(&self) -> &str;
    fn dropped(&self) -> u64;
    fn arity_errors(&self) -> u64;
    fn encode(&self, buf: &mut Vec<u8>);
}

impl<M: Metric> EncodeFamily for Family<M> {
    fn name(&self) -> &str {
        &self.name
    }

    fn dropped(&self) -> u64 {
        self.dropped.get()
    }

    fn arity_errors(&self) -> u64 {
        self.arity_errors.get()
    }

    /// Writes HELP, TYPE and every series; nothing for a family with no
    /// series yet (client_golang does the same).
    fn encode(&self, buf: &mut Vec<u8>) {
        if self.is_empty() {
            return;
        }
        write_family_header(buf, &self.name, &self.help, M::TYPE);
        self.each_series(|series| {
            series
                .metric
                .encode(&mut SeriesWriter::new(buf, &self.name, &series.labels));
        });
    }
}

impl<M: Metric> Drop for Family<M> {
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

/// A slice of null pointers from zeroed memory: large tables come straight
/// from fresh pages, so unused slots cost address space, not resident memory.
fn zeroed_slots<T>(len: usize) -> Box<[AtomicPtr<T>]> {
    if len == 0 {
        return Box::new([]);
    }
    let layout = std::alloc::Layout::array::<AtomicPtr<T>>(len).expect("slot table size");
    // SAFETY: layout has non-zero size; an all-zero AtomicPtr is null, a valid
    // value; the pointer and length describe exactly that allocation, which
    // the Box then owns and frees with the same layout.
    unsafe {
        let p = std::alloc::alloc_zeroed(layout) as *mut AtomicPtr<T>;
        if p.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        Box::from_raw(ptr::slice_from_raw_parts_mut(p, len))
    }
}

/// FxHash-style word-at-a-time hash of label values with a murmur3 finish.
/// Label values in this service come from fixed sets (routes, methods,
/// statuses), and the series cap bounds the table, so a keyed hash is not
/// needed to resist flooding; collisions cost a comparison, never a wrong
/// series.
#[inline]
fn hash_label_values(values: &[&str]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mix = |h: u64, w: u64| (h.rotate_left(5) ^ w).wrapping_mul(K);
    let mut h = values.len() as u64;
    for v in values {
        let b = v.as_bytes();
        let n = b.len();
        // The length in the top bits separates ["ab", ""] from ["a", "b"].
        let len_tag = (n as u64) << 56;
        if n <= 8 {
            h = mix(h, read_short(b) ^ len_tag);
        } else {
            let mut at = 0;
            while at + 8 < n {
                h = mix(h, read_u64(&b[at..]));
                at += 8;
            }
            // The last word overlaps the previous one instead of padding.
            h = mix(h, read_u64(&b[n - 8..]) ^ len_tag);
        }
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

#[inline]
fn read_u64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().expect("8 bytes"))
}

/// Up to 8 bytes as one word, with overlapping loads rather than a copy.
#[inline]
fn read_short(b: &[u8]) -> u64 {
    let n = b.len();
    if n == 8 {
        read_u64(b)
    } else if n >= 4 {
        let lo = u32::from_le_bytes(b[..4].try_into().expect("4 bytes"));
        let hi = u32::from_le_bytes(b[n - 4..].try_into().expect("4 bytes"));
        u64::from(lo) | u64::from(hi) << 32
    } else if n > 0 {
        u64::from(b[0]) | u64::from(b[n / 2]) << 8 | u64::from(b[n - 1]) << 16
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Gauge, Histogram};

    #[test]
    fn same_labels_same_series() {
        let f = Family::<Counter>::new("c_total", "help", &["a", "b"]).unwrap();
        f.get(&["x", "y"]).unwrap().inc();
        f.get(&["x", "y"]).unwrap().inc();
        f.get(&["xy", ""]).unwrap().inc();
        f.get(&["", "xy"]).unwrap().inc();
        assert_eq!(f.len(), 3);
        assert_eq!(f.get(&["x", "y"]).unwrap().get(), 2);
        let mut seen = Vec::new();
        f.for_each(|v, c| seen.push((v.join("|"), c.get())));
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
    fn wrong_arity_is_dropped_not_created() {
        let f = Family::<Gauge>::new("g", "help", &["a"]).unwrap();
        assert!(f.get(&["x", "y"]).is_none());
        assert!(f.get(&[]).is_none());
        assert_eq!(f.len(), 0);
        assert_eq!(f.arity_errors(), 2);
        assert_eq!(f.dropped(), 0, "not counted as a cap drop");
    }

    #[test]
    fn cap_bounds_series_and_counts_drops() {
        let f = Family::<Counter>::new("c_total", "help", &["id"])
            .unwrap()
            .with_series_cap(3)
            .unwrap();
        for id in ["a", "b", "c", "d", "e"] {
            if let Some(c) = f.get(&[id]) {
                c.inc();
            }
        }
        assert_eq!(f.len(), 3);
        assert_eq!(f.dropped(), 2);
        // Existing series keep working at the cap.
        f.get(&["a"]).unwrap().inc();
        assert_eq!(f.get(&["a"]).unwrap().get(), 2);
        for bad in [0, MAX_SERIES_CAP + 1, usize::MAX] {
            assert!(Family::<Counter>::new("c", "h", &["x"])
                .unwrap()
                .with_series_cap(bad)
                .is_err());
        }
    }

    #[test]
    fn cap_holds_under_concurrent_inserts() {
        let f = Family::<Counter>::new("c_total", "help", &["id"])
            .unwrap()
            .with_series_cap(100)
            .unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let f = &f;
                s.spawn(move || {
                    for i in 0..crate::metrics::stress(1_000) {
                        // Overlapping ids across threads race on the same slots.
                        let id = format!("{}", (i * 7 + t) % 500);
                        if let Some(c) = f.get(&[&id]) {
                            c.inc();
                        }
                    }
                });
            }
        });
        assert_eq!(f.len(), (4 * crate::metrics::stress(1_000)).min(100));
        let mut total = 0;
        let mut ids = std::collections::HashSet::new();
        f.for_each(|v, c| {
            total += c.get();
            assert!(ids.insert(v[0].to_string()), "duplicate series {:?}", v);
        });
        assert_eq!(
            total + f.dropped(),
            4 * crate::metrics::stress(1_000) as u64
        );
    }

    #[test]
    fn encodes_escaped_labels_and_skips_when_empty() {
        let f = Family::<Histogram>::with_config(
            "h_seconds",
            "Time.",
            &["path"],
            crate::metrics::Buckets::new(&[1.0]).unwrap(),
        )
        .unwrap();
        let mut buf = Vec::new();
        f.encode(&mut buf);
        assert!(buf.is_empty());
        f.get(&["a\"b\\c\nd"]).unwrap().observe(0.5);
        f.encode(&mut buf);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "# HELP h_seconds Time.\n# TYPE h_seconds histogram\n\
             h_seconds_bucket{path=\"a\\\"b\\\\c\\nd\",le=\"1\"} 1\n\
             h_seconds_bucket{path=\"a\\\"b\\\\c\\nd\",le=\"+Inf\"} 1\n\
             h_seconds_sum{path=\"a\\\"b\\\\c\\nd\"} 0.5\n\
             h_seconds_count{path=\"a\\\"b\\\\c\\nd\"} 1\n"
        );
    }

    #[test]
    fn histogram_reserves_le() {
        assert_eq!(
            Family::<Histogram>::new("h", "help", &["le"]).err(),
            Some(MetricError::ReservedLabelName("le".into()))
        );
        assert!(Family::<Counter>::new("c", "help", &["le"]).is_ok());
    }

    #[test]
    fn hash_spreads_similar_values() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..crate::metrics::stress(10_000) {
            let v = format!("/api/v1/items/{i}");
            assert!(seen.insert(hash_label_values(&["GET", &v]) & 0xffff_ffff));
        }
        for n in 0..=20 {
            let v = "x".repeat(n);
            assert!(seen.insert(hash_label_values(&[&v])), "length {n}");
        }
    }

    #[test]
    fn hash_separates_boundaries() {
        assert_ne!(
            hash_label_values(&["ab", ""]),
            hash_label_values(&["a", "b"])
        );
        assert_ne!(hash_label_values(&["a"]), hash_label_values(&["a", ""]));
    }
}
