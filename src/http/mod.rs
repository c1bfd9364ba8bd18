//! The instrumented HTTP service.
//!
//! - [`server`]: tiny_http and the worker pool, graceful shutdown;
//! - [`guard`]: timeouts and limits on tiny_http's connections;
//! - [`app`]: the routes and the middleware recording RED metrics;
//! - [`router`]: route templates, the `path` label;
//! - [`labels`]: the fixed sets every label value comes from;
//! - [`service_metrics`]: the metric families, named as in the Go original;
//! - [`work`]: the `/work` route's simulated downstream call;
//! - `page`: the live page at `/`.

pub mod app;
mod closing;
mod framing;
pub mod guard;
pub mod labels;
mod page;
pub mod reply;
mod respond;
pub mod router;
pub mod server;
pub mod service_metrics;
mod socket;
pub mod work;

pub use app::App;
pub use labels::{method_label, status_label, OTHER_METHOD, UNMATCHED};
pub use router::{RouteMatch, RouteTemplate, Router};
pub use server::{RunningServer, ServeError, ShutdownHandle};
pub use service_metrics::ServiceMetrics;
