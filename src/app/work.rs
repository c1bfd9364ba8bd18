//! `GET /work`: a request that calls a (simulated) downstream dependency.
//!
//! The Go original recorded client_* metrics around calls to other services;
//! tinymon has no real dependency, so it sleeps for the requested latency and
//! fails with the requested probability, recording the call exactly as a real
//! one would be recorded. Query parameters, both optional:
//!
//! - `delay_ms`: the dependency's latency, a whole number 0–2000 (default 20);
//! - `fail`: the probability the call fails, a decimal 0–1 (default 0).
//!
//! Anything else in the query, a repeated parameter or a value out of range is
//! answered 400 with a message naming the parameter. The 2 s ceiling keeps
//! every request well inside the 5 s shutdown budget.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use tinymon::metrics::TraceContext;

use super::client_metrics::{ClientMetrics, Peer};
use super::rng::Rng;
use super::work_params::WorkParams;

/// The simulated dependency, as the client_* labels name it.
pub(crate) const DOWNSTREAM: Peer = Peer {
    kind: "http",
    name: "inventory",
    op: "lookup",
    addr: "inventory:9000",
};

/// Performs the simulated call and records it, with `trace` as the
/// exemplar of its duration; true when it succeeded.
pub(crate) fn call_downstream(
    metrics: &ClientMetrics,
    params: WorkParams,
    roll: f64,
    trace: Option<&TraceContext>,
) -> bool {
    metrics.call_started(&DOWNSTREAM);
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(params.delay_ms));
    let ok = roll >= params.fail;
    let status = if ok { "200" } else { "500" };
    metrics.call_finished(&DOWNSTREAM, status, started.elapsed(), trace);
    ok
}

thread_local! {
    static THREAD_RNG: RefCell<Rng> = RefCell::new(Rng::from_entropy());
}

/// A roll in [0, 1) from this thread's generator: no lock, no allocation.
pub(crate) fn roll() -> f64 {
    THREAD_RNG.with(|rng| rng.borrow_mut().next_f64())
}
