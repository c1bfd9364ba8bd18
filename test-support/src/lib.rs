//! Helpers for tinymon's tests, benches and fuzz targets. None of this is
//! part of tinymon's library API.
//!
//! - [`parse`]: a strict reader of the text format, to read the encoder's
//!   output back;
//! - [`client`]: the binary's own HTTP client (from `tinymon-demo-kit`),
//!   so tests speak HTTP the way `tinymon healthcheck` does;
//! - [`proto`]: client_model's metrics.proto as prost messages, to decode
//!   the protobuf exposition;
//! - [`Rng`]: the binary's small generator (from `tinymon-demo-kit`);
//! - [`slo`]: writes the SLO recording and alerting rules from `slo.yml`.

pub mod parse;
pub mod proto;
pub mod slo;

pub use parse::{parse_text, Kind, ParseError, ParsedFamily, ParsedSample};
pub use tinymon_demo_kit::client;
pub use tinymon_demo_kit::rng::Rng;
