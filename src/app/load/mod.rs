//! `tinymon load`: a bounded traffic generator with a realistic mix.
//!
//! Each of `concurrency` threads keeps a keep-alive connection to every
//! address the target resolves to, takes them in turn (see `targets`), and
//! sends on
//! a fixed schedule, so together they offer `rps` requests per second (they
//! do not speed up to catch up after a stall, so the server is never
//! flooded). The mix exercises every panel of the dashboard: mostly `/hello`,
//! fast, slow and failing `/work` calls, health checks, unknown URLs (404)
//! and a wrong method (405). Latencies go into a fixed-size log-linear
//! histogram, so memory stays flat however long it runs; at the end (or
//! every minute when running until stopped) it prints the achieved rate and
//! latency percentiles.

mod targets;

use std::fmt;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::cli::LoadConfig;
use super::client::Url;
use super::rng::Rng;

/// Sub-buckets per power of two: percentiles are within 1/16 of the truth.
const SUB: u64 = 16;
const SLOTS: usize = 64 * SUB as usize;

/// Latency counts in microseconds, log-linear.
#[derive(Clone)]
pub struct Latencies {
    counts: Box<[u64; SLOTS]>,
    total: u64,
    max_us: u64,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            counts: Box::new([0; SLOTS]),
            total: 0,
            max_us: 0,
        }
    }
}

impl Latencies {
    fn slot(us: u64) -> usize {
        if us < SUB {
            return us as usize;
        }
        let log = 63 - u64::from(us.leading_zeros());
        let shift = log - 4;
        ((log - 3) * SUB + ((us >> shift) & (SUB - 1))) as usize
    }

    fn lower_bound(slot: usize) -> u64 {
        let slot = slot as u64;
        if slot < SUB {
            return slot;
        }
        let log = slot / SUB + 3;
        let sub = slot % SUB;
        (SUB | sub) << (log - 4)
    }

    /// Records one latency.
    pub fn record(&mut self, d: Duration) {
        let us = d.as_micros().min(u128::from(u64::MAX)) as u64;
        self.counts[Self::slot(us)] += 1;
        self.total += 1;
        self.max_us = self.max_us.max(us);
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Latencies) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
        self.max_us = self.max_us.max(other.max_us);
    }

    /// The latency at quantile `q` (0–1), as the lower edge of its slot.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (slot, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Duration::from_micros(Self::lower_bound(slot).min(self.max_us));
            }
        }
        Duration::from_micros(self.max_us)
    }

    /// Recorded latencies.
    pub fn count(&self) -> u64 {
        self.total
    }
}

/// What a run achieved.
#[derive(Clone, Default)]
pub struct Report {
    pub elapsed: Duration,
    pub latencies: Latencies,
    /// Responses by status code class index (status / 100), 1xx–5xx.
    pub by_class: [u64; 6],
    /// Requests that got no response (connect, read or write failures).
    pub failures: u64,
}

impl Report {
    fn merge(&mut self, other: &Report) {
        self.latencies.merge(&other.latencies);
        for (a, b) in self.by_class.iter_mut().zip(other.by_class) {
            *a += b;
        }
        self.failures += other.failures;
    }

    /// Responses per second.
    pub fn rate(&self) -> f64 {
        self.latencies.count() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |q: f64| self.latencies.quantile(q).as_secs_f64() * 1e3;
        writeln!(
            f,
            "requests {} in {:.1}s: {:.1} req/s; 2xx {} 4xx {} 5xx {}; failed {}",
            self.latencies.count(),
            self.elapsed.as_secs_f64(),
            self.rate(),
            self.by_class[2],
            self.by_class[4],
            self.by_class[5],
            self.failures
        )?;
        writeln!(
            f,
            "latency ms: p50 {:.3} p90 {:.3} p99 {:.3} max {:.3}",
            ms(0.5),
            ms(0.9),
            ms(0.99),
            self.latencies.max_us as f64 / 1e3
        )
    }
}

/// One request of the mix: method and path.
///
/// The mix keeps the demo stack inside its SLOs (`slo.yml`), at about half
/// of each error budget, so a healthy `make up` fires no burn-rate alert
/// while every panel still has something to show: 1 % of requests ask
/// `/work` to fail 5 % of the time (0.05 % errors against a 0.1 % budget),
/// and 0.5 % take 150–1,050 ms, most of them over the 0.25 s threshold
/// (about 0.45 % slow against a 1 % budget). 4xx answers (unknown paths,
/// a POST) are the client's errors and count as good.
pub fn pick_request(rng: &mut Rng, buf: &mut String) -> &'static str {
    use std::fmt::Write as _;
    buf.clear();
    let roll = rng.next_u64() % 1000;
    let method = match roll {
        0..=514 => {
            buf.push_str("/hello");
            "GET"
        }
        515..=814 => {
            let _ = write!(buf, "/work?delay_ms={}", 2 + rng.next_u64() % 60);
            "GET"
        }
        815..=819 => {
            let _ = write!(buf, "/work?delay_ms={}", 150 + rng.next_u64() % 900);
            "GET"
        }
        820..=829 => {
            let _ = write!(buf, "/work?delay_ms={}&fail=0.05", 5 + rng.next_u64() % 40);
            "GET"
        }
        830..=909 => {
            buf.push_str("/healthz");
            "GET"
        }
        910..=969 => {
            let _ = write!(buf, "/no/such/page/{}", rng.next_u64() % 1_000_000);
            "GET"
        }
        _ => {
            buf.push_str("/hello");
            "POST"
        }
    };
    method
}

/// Runs the load described by `config` until its duration ends or `stop` is
/// set, printing a report every minute when it has no duration.
pub fn run_until(config: &LoadConfig, stop: Arc<AtomicBool>) -> Result<Report, String> {
    let url = Url::parse(&config.target)?;
    let interval = Duration::from_secs_f64(config.concurrency as f64 / f64::from(config.rps));
    let started = Instant::now();
    let deadline = config.duration.map(|d| started + d);
    let mut total = Report::default();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..config.concurrency)
            .map(|i| {
                let url = &url;
                let stop = &stop;
                s.spawn(move || {
                    // Spread the threads' schedules across one interval.
                    let offset = interval.mul_f64(i as f64 / config.concurrency as f64);
                    drive(url, started + offset, interval, deadline, stop, i as u64)
                })
            })
            .collect();
        for w in workers {
            if let Ok(r) = w.join() {
                total.merge(&r);
            }
        }
    });
    total.elapsed = started.elapsed();
    Ok(total)
}

fn drive(
    url: &Url,
    first: Instant,
    interval: Duration,
    deadline: Option<Instant>,
    stop: &AtomicBool,
    seed: u64,
) -> Report {
    let mut report = Report::default();
    let mut window = Report::default();
    let mut window_start = Instant::now();
    let mut rng = Rng::seeded(Rng::from_entropy().next_u64() ^ seed.wrapping_mul(0x9e37_79b9));
    let mut targets = targets::Targets::new(url, seed as usize, Duration::from_secs(5));
    let mut path = String::new();
    let mut traceparent = String::with_capacity(55);
    let mut next = first;
    loop {
        let now = Instant::now();
        if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| now >= d) {
            break;
        }
        if next > now {
            std::thread::sleep((next - now).min(Duration::from_millis(200)));
            continue;
        }
        // Do not burst to catch up after a stall: skip missed slots.
        next = next.max(now - interval) + interval;
        let method = pick_request(&mut rng, &mut path);
        let Some(c) = targets.next() else {
            window.failures += 1;
            continue;
        };
        // Every request is a new trace, so the service's exemplars (and
        // the stack's Prometheus, which stores them) have ids to show.
        traceparent.clear();
        let _ = write!(
            traceparent,
            "00-{:016x}{:016x}-{:016x}-01",
            rng.next_u64() | 1,
            rng.next_u64(),
            rng.next_u64() | 1
        );
        let sent = Instant::now();
        match c.request_with(method, &path, &[("traceparent", &traceparent)]) {
            Ok(r) => {
                window.latencies.record(sent.elapsed());
                window.by_class[usize::from(r.status / 100).min(5)] += 1;
            }
            Err(_) => {
                window.failures += 1;
                targets.drop_current();
            }
        }
        if deadline.is_none() && seed == 0 && window_start.elapsed() >= Duration::from_secs(60) {
            window.elapsed = window_start.elapsed();
            print!("[thread 0, last minute] {window}");
            report.merge(&window);
            window = Report::default();
            window_start = Instant::now();
        }
    }
    report.merge(&window);
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_slots_are_monotone_and_tight() {
        let mut last = 0;
        for us in (0..1_000_000u64).step_by(7) {
            let slot = Latencies::slot(us);
            assert!(slot >= last);
            last = slot;
            let low = Latencies::lower_bound(slot);
            assert!(low <= us && us - low <= us / 16 + 1, "{us} -> {low}");
        }
        assert!(Latencies::slot(u64::MAX) < SLOTS);
    }

    #[test]
    fn quantiles() {
        let mut l = Latencies::default();
        for ms in 1..=100 {
            l.record(Duration::from_millis(ms));
        }
        let p50 = l.quantile(0.5).as_millis();
        let p99 = l.quantile(0.99).as_millis();
        assert!((47..=50).contains(&p50), "{p50}");
        assert!((93..=99).contains(&p99), "{p99}");
        assert_eq!(l.count(), 100);
    }

    #[test]
    fn mix_covers_every_kind_of_request() {
        let mut rng = Rng::seeded(7);
        let mut path = String::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..2_000 {
            let method = pick_request(&mut rng, &mut path);
            let kind = match (method, path.split('?').next().unwrap()) {
                ("POST", _) => "post",
                (_, p) if p.starts_with("/no/") => "unknown",
                (_, "/work") if path.contains("fail") => "failing",
                (_, p) => p.to_string().leak(),
            };
            seen.insert(kind);
            assert!(path.len() < 64);
        }
        for kind in ["/hello", "/work", "/healthz", "unknown", "failing", "post"] {
            assert!(seen.contains(kind), "{kind} never picked");
        }
    }

    /// The mix spends at most about half of each error budget of slo.yml
    /// (0.1 % errors; 1 % over 0.25 s), among the requests the SLOs count
    /// (all but /healthz and /metrics). A request asking for 240 ms or more
    /// counts as slow here, for the server's own time on top.
    #[test]
    fn mix_stays_inside_the_slos() {
        let mut rng = Rng::seeded(11);
        let mut path = String::new();
        let (mut counted, mut expected_errors, mut slow) = (0u32, 0.0f64, 0u32);
        for _ in 0..400_000 {
            pick_request(&mut rng, &mut path);
            if path == "/healthz" {
                continue;
            }
            counted += 1;
            let query = path.split_once('?').map_or("", |(_, q)| q);
            for pair in query.split('&') {
                match pair.split_once('=') {
                    Some(("fail", p)) => expected_errors += p.parse::<f64>().unwrap(),
                    Some(("delay_ms", d)) if d.parse::<u32>().unwrap() >= 240 => slow += 1,
                    _ => {}
                }
            }
        }
        let error_ratio = expected_errors / f64::from(counted);
        let slow_ratio = f64::from(slow) / f64::from(counted);
        assert!(
            error_ratio > 0.0 && error_ratio < 0.6 * 0.001,
            "{error_ratio}"
        );
        assert!(slow_ratio > 0.0 && slow_ratio < 0.6 * 0.01, "{slow_ratio}");
    }
}
