//! Helpers for tinymon's tests, benches and fuzz targets. None of this is
//! part of tinymon's library API.
//!
//! - [`parse`]: a strict reader of the text format, to read the encoder's
//!   output back;
//! - [`client`]: the binary's own HTTP client (`src/app/client.rs`,
//!   compiled here too, so tests speak HTTP the way `tinymon healthcheck`
//!   does);
//! - [`proto`]: client_model's metrics.proto as prost messages, to decode
//!   the protobuf exposition;
//! - [`Rng`]: the binary's small generator (`src/app/rng.rs`);
//! - [`slo`]: writes the SLO recording and alerting rules from `slo.yml`.

#[path = "../../src/app/client.rs"]
pub mod client;
pub mod parse;
pub mod proto;
#[path = "../../src/app/rng.rs"]
mod rng;
pub mod slo;

pub use parse::{parse_text, Kind, ParseError, ParsedFamily, ParsedSample};
pub use rng::Rng;
