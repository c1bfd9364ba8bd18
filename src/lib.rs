//! tinymon: Prometheus metrics for small Rust services, with a hand-written
//! exposition encoder and a tiny_http instrumentation layer.
//!
//! - [`metrics`]: lock-free counters, gauges, histograms, label families
//!   and the registry; metric types hand out readings, and write no
//!   exposition format.
//! - [`encode`]: the exposition formats, each a visitor over the readings.
//! - [`process`]: `process_*` values read from the operating system at
//!   scrape time (/proc on Linux).
//! - [`http`]: RED metrics for tiny_http handlers, and a hardened server.
//!
//! Platforms: `metrics`, `encode` and `process` are plain Rust and build
//! everywhere (Linux, macOS, Windows). `http` needs Unix (it works with
//! socket descriptors), and its connection guard needs Linux; see
//! [`http`] and the README's platform table.
//!
//! The `tinymon` binary built from this crate is a demo service on top of
//! these; none of its code (CLI, load generator, demo routes) is part of
//! the library.
//!
//! ```
//! use std::sync::Arc;
//! use tinymon::encode::TextEncoder;
//! use tinymon::metrics::{Buckets, Counter, Family, Histogram, Registry};
//!
//! let registry = Arc::new(Registry::new());
//! let orders = registry
//!     .register(Family::<Counter, 2>::new("orders_total", "Orders placed.", ["shop", "kind"])?)?;
//! let latency = registry.histogram("checkout_seconds", "Checkout time.", Buckets::default())?;
//!
//! orders.get_or_create(&["berlin", "express"]).inc();
//! latency.observe(0.042);
//!
//! let mut encoder = TextEncoder::new();
//! let text = std::str::from_utf8(encoder.encode(&registry))?;
//! assert!(text.contains("orders_total{shop=\"berlin\",kind=\"express\"} 1\n"));
//! assert!(text.contains("checkout_seconds_bucket{le=\"0.05\"} 1\n"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

pub mod encode;
#[cfg(unix)]
pub mod http;
pub mod metrics;
pub mod process;
mod wire;

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
