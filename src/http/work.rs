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

use std::time::{Duration, Instant};

use super::service_metrics::{Peer, ServiceMetrics};

/// The simulated dependency, as the client_* labels name it.
pub const DOWNSTREAM: Peer = Peer {
    kind: "http",
    name: "inventory",
    op: "lookup",
    addr: "inventory:9000",
};

/// Upper bound of `delay_ms`.
pub const MAX_DELAY_MS: u64 = 2_000;
const DEFAULT_DELAY_MS: u64 = 20;

/// Validated `/work` parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WorkParams {
    pub delay_ms: u64,
    pub fail: f64,
}

impl Default for WorkParams {
    fn default() -> Self {
        WorkParams {
            delay_ms: DEFAULT_DELAY_MS,
            fail: 0.0,
        }
    }
}

/// Parses the query string (without `?`).
///
/// ```
/// use tinymon::http::work::{parse_query, WorkParams};
/// assert_eq!(parse_query("delay_ms=5&fail=0.5"), Ok(WorkParams { delay_ms: 5, fail: 0.5 }));
/// assert!(parse_query("delay_ms=9999").is_err());
/// ```
pub fn parse_query(query: &str) -> Result<WorkParams, String> {
    let mut params = WorkParams::default();
    let (mut seen_delay, mut seen_fail) = (false, false);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "delay_ms" => {
                if std::mem::replace(&mut seen_delay, true) {
                    return Err("delay_ms given more than once".into());
                }
                params.delay_ms = value
                    .parse()
                    .ok()
                    .filter(|v| *v <= MAX_DELAY_MS && !value.starts_with('+'))
                    .ok_or_else(|| {
                        format!(
                            "delay_ms must be a whole number from 0 to {MAX_DELAY_MS}, got {:?}",
                            clip(value)
                        )
                    })?;
            }
            "fail" => {
                if std::mem::replace(&mut seen_fail, true) {
                    return Err("fail given more than once".into());
                }
                params.fail = value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| {
                        (0.0..=1.0).contains(v)
                            && value.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                    })
                    .ok_or_else(|| {
                        format!("fail must be a decimal from 0 to 1, got {:?}", clip(value))
                    })?;
            }
            other => {
                return Err(format!(
                    "unknown parameter {:?}: /work takes delay_ms and fail",
                    clip(other)
                ))
            }
        }
    }
    Ok(params)
}

/// Keeps echoed input short, so an error message never grows with the request.
fn clip(s: &str) -> &str {
    match s.char_indices().nth(32) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

/// Performs the simulated call and records it; true when it succeeded.
pub fn call_downstream(metrics: &ServiceMetrics, params: WorkParams, roll: f64) -> bool {
    metrics.call_started(&DOWNSTREAM);
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(params.delay_ms));
    let ok = roll >= params.fail;
    let status = if ok { "200" } else { "500" };
    metrics.call_finished(&DOWNSTREAM, status, started.elapsed());
    ok
}

/// A small xorshift64* generator for failure rolls; statistical quality is
/// all that matters here.
pub struct Rng(u64);

impl Rng {
    /// Seeds from the clock and a per-call address, never zero.
    pub fn from_entropy() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let local = 0u8;
        let addr = &local as *const u8 as u64;
        Rng((nanos ^ addr.rotate_left(32)) | 1)
    }

    /// A seeded generator (tests, load generation).
    pub fn seeded(seed: u64) -> Self {
        Rng(seed | 1)
    }

    /// The next value in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_values() {
        assert_eq!(parse_query(""), Ok(WorkParams::default()));
        assert_eq!(parse_query("&&"), Ok(WorkParams::default()));
        assert_eq!(
            parse_query("fail=1&delay_ms=0"),
            Ok(WorkParams {
                delay_ms: 0,
                fail: 1.0
            })
        );
        assert_eq!(parse_query("delay_ms=2000").unwrap().delay_ms, 2000);
    }

    #[test]
    fn bad_values_name_the_parameter() {
        for (q, word) in [
            ("delay_ms=2001", "delay_ms"),
            ("delay_ms=-1", "delay_ms"),
            ("delay_ms=+5", "delay_ms"),
            ("delay_ms=", "delay_ms"),
            ("delay_ms=1e3", "delay_ms"),
            ("delay_ms=99999999999999999999999", "delay_ms"),
            ("fail=1.5", "fail"),
            ("fail=NaN", "fail"),
            ("fail=inf", "fail"),
            ("fail=-0", "fail"),
            ("fail=1e-1", "fail"),
            ("fail", "fail"),
            ("delay_ms=1&delay_ms=2", "more than once"),
            ("sleep=5", "unknown parameter"),
        ] {
            let err = parse_query(q).unwrap_err();
            assert!(err.contains(word), "{q}: {err}");
        }
        let long = format!("x{}=1", "y".repeat(10_000));
        assert!(parse_query(&long).unwrap_err().len() < 100);
    }

    #[test]
    fn rng_stays_in_unit_interval_and_varies() {
        let mut r = Rng::seeded(42);
        let values: Vec<f64> = (0..10_000).map(|_| r.next_f64()).collect();
        assert!(values.iter().all(|v| (0.0..1.0).contains(v)));
        let below_half = values.iter().filter(|v| **v < 0.5).count();
        assert!((4_500..5_500).contains(&below_half), "{below_half}");
    }
}
