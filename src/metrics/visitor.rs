//! Readings: how a metric hands its values to whoever writes them out.
//!
//! Metric types write no exposition format. (A series' label set does keep
//! its labels in the two forms the encoders copy, quoted text and protobuf
//! pairs, built once by `crate::wire` when the series is made; see
//! `labels`.) At scrape time the
//! registry walks its families and calls a [`Visitor`] with each family's
//! description and each series' reading: one [`Value`] for counters and
//! gauges, a [`HistogramReading`] for histograms. An encoder is a visitor
//! that turns those calls into bytes, so a new exposition format is a new
//! visitor, not a change to every metric type.
//!
//! Every call happens inside the registry's walk, so a visitor may keep the
//! `&'r str`s of a [`FamilyDesc`] until the walk ends but must copy anything
//! it wants from [`Labels`] or a reading before returning.

use std::sync::Arc;

use super::exemplar::{Exemplar, ExemplarSlot};
use super::labels::Labels;
use super::native::NativeReading;

/// The kind of a family, as the Prometheus data model names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricType {
    /// Only goes up (resets when the process restarts).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations counted into buckets, with their sum and count.
    Histogram,
}

impl MetricType {
    /// The lower-case word Prometheus uses for the type (`counter`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
        }
    }
}

/// Name, help text and type of one family, borrowed from the registry for
/// the length of a scrape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FamilyDesc<'r> {
    /// The metric name, already checked against the data model.
    pub name: &'r str,
    /// Help text, unescaped.
    pub help: &'r str,
    /// The family's type.
    pub kind: MetricType,
}

/// The value of one counter or gauge sample.
///
/// Counters made by [`super::Counter`] are integers and stay exact up to
/// 2^64; collectors and gauges give floats.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// An exact integer.
    Int(u64),
    /// A float, possibly `NaN` or infinite.
    Float(f64),
}

impl Value {
    /// The value as a float (integers above 2^53 round).
    pub fn as_f64(self) -> f64 {
        match self {
            Value::Int(n) => n as f64,
            Value::Float(v) => v,
        }
    }
}

/// One consistent reading of a histogram series: its count equals its last
/// cumulative bucket, and its sum covers exactly the observations counted.
///
/// It borrows the histogram's scrape state, so it exists only during the
/// [`Visitor::histogram`] call that receives it.
pub struct HistogramReading<'a> {
    /// Shared by every series of the family, so an encoder can tell by
    /// identity that it has seen these bounds before.
    pub(super) bounds: &'a Arc<[f64]>,
    /// Cumulative counts, one per bound plus `+Inf`.
    pub(super) cumulative: &'a [u64],
    /// One per bucket, or empty when the histogram keeps no exemplars.
    pub(super) exemplars: &'a [ExemplarSlot],
    pub(super) sum: f64,
    pub(super) count: u64,
    /// The native buckets, when the histogram keeps them.
    pub(super) native: Option<NativeReading<'a>>,
}

impl std::fmt::Debug for HistogramReading<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistogramReading")
            .field("bounds", &self.bounds)
            .field("cumulative", &self.cumulative)
            .field("sum", &self.sum)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

impl<'a> HistogramReading<'a> {
    /// Observations counted.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the observations counted.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// The finite upper bounds (the `+Inf` bucket is implied).
    pub fn bounds(&self) -> &[f64] {
        self.bounds
    }

    /// The bounds as the family shares them: the same `Arc` for every
    /// series of a family (and of families built from one `Buckets`).
    pub(crate) fn shared_bounds(&self) -> &Arc<[f64]> {
        self.bounds
    }

    /// `(upper bound, cumulative count)` for every bucket in ascending order,
    /// ending with `(+Inf, count)`.
    pub fn buckets(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        let bounds = self.bounds.iter().copied().chain([f64::INFINITY]);
        bounds.zip(self.cumulative.iter().copied())
    }

    /// The newest exemplar of bucket `i` (in `cumulative` order), if the
    /// histogram keeps exemplars and one was recorded there.
    pub fn exemplar(&self, i: usize) -> Option<Exemplar> {
        self.exemplars.get(i).and_then(ExemplarSlot::read)
    }

    /// The native buckets, when the histogram keeps them (see
    /// [`super::Buckets::with_native`]).
    pub fn native(&self) -> Option<&NativeReading<'a>> {
        self.native.as_ref()
    }

    /// The cumulative counts alone, one per bound plus `+Inf`.
    pub fn cumulative(&self) -> &[u64] {
        self.cumulative
    }
}

/// Receives a scrape: what encoders implement.
///
/// The registry calls [`Visitor::family`] once before the samples of each
/// family that has any, then hands over its series: counters and gauges in
/// batches ([`Visitor::values`], so a scrape makes one dynamic call per
/// batch rather than per series), histograms one at a time. Families with
/// no series are skipped.
pub trait Visitor<'r> {
    /// A family starts.
    fn family(&mut self, desc: FamilyDesc<'r>);
    /// Counter or gauge series of the current family, in order.
    fn values(&mut self, samples: &[(Labels<'_>, Value)]);
    /// A counter series with its exemplar (see [`super::ExemplarCounter`]).
    /// Formats without exemplars need not implement it.
    fn value_with_exemplar(
        &mut self,
        labels: Labels<'_>,
        value: Value,
        exemplar: Option<Exemplar>,
    ) {
        let _ = exemplar;
        self.values(&[(labels, value)]);
    }
    /// A histogram series of the current family.
    fn histogram(&mut self, labels: Labels<'_>, reading: &HistogramReading<'_>);
}
