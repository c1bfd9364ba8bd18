//! HTTP instrumentation for tiny_http.
//!
//! Two ways in:
//! - [`RedMetrics::serve`] wraps one request of your own tiny_http loop
//!   with the Go original's RED metrics (request total, status, seconds,
//!   in-flight);
//! - [`Service`] + [`Server`]: routes by template, `/metrics`, the same RED
//!   metrics, and a worker pool that makes tiny_http safe to face clients:
//!   strict request framing (RFC 9112), limits on targets, headers and
//!   bodies, idle timeouts and a connection limit enforced by a guard
//!   thread, supervised workers and a graceful shutdown.
//!
//! Label values come from fixed sets ([`method_label`], [`status_label`],
//! route templates or [`UNMATCHED`]), so no client can create series.

mod clock;
mod closing;
mod framing;
mod guard;
mod in_flight;
mod labels;
mod raw_response;
mod red;
mod red_series;
mod reply;
mod router;
mod server;
mod server_metrics;
mod service;
mod service_metrics;
mod socket;

pub use labels::{method_label, status_label, OTHER_METHOD, SERVER_TYPE, UNMATCHED};
pub use red::RedMetrics;
pub use reply::{Reply, TEXT};
pub use router::{RouteMatch, RouteTemplate, Router};
pub use server::{ServeError, Server, ServerSettings, ShutdownHandle, Stopped};
pub use server_metrics::ServerMetrics;
pub use service::{Handler, Service, MAX_HEADER_BYTES, MAX_TARGET_BYTES};
pub use service_metrics::ServiceMetrics;
