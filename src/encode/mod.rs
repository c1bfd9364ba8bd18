//! Exposition formats: readings in, bytes out.
//!
//! Each format is a [`crate::metrics::Visitor`] over a registry's readings,
//! in a file of its own; the metric types know none of them.
//!
//! - [`TextEncoder`] (`text`): the Prometheus text format 0.0.4.
//!
//! The rules that trip hand-written encoders live in the helper modules:
//! escaping (`escape`) and numbers (`number`).

mod escape;
mod number;
mod text;

pub use text::{TextEncoder, CONTENT_TYPE};
