//! The demo service and its command line: everything in the `tinymon`
//! binary that is not the library.
//!
//! - [`demo`]: the routes `/`, `/healthz`, `/hello` and `/work` on a
//!   [`tinymon::http::Service`], with the client_* metrics of `/work`;
//! - `cli`: flags and environment → what to run;
//! - `client` (from `tinymon-demo-kit`), `load`: the HTTP client of
//!   `healthcheck` and the load generator;
//! - `signals`: SIGTERM/SIGINT as a blocking wait;
//! - `restart`: restarting in place with `exec` when the server asks.

pub(crate) mod cli;
mod client_metrics;
pub(crate) mod load;
mod page;
pub(crate) mod restart;
pub(crate) mod signals;
mod work;

// The parts the tests and fuzz targets use too live in a crate of their own.
pub(crate) use tinymon_demo_kit::{client, rng, work_params};

use std::sync::Arc;

use tiny_http::{Method, Request};
use tinymon::http::{Reply, Service};
use tinymon::metrics::{MetricError, Registry, TraceContext};
use tinymon::process::ProcessCollector;

use client_metrics::ClientMetrics;

/// What the demo's handlers share.
pub(crate) struct Demo {
    client: ClientMetrics,
}

/// The demo service: `/metrics` plus the four demo routes, recording into
/// `registry`, which also gets the `process_*` collector.
pub(crate) fn demo(registry: Arc<Registry>) -> Result<Service<Demo>, MetricError> {
    registry.register_collector(ProcessCollector)?;
    let client = ClientMetrics::register(&registry)?;
    let routes = Service::new(registry, Demo { client })?
        .route(Method::Get, "/", index)
        .and_then(|s| s.route(Method::Get, "/healthz", healthz))
        .and_then(|s| s.route(Method::Get, "/hello", hello))
        .and_then(|s| s.route(Method::Get, "/work", work));
    Ok(routes.expect("the demo routes are valid"))
}

fn index<'a>(_: &'a Demo, _: &Request) -> Reply<'a> {
    page::reply()
}

fn healthz<'a>(_: &'a Demo, _: &Request) -> Reply<'a> {
    Reply::text(200, "ok\n")
}

fn hello<'a>(_: &'a Demo, _: &Request) -> Reply<'a> {
    Reply::text(200, "hello from tinymon\n")
}

fn work<'a>(demo: &'a Demo, request: &Request) -> Reply<'a> {
    let query = request.url().split_once('?').map_or("", |(_, q)| q);
    let params = match work_params::parse_query(query) {
        Ok(p) => p,
        Err(message) => return Reply::owned(400, message + "\n"),
    };
    let trace = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("traceparent"))
        .and_then(|h| TraceContext::from_traceparent(h.value.as_str()));
    if work::call_downstream(&demo.client, params, work::roll(), trace.as_ref()) {
        Reply::text(200, "downstream call succeeded\n")
    } else {
        Reply::text(502, "downstream call failed\n")
    }
}
