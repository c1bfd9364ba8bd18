//! Exposition formats: readings in, bytes out.
//!
//! Each format is a [`crate::metrics::Visitor`] over a registry's readings,
//! in a file of its own; the metric types know none of them.
//!
//! - [`TextEncoder`] (`text`): the Prometheus text format 0.0.4;
//! - [`OpenMetricsEncoder`] (`openmetrics`): OpenMetrics 1.0.0 text;
//!   both are one line writer (`lines`) with a dialect each;
//! - [`ProtobufEncoder`] (`protobuf`): delimited `MetricFamily` messages.
//!
//! [`negotiate`] picks one from a scrape's `Accept` header.
//!
//! The rules that trip hand-written encoders (escaping, Go's float
//! format, varints) live in `crate::wire`, shared with the layers that
//! store label forms and write response heads.

mod lines;
mod negotiate;
mod openmetrics;
mod protobuf;
mod text;

pub use negotiate::{negotiate, Format};
pub use openmetrics::{OpenMetricsEncoder, OPENMETRICS_CONTENT_TYPE};
pub use protobuf::{ProtobufEncoder, PROTOBUF_CONTENT_TYPE};
pub use text::{TextEncoder, CONTENT_TYPE};
