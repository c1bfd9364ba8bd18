//! A counter that remembers the trace of its newest increment.

use super::exemplar::{ExemplarSlot, TraceContext};
use super::{Counter, Labels, Metric, MetricType, Value, Visitor};

/// A [`Counter`] plus one exemplar: the trace of the newest increment that
/// came with one. Shown by formats that carry exemplars (OpenMetrics); the
/// text format 0.0.4 writes the count alone.
///
/// ```
/// use tinymon::metrics::{ExemplarCounter, TraceContext};
/// let requests = ExemplarCounter::default();
/// let trace = TraceContext::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
/// requests.inc_with_exemplar(trace.as_ref());
/// requests.inc_with_exemplar(None);
/// assert_eq!(requests.get(), 2);
/// assert_eq!(requests.exemplar().unwrap().trace, trace.unwrap());
/// ```
#[derive(Debug, Default)]
pub struct ExemplarCounter {
    count: Counter,
    exemplar: ExemplarSlot,
}

impl ExemplarCounter {
    /// Adds one; `trace` becomes the exemplar. Lock-free, allocation-free.
    #[inline]
    pub fn inc_with_exemplar(&self, trace: Option<&TraceContext>) {
        self.count.inc();
        if let Some(trace) = trace {
            self.exemplar.record(trace, 1.0);
        }
    }

    /// The current count.
    pub fn get(&self) -> u64 {
        self.count.get()
    }

    /// The newest exemplar, if any increment came with a trace.
    pub fn exemplar(&self) -> Option<super::Exemplar> {
        self.exemplar.read()
    }
}

impl Metric for ExemplarCounter {
    type Config = ();
    const TYPE: MetricType = MetricType::Counter;

    fn with_config(_: &()) -> Self {
        ExemplarCounter::default()
    }

    fn read(&self, labels: Labels<'_>, out: &mut dyn Visitor<'_>) {
        out.value_with_exemplar(labels, Value::Int(self.get()), self.exemplar());
    }
}
