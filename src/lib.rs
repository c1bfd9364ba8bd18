//! tinymon: a small HTTP service that monitors itself.
//!
//! The crate is usable as a library: [`metrics`] holds lock-free metric
//! families and the registry, [`encode`] writes the Prometheus text format,
//! [`process`] reads process_* values from /proc, and [`http`] is the
//! instrumented tiny_http service the `tinymon` binary runs.

pub mod client;
pub mod config;
pub mod encode;
pub mod http;
pub mod load;
pub mod metrics;
pub mod process;
pub mod signals;
