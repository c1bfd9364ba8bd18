//! The parts of the tinymon demo binary that its tests and fuzz targets
//! use too, in a crate of their own so that each is compiled once, from
//! one place:
//!
//! - [`client`]: the HTTP/1.1 client of `tinymon healthcheck` and
//!   `tinymon load`, which the tests speak HTTP with;
//! - [`rng`]: the demo's small random generator;
//! - [`work_params`]: the checked query of `GET /work`, which a fuzz target
//!   drives.
//!
//! Nothing here is part of the `tinymon` library's API; the library's code
//! uses none of it (a Cargo package cannot give its binary dependencies of
//! its own, so the library lists this crate too).

pub mod client;
pub mod rng;
pub mod work_params;
