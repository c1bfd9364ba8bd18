//! The one line writer behind both text formats.
//!
//! The Prometheus text format 0.0.4 and OpenMetrics 1.0 write the same
//! lines in the same walk: `# HELP`, `# TYPE`, then `name{labels} value`
//! per sample, and a histogram's `_bucket` lines in ascending `le`. They
//! differ in a handful of rules, and a [`Dialect`] names exactly those:
//! how help is escaped, how an `le` bound is written, whether counters
//! carry `_total` on the wire only, the order of `_sum` and `_count`,
//! exemplars, and the trailer. Each rule is an associated constant or
//! function, so every dialect gets its own copy of the writer with its
//! rules inlined: no branch on the format in the sample loop.
//!
//! A series' labels arrive already quoted (see `Labels::quoted`) and each
//! histogram family's `le="..."` texts are formatted once per scrape and
//! reused for every series, so a sample line is a handful of `memcpy`s plus
//! one number.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::metrics::{
    Exemplar, FamilyDesc, HistogramReading, Labels, MetricType, Registry, Value, Visitor,
};
use crate::wire::label_forms::put_quoted;
use crate::wire::number::{write_f64, write_u64};

/// The rules in which one text format differs from the other.
pub(super) trait Dialect {
    /// Writes a family's help text, escaped as the format wants.
    fn write_help(buf: &mut Vec<u8>, help: &str);
    /// Writes a bucket's upper bound inside `le="..."`.
    fn write_le(buf: &mut Vec<u8>, bound: f64);
    /// A counter family is named without `_total` in `# HELP` and
    /// `# TYPE`, and its samples always end in `_total`.
    const COUNTER_TOTAL: bool;
    /// A histogram writes `_count` before `_sum`.
    const COUNT_FIRST: bool;
    /// Exemplars are written after bucket and counter values, by
    /// [`Dialect::write_exemplar`].
    const EXEMPLARS: bool;
    /// Writes ` # {labels} value timestamp`; called only when
    /// [`Dialect::EXEMPLARS`] holds.
    fn write_exemplar(buf: &mut Vec<u8>, exemplar: &Exemplar) {
        let _ = (buf, exemplar);
    }
    /// Bytes after the last family.
    const TRAILER: &'static [u8];
}

/// An encoder's reusable buffers: after the first scrape has grown them,
/// encoding a registry allocates nothing.
#[derive(Debug, Default)]
pub(super) struct Lines {
    buf: Vec<u8>,
    le: LeTexts,
    /// Quoted labels of a sample whose labels came as pairs (collectors).
    scratch: Vec<u8>,
}

impl Lines {
    /// Encodes every family of `registry` in dialect `D` and returns the bytes.
    pub(super) fn encode<D: Dialect>(&mut self, registry: &Registry) -> &[u8] {
        self.buf.clear();
        registry.read(&mut Writer::<D> {
            buf: &mut self.buf,
            le: &mut self.le,
            scratch: &mut self.scratch,
            name: "",
            suffix: b"",
            dialect: PhantomData,
        });
        self.buf.extend_from_slice(D::TRAILER);
        &self.buf
    }

    /// The bytes of the last encode.
    pub(super) fn as_bytes(&self) -> &[u8] {
        &self.buf
    }
}

/// `le="..."` texts for one set of bucket bounds, rebuilt only when a
/// histogram with other bounds comes along. The cache holds the bounds'
/// `Arc`, so their allocation cannot be freed and reused while cached, and
/// the same pointer means the same bounds.
#[derive(Debug, Default)]
struct LeTexts {
    bounds: Option<Arc<[f64]>>,
    /// `le="0.005"`, … `le="+Inf"`: one more than `bounds`.
    pairs: Vec<Vec<u8>>,
}

impl LeTexts {
    /// Makes the texts those of `shared`, each bound written by `write`.
    /// Each encoder owns its `Lines` and always passes its dialect's
    /// `write`, so the bounds alone say whether the texts are current.
    #[inline]
    fn update(&mut self, shared: &Arc<[f64]>, write: fn(&mut Vec<u8>, f64)) -> &[Vec<u8>] {
        if !self.bounds.as_ref().is_some_and(|b| Arc::ptr_eq(b, shared)) {
            self.rebuild(shared, write);
        }
        &self.pairs
    }

    #[cold]
    fn rebuild(&mut self, shared: &Arc<[f64]>, write: fn(&mut Vec<u8>, f64)) {
        let bounds: &[f64] = shared;
        self.bounds = Some(shared.clone());
        self.pairs.resize_with(bounds.len() + 1, Vec::new);
        for (pair, &b) in self
            .pairs
            .iter_mut()
            .zip(bounds.iter().chain([&f64::INFINITY]))
        {
            pair.clear();
            pair.extend_from_slice(b"le=\"");
            write(pair, b);
            pair.push(b'"');
        }
    }
}

/// The visitor: writes one registry walk into a [`Lines`] buffer.
struct Writer<'e, 'r, D> {
    buf: &'e mut Vec<u8>,
    le: &'e mut LeTexts,
    scratch: &'e mut Vec<u8>,
    /// The current family's name as `# TYPE` gives it.
    name: &'r str,
    /// What the current family's counter and gauge samples add to `name`.
    suffix: &'static [u8],
    dialect: PhantomData<D>,
}

/// `labels` as `a="x",b="y"`: the series' own quoted text, or the pairs
/// escaped into `scratch`.
#[inline(always)]
fn quoted<'l>(labels: &Labels<'l>, scratch: &'l mut Vec<u8>) -> &'l [u8] {
    match labels.quoted() {
        Some(q) => q,
        None => escape_pairs(labels, scratch),
    }
}

#[cold]
fn escape_pairs<'l>(labels: &Labels<'l>, scratch: &'l mut Vec<u8>) -> &'l [u8] {
    scratch.clear();
    put_quoted(scratch, labels.iter());
    scratch
}

/// `name{suffix}{labels} ` (labels and braces only when there are any).
/// Inlined everywhere: with `sample_line` inlined too, 10k counters in
/// text took 2,162,848 instructions against 2,432,283 before the dialects
/// shared this writer (callgrind, `benches/instructions.rs`).
#[inline(always)]
fn start(buf: &mut Vec<u8>, name: &[u8], suffix: &[u8], quoted: &[u8]) {
    buf.extend_from_slice(name);
    buf.extend_from_slice(suffix);
    if !quoted.is_empty() {
        buf.push(b'{');
        buf.extend_from_slice(quoted);
        buf.push(b'}');
    }
    buf.push(b' ');
}

/// `name{suffix}{labels} value\n`. Inlined into each loop: as a call it
/// cost 5 instructions a sample (callgrind, 10k counters in text).
#[inline(always)]
fn sample_line(buf: &mut Vec<u8>, name: &[u8], suffix: &[u8], q: &[u8], value: Value) {
    start(buf, name, suffix, q);
    match value {
        Value::Int(n) => write_u64(buf, n),
        Value::Float(v) => write_f64(buf, v),
    }
    buf.push(b'\n');
}

impl<'r, D: Dialect> Visitor<'r> for Writer<'_, 'r, D> {
    fn family(&mut self, desc: FamilyDesc<'r>) {
        self.name = desc.name;
        self.suffix = b"";
        if D::COUNTER_TOTAL && desc.kind == MetricType::Counter {
            // A counter named just `_total` keeps it: an empty family
            // name is not a name (the fuzz target found this one).
            if let Some(base) = desc.name.strip_suffix("_total").filter(|b| !b.is_empty()) {
                self.name = base;
            }
            self.suffix = b"_total";
        }
        let buf = &mut *self.buf;
        buf.extend_from_slice(b"# HELP ");
        buf.extend_from_slice(self.name.as_bytes());
        buf.push(b' ');
        D::write_help(buf, desc.help);
        buf.extend_from_slice(b"\n# TYPE ");
        buf.extend_from_slice(self.name.as_bytes());
        buf.push(b' ');
        buf.extend_from_slice(desc.kind.as_str().as_bytes());
        buf.push(b'\n');
    }

    fn values(&mut self, samples: &[(Labels<'_>, Value)]) {
        let name = self.name.as_bytes();
        // A constant empty suffix where the dialect has no `_total` rule:
        // the compiler drops its copy (10k counters in text: 2,243,687
        // instructions reading `self.suffix`, 2,162,848 with this).
        let suffix = if D::COUNTER_TOTAL { self.suffix } else { b"" };
        let buf = &mut *self.buf;
        for (labels, value) in samples {
            sample_line(buf, name, suffix, quoted(labels, self.scratch), *value);
        }
    }

    fn value_with_exemplar(
        &mut self,
        labels: Labels<'_>,
        value: Value,
        exemplar: Option<Exemplar>,
    ) {
        let q = quoted(&labels, self.scratch);
        let suffix = if D::COUNTER_TOTAL { self.suffix } else { b"" };
        sample_line(self.buf, self.name.as_bytes(), suffix, q, value);
        if let Some(e) = exemplar.filter(|_| D::EXEMPLARS) {
            // The exemplar goes before the line's newline.
            self.buf.pop();
            D::write_exemplar(self.buf, &e);
            self.buf.push(b'\n');
        }
    }

    fn histogram(&mut self, labels: Labels<'_>, reading: &HistogramReading<'_>) {
        let les = self.le.update(reading.shared_bounds(), D::write_le);
        let q = quoted(&labels, self.scratch);
        let buf = &mut *self.buf;
        let name = self.name.as_bytes();
        for (i, (&cumulative, le)) in reading.cumulative().iter().zip(les).enumerate() {
            buf.extend_from_slice(name);
            buf.extend_from_slice(b"_bucket{");
            if !q.is_empty() {
                buf.extend_from_slice(q);
                buf.push(b',');
            }
            buf.extend_from_slice(le);
            buf.extend_from_slice(b"} ");
            write_u64(buf, cumulative);
            if D::EXEMPLARS {
                if let Some(e) = reading.exemplar(i) {
                    D::write_exemplar(buf, &e);
                }
            }
            buf.push(b'\n');
        }
        let count = Value::Int(reading.count());
        let sum = Value::Float(reading.sum());
        let (first, second) = if D::COUNT_FIRST {
            ((&b"_count"[..], count), (&b"_sum"[..], sum))
        } else {
            ((&b"_sum"[..], sum), (&b"_count"[..], count))
        };
        sample_line(buf, name, first.0, q, first.1);
        sample_line(buf, name, second.0, q, second.1);
    }
}
