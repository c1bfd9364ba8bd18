//! Native (sparse, exponential) histogram buckets: where an observation
//! goes, and how a scrape reads the counts back as Prometheus wants them.
//!
//! A native histogram of schema `n` has a bucket for every integer key `i`,
//! holding the values in `(2^((i-1)/2^n), 2^(i/2^n)]` (and the mirror image
//! for negative values), plus a *zero bucket* for `|v| <= zero_threshold`.
//! Prometheus gets them over protobuf as spans and deltas
//! ([`crate::encode::ProtobufEncoder`]).
//!
//! # Why a fixed window
//!
//! client_golang keeps the buckets in a map that grows on observe and, past
//! the bucket cap, widens the zero bucket or halves the resolution by
//! rebuilding the map. tinymon's observe takes no lock, so the buckets'
//! *layout* is fixed when the family is built and an observation finds its
//! counter by arithmetic and one table lookup, never by search; the
//! counters themselves are allocated in pages as observations reach them
//! (see `native_pages.rs`):
//!
//! - per sign, a *fine window* of `max_buckets` buckets at the schema that
//!   the growth factor picks, starting at the bucket of `zero_threshold`;
//! - per sign, a *coarse* array at schema −4 (each bucket a factor of 65536)
//!   covering everything from the window's start up to `f64::MAX` and `+Inf`
//!   (at most ~130 buckets), for the observations above the window.
//!
//! Buckets of schema `n` nest inside those of `n − 1` (bucket `i` of `n`
//! lies in bucket `ceil(i/2)` of `n − 1`), so the fine counts can always be
//! merged into schema −4 exactly. A scrape writes the fine schema while the
//! coarse arrays are empty, and schema −4 for everything once any
//! observation has gone above the window: the cap is kept by lowering the
//! resolution, as client_golang does, only in one step and for good (counts
//! never reset). Size the window so that this never happens for the values
//! you expect: its top is about `zero_threshold × 2^(max_buckets / 2^schema)`
//! ([`NativeBuckets::window_top`] gives it exactly).
//!
//! NaN observations count in `_count` and `_sum` but in no native bucket,
//! as in client_golang; ±Inf go to the bucket above `±f64::MAX`.

use std::sync::Arc;

use super::native_pages::{Nonzero, PagedCounts};
use super::MetricError;

/// The mantissa bits of an `f64`.
const MANTISSA: u64 = (1 << 52) - 1;

/// The lowest schema Prometheus knows: each bucket a factor of 2^16.
const COARSE_SCHEMA: i32 = -4;
/// The largest window a family may ask for, per sign.
pub const MAX_NATIVE_BUCKETS: u32 = 4096;

/// Native-histogram settings for a histogram family, shared by its series
/// (see [`super::Buckets::with_native`]).
///
/// ```
/// use tinymon::metrics::NativeBuckets;
/// // 10% growth per bucket gives schema 3 (factor 2^(1/8) ≈ 1.09).
/// let n = NativeBuckets::new(1.1, 1e-6, 240).unwrap();
/// assert_eq!(n.schema(), 3);
/// // The window reaches from 1 µs past 16 minutes before it coarsens.
/// assert!(n.window_top() > 1000.0);
/// assert!(NativeBuckets::new(1.0, 1e-6, 240).is_err());
/// ```
#[derive(Clone, Debug)]
pub struct NativeBuckets {
    layout: Arc<Layout>,
}

/// Where each observation goes; computed once per family.
#[derive(Debug)]
pub(crate) struct Layout {
    schema: i32,
    zero_threshold: f64,
    /// Key of the first fine bucket on each side.
    first: i32,
    /// Fine buckets per side.
    width: usize,
    /// Key (schema −4) of the first coarse bucket on each side.
    coarse_first: i32,
    /// Coarse buckets per side: up to the key of `+Inf`.
    coarse_width: usize,
    /// For schema > 0: the mantissa's top `schema + 1` bits split [0.5, 1)
    /// into 2^(schema+1) cells, narrower than the gap between two bounds,
    /// so a cell holds at most one bound; per cell, the number of bounds
    /// below it. A key is then a frexp, one table load and one comparison,
    /// without the branches of a search (which mispredict when latencies
    /// vary).
    cells: Box<[u16]>,
    /// For schema > 0: the 2^schema bucket bounds within one power of two,
    /// as fractions in [0.5, 1) of it, kept as their 52 mantissa bits (they
    /// share one exponent, so they compare as integers, and a value's
    /// mantissa is compared without building its frexp fraction); then
    /// `u64::MAX`, above every mantissa, so a lookup needs no bounds check.
    mantissas: Box<[u64]>,
    /// `first + 1023 * 2^schema`: a positive value's fine index is its
    /// bound count within its power of two, plus its biased exponent
    /// times 2^schema, minus this.
    fine_offset: i64,
}

impl NativeBuckets {
    /// Native buckets that grow by at most `growth_factor` from one to the
    /// next (schema = the largest in −4..=8 whose factor `2^(2^-schema)` is
    /// at most `growth_factor`, as client_golang picks it), a zero bucket for
    /// `|v| <= zero_threshold`, and a window of `max_buckets` buckets per
    /// sign above it (see the module docs).
    pub fn new(
        growth_factor: f64,
        zero_threshold: f64,
        max_buckets: u32,
    ) -> Result<Self, MetricError> {
        let bad = |why: String| Err(MetricError::InvalidBuckets(why));
        if !(growth_factor > 1.0 && growth_factor.is_finite()) {
            return bad(format!(
                "native growth factor {growth_factor} must be a finite number above 1"
            ));
        }
        if !(zero_threshold >= f64::MIN_POSITIVE && zero_threshold.is_finite()) {
            return bad(format!(
                "native zero threshold {zero_threshold} must be finite and at least {:e}",
                f64::MIN_POSITIVE
            ));
        }
        if !(1..=MAX_NATIVE_BUCKETS).contains(&max_buckets) {
            return bad(format!(
                "native bucket cap {max_buckets} is outside 1..={MAX_NATIVE_BUCKETS}"
            ));
        }
        let schema = schema_for(growth_factor);
        let fractions: Box<[f64]> = if schema > 0 {
            // 2^(j/2^schema - 1) = 0.5 × the roots 2^(2^-k) of j's bits,
            // each root a square root of the one before: no libm (exp2 and
            // its tables would cost 3 KB of the stripped release binary), a few ulps at
            // most, and 0.5 exactly for j = 0, so powers of two land where
            // the definition puts them.
            let mut roots = [2.0f64; 9];
            for k in 1..roots.len() {
                roots[k] = roots[k - 1].sqrt();
            }
            (0..1u32 << schema)
                .map(|j| {
                    (0..schema)
                        .filter(|bit| j & (1 << bit) != 0)
                        .fold(0.5, |f, bit| f * roots[(schema - bit) as usize])
                })
                .chain([1.0])
                .collect()
        } else {
            Box::new([])
        };
        let cells: Box<[u16]> = if schema > 0 {
            let n = 1u32 << (schema + 1);
            (0..n)
                .map(|c| {
                    // The cell's lower edge, exact: 0.5 + c / (2n).
                    let low = 0.5 + f64::from(c) / f64::from(2 * n);
                    fractions.partition_point(|&b| b < low) as u16
                })
                .collect()
        } else {
            Box::new([])
        };
        let mut layout = Layout {
            schema,
            zero_threshold,
            first: 0,
            width: max_buckets as usize,
            coarse_first: 0,
            coarse_width: 0,
            mantissas: (fractions.iter())
                .map(|&f| {
                    if f < 1.0 {
                        f.to_bits() & MANTISSA
                    } else {
                        u64::MAX
                    }
                })
                .collect(),
            cells,
            fine_offset: 0,
        };
        layout.first = layout.key(zero_threshold);
        layout.fine_offset = i64::from(layout.first) + (1023i64 << schema.max(0));
        layout.coarse_first = coarsen(layout.first, schema);
        let inf_key = coarsen(layout.key(f64::INFINITY), schema);
        layout.coarse_width = (inf_key - layout.coarse_first + 1) as usize;
        Ok(NativeBuckets {
            layout: Arc::new(layout),
        })
    }

    /// The settings tinymon's request-latency histograms use: 10% growth
    /// (schema 3), a zero bucket below 2^-20 s (about 1 µs) and a window of
    /// 200 buckets per sign, up to 2^(39/8) ≈ 29 s. Memory grows with the buckets observed: about 2.3 KB for a series
    /// observed by one thread in 20 of them (2,309 B, counted by the
    /// allocator in `tests/series_memory.rs`).
    pub fn seconds() -> Self {
        NativeBuckets::new(1.1, 1.0 / f64::from(1u32 << 20), 200).expect("valid native settings")
    }

    /// The schema of the fine window.
    pub fn schema(&self) -> i32 {
        self.layout.schema
    }

    /// The zero bucket's half-width.
    pub fn zero_threshold(&self) -> f64 {
        self.layout.zero_threshold
    }

    /// The upper bound of the last fine bucket: above it, observations
    /// go to the coarse buckets.
    pub fn window_top(&self) -> f64 {
        upper_bound(
            self.layout.first + self.layout.width as i32 - 1,
            self.layout.schema,
        )
    }

    pub(crate) fn layout(&self) -> &Arc<Layout> {
        &self.layout
    }
}

/// The largest schema in −4..=8 whose growth `2^(2^-schema)` is at most
/// `factor` (> 1): what client_golang computes as
/// `-floor(log2(log2(factor)))`, here by comparing with the growths
/// themselves (squares and square roots of 2, exact or correctly rounded),
/// so that a factor of exactly 2, 4 or 16 gets its schema on any libm.
fn schema_for(factor: f64) -> i32 {
    let (mut schema, mut growth) = (0, 2.0f64);
    if factor >= 2.0 {
        // Each schema down squares the growth: 4, 16, 256, 65536.
        while schema > COARSE_SCHEMA && factor >= growth * growth {
            growth *= growth;
            schema -= 1;
        }
    } else {
        // Each schema up takes its square root: 2^(1/2), 2^(1/4), ...
        while schema < 8 && factor < growth {
            growth = growth.sqrt();
            schema += 1;
        }
    }
    schema
}

/// The upper bound of bucket `key` of `schema`.
fn upper_bound(key: i32, schema: i32) -> f64 {
    (f64::from(key) * (-f64::from(schema)).exp2()).exp2()
}

/// The key at schema −4 of the bucket holding fine bucket `key` of `schema`:
/// `ceil(key / 2^(schema + 4))`, with an arithmetic shift.
fn coarsen(key: i32, schema: i32) -> i32 {
    let shift = schema - COARSE_SCHEMA;
    (key + (1 << shift) - 1) >> shift
}

impl Layout {
    /// Number of counters a series keeps: the zero bucket, then per sign
    /// (positive first) the fine window and the coarse array.
    pub(crate) fn slots(&self) -> usize {
        1 + 2 * self.side()
    }

    fn side(&self) -> usize {
        self.width + self.coarse_width
    }

    /// The key of `|v|`'s bucket at this layout's schema; `v` must be above
    /// the zero threshold (so normal, not NaN). ±Inf is the key after
    /// `f64::MAX`'s. Follows client_golang's frexp-and-search method.
    #[inline]
    fn key(&self, v: f64) -> i32 {
        let a = v.abs();
        let (a, inf) = if a == f64::INFINITY {
            (f64::MAX, 1)
        } else {
            (a, 0)
        };
        // frexp for normal numbers: a = frac * 2^exp, frac in [0.5, 1).
        let bits = a.to_bits();
        let exp = ((bits >> 52) & 0x7ff) as i32 - 1022;
        let key = if self.schema > 0 {
            self.within(bits) as i32 + (exp - 1) * (1 << self.schema)
        } else {
            // A power of two is the top of the bucket below.
            // (frac is 0.5 exactly when the mantissa is 0.)
            let key = if bits & MANTISSA == 0 { exp - 1 } else { exp };
            let shift = -self.schema;
            (key + (1 << shift) - 1) >> shift
        };
        key + inf
    }

    /// For schema > 0: how many of the bounds within a power of two lie
    /// below the frexp fraction of a normal value with these `bits`. The
    /// fraction is 0.5 + mantissa / 2^53, so the mantissa's top bits are
    /// the cell; the bounds below it are those below the cell and, if the
    /// cell's one bound is below the mantissa, that one.
    #[inline]
    fn within(&self, bits: u64) -> usize {
        let m = bits & MANTISSA;
        let below = usize::from(self.cells[(m >> (51 - self.schema)) as usize]);
        below + usize::from(self.mantissas[below] < m)
    }

    /// The counter for an observation, or `None` for NaN (counted in no
    /// native bucket). Lock-free and allocation-free: a frexp, a table
    /// load, a comparison, a few integer steps.
    #[inline]
    pub(crate) fn slot(&self, v: f64) -> Option<usize> {
        // The common case first, in integers: a positive value above the
        // zero bucket (which also rules out NaN) that falls in the fine
        // window of a schema above 0. +Inf's exponent puts it past the
        // window, to the general path.
        if self.schema > 0 && v > self.zero_threshold {
            let bits = v.to_bits();
            let fine = self.within(bits) as i64 + ((bits >> 52) as i64) * (1 << self.schema)
                - self.fine_offset;
            if (fine as u64) < self.width as u64 {
                return Some(1 + fine as usize);
            }
        }
        self.slot_general(v)
    }

    /// [`Layout::slot`] for every value: the zero bucket, NaN, negative
    /// values, the coarse buckets, schemas of 0 and below.
    #[inline(never)]
    fn slot_general(&self, v: f64) -> Option<usize> {
        if v.is_nan() {
            return None;
        }
        if v.abs() <= self.zero_threshold {
            return Some(0);
        }
        let key = self.key(v);
        let side = if v > 0.0 { 1 } else { 1 + self.side() };
        // key >= first: keys are monotonic in |v| and |v| > zero_threshold.
        let fine = (key - self.first) as usize;
        if fine < self.width {
            Some(side + fine)
        } else {
            let coarse = (coarsen(key, self.schema) - self.coarse_first) as usize;
            Some(side + self.width + coarse)
        }
    }
}

/// One scrape's native counts: absolute per bucket (not cumulative), read
/// through [`NativeReading::positive`], [`NativeReading::negative`] and
/// [`NativeReading::zero_count`].
pub struct NativeReading<'a> {
    layout: &'a Layout,
    totals: &'a PagedCounts,
    /// Some observation went above the window: the reading is at −4.
    /// Found once here, not by every accessor an encoder calls.
    coarse: bool,
}

impl std::fmt::Debug for NativeReading<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeReading")
            .field("schema", &self.schema())
            .field("zero_count", &self.zero_count())
            .finish_non_exhaustive()
    }
}

impl<'a> NativeReading<'a> {
    pub(super) fn new(layout: &'a Layout, totals: &'a PagedCounts) -> Self {
        let (pos, neg) = (1 + layout.width, 1 + layout.side() + layout.width);
        let any = |lo: usize| {
            totals
                .nonzero(lo, lo + layout.coarse_width)
                .next()
                .is_some()
        };
        let coarse = any(pos) || any(neg);
        NativeReading {
            layout,
            totals,
            coarse,
        }
    }

    /// The schema of this reading: the fine one, or −4 once any observation
    /// went above the window.
    pub fn schema(&self) -> i32 {
        if self.coarse {
            COARSE_SCHEMA
        } else {
            self.layout.schema
        }
    }

    /// The zero bucket's half-width.
    pub fn zero_threshold(&self) -> f64 {
        self.layout.zero_threshold
    }

    /// Observations in the zero bucket.
    pub fn zero_count(&self) -> u64 {
        self.totals.get(0)
    }

    /// `(key, count)` of every non-empty positive bucket at [`Self::schema`],
    /// ascending.
    pub fn positive(&self) -> NativeBucketIter<'_> {
        self.side(1)
    }

    /// `(key, count)` of every non-empty negative bucket (the bucket of
    /// `-v` has the key of `v`), ascending by key.
    pub fn negative(&self) -> NativeBucketIter<'_> {
        self.side(1 + self.layout.side())
    }

    fn side(&self, start: usize) -> NativeBucketIter<'_> {
        let l = self.layout;
        let coarse = start + l.width;
        NativeBucketIter {
            layout: l,
            start,
            fine: self.totals.nonzero(start, coarse).peekable(),
            coarse: self.coarse.then(|| {
                self.totals
                    .nonzero(coarse, coarse + l.coarse_width)
                    .peekable()
            }),
        }
    }
}

/// The non-empty buckets of one sign, ascending by key; see
/// [`NativeReading::positive`].
pub struct NativeBucketIter<'a> {
    layout: &'a Layout,
    /// The slot of the side's first fine bucket.
    start: usize,
    fine: std::iter::Peekable<Nonzero<'a>>,
    /// `Some` when the reading is written at schema −4: the fine counts are
    /// merged into these.
    coarse: Option<std::iter::Peekable<Nonzero<'a>>>,
}

impl std::fmt::Debug for NativeBucketIter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeBucketIter").finish_non_exhaustive()
    }
}

impl Iterator for NativeBucketIter<'_> {
    type Item = (i32, u64);

    fn next(&mut self) -> Option<(i32, u64)> {
        let l = self.layout;
        let fine_key = |slot: usize| l.first + (slot - self.start) as i32;
        let Some(coarse) = &mut self.coarse else {
            return self.fine.next().map(|(slot, n)| (fine_key(slot), n));
        };
        // At schema −4: the fine buckets merge into the coarse ones that
        // hold them. Both streams ascend, so the next key is the smaller
        // of their heads, and every fine bucket inside it comes next.
        let coarse_key = |slot: usize| l.coarse_first + (slot - self.start - l.width) as i32;
        let from_fine = self
            .fine
            .peek()
            .map(|&(s, _)| coarsen(fine_key(s), l.schema));
        let from_coarse = coarse.peek().map(|&(s, _)| coarse_key(s));
        let key = match (from_fine, from_coarse) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        let mut n = 0;
        while let Some(&(s, c)) = self.fine.peek() {
            if coarsen(fine_key(s), l.schema) != key {
                break;
            }
            n += c;
            self.fine.next();
        }
        if let Some(&(s, c)) = coarse.peek() {
            if coarse_key(s) == key {
                n += c;
                coarse.next();
            }
        }
        Some((key, n))
    }
}

/// A native reading copied out (see [`super::HistogramSnapshot`]).
#[derive(Clone, Debug, PartialEq)]
pub struct NativeSnapshot {
    /// The schema the buckets are at.
    pub schema: i32,
    /// Observations with `|v| <= zero_threshold`.
    pub zero_count: u64,
    /// `(key, count)` of non-empty positive buckets, ascending.
    pub positive: Vec<(i32, u64)>,
    /// `(key, count)` of non-empty negative buckets, ascending.
    pub negative: Vec<(i32, u64)>,
}

impl NativeSnapshot {
    pub(super) fn of(r: &NativeReading<'_>) -> Self {
        NativeSnapshot {
            schema: r.schema(),
            zero_count: r.zero_count(),
            positive: r.positive().collect(),
            negative: r.negative().collect(),
        }
    }

    /// Observations in every native bucket, the zero bucket included
    /// (equals the histogram's count unless NaN was observed).
    pub fn total(&self) -> u64 {
        self.zero_count
            + self
                .positive
                .iter()
                .chain(&self.negative)
                .map(|b| b.1)
                .sum::<u64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bounds within a power of two as fractions in [0.5, 1), from
    /// the mantissas the layout keeps.
    fn fractions(l: &Layout) -> Vec<f64> {
        let bounds = &l.mantissas[..l.mantissas.len() - 1];
        bounds
            .iter()
            .map(|&m| f64::from_bits(m | (1022 << 52)))
            .collect()
    }

    fn layout(factor: f64, zero: f64, cap: u32) -> Arc<Layout> {
        NativeBuckets::new(factor, zero, cap)
            .unwrap()
            .layout()
            .clone()
    }

    /// The bucket rule, straight from the definition: `v` is in bucket `i`
    /// when `2^((i-1)/2^n) < v <= 2^(i/2^n)`.
    fn key_by_definition(v: f64, schema: i32) -> i32 {
        (v.log2() * f64::from(schema).exp2()).ceil() as i32
    }

    #[test]
    fn growth_factor_picks_schema_as_client_golang() {
        for (factor, schema) in [
            (1.1, 3),
            (2.0, 0),
            (1.0001, 8),
            (1.5, 1),
            (4.0, -1),
            (65536.0, -4),
            (1e300, -4),
            (1.0906, 3),
            (1.0904, 4),
        ] {
            assert_eq!(
                NativeBuckets::new(factor, 1e-9, 10).unwrap().schema(),
                schema,
                "{factor}"
            );
        }
    }

    #[test]
    fn the_latency_settings_reach_29_seconds() {
        let n = NativeBuckets::seconds();
        assert_eq!(n.schema(), 3);
        // The last fine key is 39, so the top is 2^(39/8) ≈ 29.34 s (the
        // keys beside it give 26.9 s and 32 s). Checked on the key, exactly,
        // and on the float loosely: Miri perturbs exp2's last bits.
        let l = n.layout();
        assert_eq!(l.first + l.width as i32 - 1, 39);
        assert!((29.3..29.4).contains(&n.window_top()), "{}", n.window_top());
        assert_eq!(n.layout().slots(), 1 + 2 * (200 + 67));
    }

    #[test]
    fn bad_settings_are_refused_with_a_reason() {
        for (f, z, c) in [
            (1.0, 1e-9, 10),
            (f64::NAN, 1e-9, 10),
            (f64::INFINITY, 1e-9, 10),
            (1.1, 0.0, 10),
            (1.1, -1.0, 10),
            (1.1, f64::NAN, 10),
            (1.1, 1e-9, 0),
            (1.1, 1e-9, MAX_NATIVE_BUCKETS + 1),
        ] {
            let err = NativeBuckets::new(f, z, c).unwrap_err().to_string();
            assert!(err.contains("native"), "{err}");
        }
    }

    #[test]
    fn keys_match_the_definition_away_from_boundaries() {
        for schema_factor in [1.003, 1.01, 1.1, 1.5, 2.0, 4.0, 16.0, 300.0, 1e5] {
            let l = layout(schema_factor, 1e-300, 10);
            let mut v = 1.234e-200;
            while v < 1e200 {
                assert_eq!(
                    l.key(v),
                    key_by_definition(v, l.schema),
                    "v={v} schema={}",
                    l.schema
                );
                assert_eq!(l.key(-v), l.key(v));
                v *= 1.7;
            }
        }
    }

    /// The cell table gives what a search of the bounds gives, for every
    /// schema above 0, on the bounds themselves, beside them and between.
    #[test]
    fn cells_agree_with_searching_the_bounds() {
        for schema in 1..=8 {
            // Just above schema's growth 2^(2^-schema), below the next
            // coarser one's.
            let factor = (-f64::from(schema)).exp2().exp2() * (1.0 + 1e-12);
            let l = layout(factor, 1e-300, 10);
            assert_eq!(l.schema, schema, "factor {factor}");
            let n = 1 << schema;
            let bounds = &fractions(&l)[..];
            assert_eq!(bounds.len(), n);
            let mut fracs: Vec<f64> = bounds
                .iter()
                .flat_map(|&b| {
                    let bits = b.to_bits();
                    [b, f64::from_bits(bits - 1), f64::from_bits(bits + 1)]
                })
                .filter(|f| (0.5..1.0).contains(f))
                .collect();
            let between = if cfg!(miri) { 50 } else { 1000 };
            fracs.extend((0..between).map(|i| 0.5 + f64::from(i) / f64::from(2 * between)));
            fracs.push(f64::from_bits(1.0f64.to_bits() - 1));
            for frac in fracs {
                let v = frac * 8.0; // exponent 3 in frexp terms: 4 <= v < 8
                let want = bounds.partition_point(|&b| b < frac) as i32 + 2 * n as i32;
                assert_eq!(l.key(v), want, "schema {schema} frac {frac}");
            }
        }
    }

    /// The fast path of `slot` agrees with the general one everywhere it
    /// answers: across the window, on bucket bounds and next to them, at
    /// the window's top and the zero threshold, and for ±Inf and NaN.
    #[test]
    fn the_fast_slot_agrees_with_the_general_one() {
        let mut layouts = vec![NativeBuckets::seconds().layout().clone()];
        layouts.extend([1.5, 1.1, 1.01, 1.003, 2.0, 4.0].map(|f| layout(f, 1e-4, 300)));
        for l in layouts {
            let top = upper_bound(l.first + l.width as i32 - 1, l.schema);
            let mut values = vec![f64::INFINITY, f64::NAN, f64::MAX, l.zero_threshold, top];
            let mut v = l.zero_threshold;
            // Miri runs this too, on a sparser walk.
            let step = if cfg!(miri) { 1.5 } else { 1.013 };
            while v < top * 4.0 {
                values.push(v);
                v *= step;
            }
            for k in l.first..l.first + l.width as i32 + 3 {
                values.push(upper_bound(k, l.schema));
            }
            let near: Vec<f64> = values
                .iter()
                .flat_map(|&v| {
                    [
                        v,
                        f64::from_bits(v.to_bits().wrapping_sub(1)),
                        f64::from_bits(v.to_bits() + 1),
                    ]
                })
                .collect();
            for v in near.into_iter().flat_map(|v| [v, -v]) {
                assert_eq!(l.slot(v), l.slot_general(v), "v {v:e} schema {}", l.schema);
            }
        }
    }

    #[test]
    fn fractions_are_the_bucket_bounds_within_a_power_of_two() {
        for factor in [1.5, 1.1, 1.0001] {
            let l = layout(factor, 1e-300, 10);
            let n = l.mantissas.len() - 1;
            assert_eq!(n, 1 << l.schema);
            assert_eq!(l.mantissas[n], u64::MAX);
            for (j, &f) in fractions(&l).iter().enumerate() {
                let want = (j as f64 / n as f64 - 1.0).exp2();
                assert!(
                    (f - want).abs() <= 1e-14,
                    "schema {} j {j}: {f} vs {want}",
                    l.schema
                );
            }
        }
    }

    #[test]
    fn powers_of_two_are_inclusive_upper_bounds() {
        for factor in [1.1, 2.0, 4.0, 65536.0] {
            let l = layout(factor, 1e-300, 10);
            // 1 is the top of bucket 0 at every schema; 2 of bucket 2^schema
            // for schema >= 0.
            assert_eq!(l.key(1.0), 0);
            assert_eq!(l.key(1.0000001), 1);
            if l.schema >= 0 {
                assert_eq!(l.key(2.0), 1 << l.schema);
            }
        }
        let l = layout(1.1, 1e-300, 10);
        assert_eq!(l.key(f64::MAX), 1024 * 8);
        assert_eq!(l.key(f64::INFINITY), 1024 * 8 + 1);
    }

    #[test]
    fn slots_zero_fine_coarse_and_nan() {
        let l = layout(2.0, 0.5, 4); // schema 0; window keys 0..4 = (.5, 8]
        assert_eq!(l.first, -1); // 0.5 is the top of bucket -1
        assert_eq!(l.slot(f64::NAN), None);
        assert_eq!(l.slot(0.0), Some(0));
        assert_eq!(l.slot(-0.5), Some(0));
        assert_eq!(l.slot(0.75), Some(1 + 1)); // key 0
        assert_eq!(l.slot(4.0), Some(1 + 3)); // key 2
                                              // key 4 (16) is past the 4-bucket window (keys -1..=2): coarse
                                              // key ceil(4/16) = 1; coarse_first = ceil(-1/16) = 0.
        assert_eq!(l.coarse_first, 0);
        assert_eq!(l.slot(16.0), Some(1 + 4 + 1));
        let side = l.side();
        assert_eq!(l.slot(-0.75), Some(1 + side + 1));
        assert_eq!(
            l.slot(f64::NEG_INFINITY),
            Some(1 + side + l.width + l.coarse_width - 1)
        );
        assert!(l.slot(f64::INFINITY).unwrap() < 1 + side);
    }

    #[test]
    fn reading_merges_into_schema_minus_four_once_coarse() {
        let l = layout(2.0, 0.5, 4);
        let mut totals = vec![0u64; l.slots()];
        totals[l.slot(0.75).unwrap()] += 2; // key 0
        totals[l.slot(3.0).unwrap()] += 1; // key 2
        totals[l.slot(-3.0).unwrap()] += 5;
        let paged = PagedCounts::from_flat(&totals);
        let r = NativeReading::new(&l, &paged);
        assert_eq!(r.schema(), 0);
        assert_eq!(r.positive().collect::<Vec<_>>(), vec![(0, 2), (2, 1)]);
        assert_eq!(r.negative().collect::<Vec<_>>(), vec![(2, 5)]);
        totals[l.slot(1e6).unwrap()] += 1; // key 20 -> coarse 2
        let paged = PagedCounts::from_flat(&totals);
        let r = NativeReading::new(&l, &paged);
        assert_eq!(r.schema(), -4);
        // Fine keys 0 and 2 both lie in coarse bucket 0 ((2^-16, 1]) and 1.
        assert_eq!(
            r.positive().collect::<Vec<_>>(),
            vec![(0, 2), (1, 1), (2, 1)]
        );
        assert_eq!(r.negative().collect::<Vec<_>>(), vec![(1, 5)]);
        let s = NativeSnapshot::of(&r);
        assert_eq!(s.total(), 9);
    }
}
