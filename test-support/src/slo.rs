//! Writes tinymon's SLO rules (`slo-rules.yml`) from its objectives
//! (`slo.yml`): the multi-window, multi-burn-rate alerts of the Google SRE
//! workbook ("Alerting on SLOs", alert 6), with the recording rules they
//! read.
//!
//! Why generated: an objective appears in every threshold of every alert
//! (burn rate times the error budget) and in the factor that turns an error
//! ratio into budget spent. Writing those by hand means editing a dozen
//! numbers that must agree; here a user edits one line of `slo.yml`.
//! `tests/slo_rules.rs` runs this in `make test` and fails while the
//! committed file differs from what it writes.
//!
//! What the rules are, for SLO `s` and window `W` (all `by (job)`):
//! - `job:tinymon_slo_errors:ratio_rate<W>{slo="s"}`: the share of bad
//!   requests over `W`, for W in 5m, 30m, 1h, 2h, 6h, 1d and 3d, and over
//!   the whole period (`ratio_rate30d`: the average of the 5m ratios, as
//!   Sloth does, so no rule reads 30 days of raw samples). A window with
//!   no requests has no sample at all, never 0/0.
//! - `job:tinymon_slo_requests:rate<W>`: requests a second over each long
//!   window, for the minimum-traffic guard.
//! - `job:tinymon_slo_objective:ratio{slo="s"}`: the objective itself, so
//!   dashboards divide by the budget without repeating it.
//! - one `TinymonErrorBudgetBurn` alert per burn rate of [`BURNS`], firing
//!   when both windows burn faster than the rate and the long window saw at
//!   least `min_request_rate` requests a second. Its value is the share of
//!   the period's budget spent in the long window.

use std::fmt::Write as _;

/// The windows every error ratio is recorded over.
pub const WINDOWS: [&str; 7] = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"];

/// The fixed buckets of `server_handle_request_seconds` (a latency
/// threshold must be one of them: only there is `_bucket` exact).
pub const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// One alert of the workbook's table: both windows must burn faster than
/// `rate` times the sustainable rate.
#[derive(Clone, Copy, Debug)]
pub struct Burn {
    pub long: &'static str,
    pub short: &'static str,
    pub rate: f64,
    /// `critical` pages (routed to oncall), `warning` makes a ticket (team).
    pub severity: &'static str,
}

/// The workbook's recommended pairs for a 30-day period: 2 % of the budget
/// in an hour or 5 % in six pages; 10 % in a day or in three days tickets.
pub const BURNS: [Burn; 4] = [
    Burn {
        long: "1h",
        short: "5m",
        rate: 14.4,
        severity: "critical",
    },
    Burn {
        long: "6h",
        short: "30m",
        rate: 6.0,
        severity: "critical",
    },
    Burn {
        long: "1d",
        short: "2h",
        rate: 3.0,
        severity: "warning",
    },
    Burn {
        long: "3d",
        short: "6h",
        rate: 1.0,
        severity: "warning",
    },
];

/// One objective of `slo.yml`.
#[derive(Clone, Debug, PartialEq)]
pub struct Slo {
    pub name: String,
    pub objective: f64,
    /// For a latency SLO: good requests take at most this long.
    pub threshold_seconds: Option<f64>,
}

/// All of `slo.yml`.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    pub period: String,
    pub job: String,
    pub selector: String,
    pub min_request_rate: f64,
    pub dashboard_url: String,
    pub slos: Vec<Slo>,
}

/// Hours in a duration written as Prometheus writes them (`5m`, `1h`, `3d`).
pub fn hours(d: &str) -> Result<f64, String> {
    let (n, unit) = d.split_at(d.len().saturating_sub(1));
    let n: f64 = n.parse().map_err(|_| format!("bad duration {d:?}"))?;
    match unit {
        "m" => Ok(n / 60.0),
        "h" => Ok(n),
        "d" => Ok(n * 24.0),
        "w" => Ok(n * 168.0),
        _ => Err(format!("bad duration {d:?}: use m, h, d or w")),
    }
}

/// Reads and checks `slo.yml`; every error names the field.
pub fn parse(yaml: &str) -> Result<Spec, String> {
    let doc: serde_yaml::Value = serde_yaml::from_str(yaml).map_err(|e| format!("slo.yml: {e}"))?;
    let text = |v: &serde_yaml::Value, key: &str| -> Result<String, String> {
        v[key]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("slo.yml: {key} must be a string"))
    };
    let number = |v: &serde_yaml::Value, key: &str| -> Result<f64, String> {
        v[key]
            .as_f64()
            .ok_or_else(|| format!("slo.yml: {key} must be a number"))
    };
    let period = text(&doc, "period")?;
    hours(&period).map_err(|e| format!("slo.yml: period: {e}"))?;
    let mut slos = Vec::new();
    for s in doc["slos"]
        .as_sequence()
        .ok_or("slo.yml: slos must be a list")?
    {
        let name = text(s, "name")?;
        let objective = number(s, "objective")?;
        if !(objective > 0.0 && objective < 1.0) {
            return Err(format!(
                "slo.yml: {name}: objective {objective} must be between 0 and 1 (0.999 is 99.9 %)"
            ));
        }
        let threshold_seconds = s
            .get("threshold_seconds")
            .map(|_| number(s, "threshold_seconds"))
            .transpose()?;
        if let Some(t) = threshold_seconds {
            if !BUCKETS.contains(&t) {
                return Err(format!(
                    "slo.yml: {name}: threshold_seconds {t} is not one of the buckets {BUCKETS:?}"
                ));
            }
        }
        match (name.as_str(), threshold_seconds) {
            ("availability", None) | ("latency", Some(_)) => {}
            ("availability", Some(_)) => {
                return Err("slo.yml: availability takes no threshold_seconds".into())
            }
            ("latency", None) => return Err("slo.yml: latency needs threshold_seconds".into()),
            (other, _) => {
                return Err(format!(
                    "slo.yml: unknown SLO {other:?}: availability or latency"
                ))
            }
        }
        slos.push(Slo {
            name,
            objective,
            threshold_seconds,
        });
    }
    Ok(Spec {
        period,
        job: text(&doc, "job")?,
        selector: text(&doc, "selector")?,
        min_request_rate: number(&doc, "min_request_rate")?,
        dashboard_url: text(&doc, "dashboard_url")?,
        slos,
    })
}

/// A number as short as it can be written without losing what was meant
/// (0.0144, not 0.014400000000000001).
pub fn num(x: f64) -> String {
    let s = format!("{x:.9}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_owned()
}

/// An `le` value as Prometheus 3 stores it: integers get a `.0`.
pub fn le(x: f64) -> String {
    let s = num(x);
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

/// The rules file for `spec`.
pub fn rules(spec: &Spec) -> Result<String, String> {
    let period_h = hours(&spec.period)?;
    let sel = |extra: &str| {
        let mut s = format!("job=\"{}\", {}", spec.job, spec.selector);
        if !extra.is_empty() {
            s.push_str(", ");
            s.push_str(extra);
        }
        s
    };
    let count = "server_handle_request_seconds_count";
    let mut out = String::new();
    out.push_str(
        "# Generated by `make slo-rules` from slo.yml (test-support/src/slo.rs);\n\
         # edit slo.yml, not this file. `make test` checks the two agree.\n\
         groups:\n  - name: tinymon-slo\n    rules:\n",
    );
    for slo in &spec.slos {
        let _ = write!(
            out,
            "      - record: job:tinymon_slo_objective:ratio\n        labels:\n          job: {}\n          slo: {}\n        expr: vector({})\n",
            spec.job,
            slo.name,
            num(slo.objective)
        );
    }
    for w in WINDOWS {
        for slo in &spec.slos {
            // `> 0` on the denominator: a window with no requests gives no
            // sample, so nothing divides by zero and no rule sees NaN.
            let total = format!("(sum by (job) (rate({count}{{{}}}[{w}])) > 0)", sel(""));
            let expr = match slo.threshold_seconds {
                None => format!(
                    "(\n  sum by (job) (rate({count}{{{}}}[{w}]))\n    or\n  0 * sum by (job) (rate({count}{{{}}}[{w}]))\n)\n/\n{total}",
                    sel("status=~\"5..\""),
                    sel("")
                ),
                Some(t) => format!(
                    "1 - (\n  sum by (job) (rate(server_handle_request_seconds_bucket{{{}}}[{w}]))\n  /\n  {total}\n)",
                    sel(&format!("le=\"{}\"", le(t)))
                ),
            };
            let _ = write!(
                out,
                "      - record: job:tinymon_slo_errors:ratio_rate{w}\n        labels:\n          slo: {}\n        expr: |\n{}",
                slo.name,
                indent(&expr, 10)
            );
        }
    }
    let _ = write!(
        out,
        "      # The whole period, from the 5m ratios (see slo.rs).\n      - record: job:tinymon_slo_errors:ratio_rate{p}\n        expr: avg_over_time(job:tinymon_slo_errors:ratio_rate5m[{p}])\n",
        p = spec.period
    );
    for b in BURNS {
        let _ = write!(
            out,
            "      - record: job:tinymon_slo_requests:rate{w}\n        expr: sum by (job) (rate({count}{{{}}}[{w}]))\n",
            sel(""),
            w = b.long
        );
    }

    // The alerts in the same group, after the rules they read: a group
    // evaluates its rules in order, so each alert sees this evaluation's
    // ratios (two groups run independently, and in promtool in either order).
    out.push_str("\n      # The alerts.\n");
    for slo in &spec.slos {
        let budget = 1.0 - slo.objective;
        for b in BURNS {
            let threshold = num(b.rate * budget);
            let share = hours(b.long)? / period_h;
            // The value: error ratio / budget = burn rate; times the long
            // window's share of the period = share of the budget spent.
            let factor = num(share / budget);
            let spent_at_threshold = num(b.rate * share * 100.0);
            let m = |w: &str| {
                format!(
                    "job:tinymon_slo_errors:ratio_rate{w}{{job=\"{}\", slo=\"{}\"}}",
                    spec.job, slo.name
                )
            };
            let expr = format!(
                "(\n    {} > {threshold}\n  and\n    {} > {threshold}\n  and on (job)\n    job:tinymon_slo_requests:rate{}{{job=\"{}\"}} >= {}\n)\n* {factor}",
                m(b.long),
                m(b.short),
                b.long,
                spec.job,
                num(spec.min_request_rate)
            );
            let what = if b.severity == "critical" {
                "page"
            } else {
                "ticket"
            };
            let _ = write!(
                out,
                "      # {what}: {slo_name} burning over {rate}x in {long} and {short} ({spent} % of the {period} budget in {long})\n\
                 \x20     - alert: TinymonErrorBudgetBurn\n        expr: |\n{expr}        labels:\n          severity: {sev}\n          slo: {slo_name}\n          long_window: {long}\n          short_window: {short}\n          burn_rate: \"{rate}\"\n        annotations:\n          summary: \"tinymon {slo_name} SLO: error budget burning over {rate}x (windows {long} and {short})\"\n          description: \"{long} of traffic at the error ratio of the last {long} spends {{{{ $value | humanizePercentage }}}} of the {period} error budget of the {slo_name} SLO ({obj} %); this alert fires from {spent} %, a burn rate of {rate}x over {long} and {short}.\"\n          dashboard: \"{url}\"\n",
                rate = num(b.rate),
                long = b.long,
                short = b.short,
                spent = spent_at_threshold,
                period = spec.period,
                slo_name = slo.name,
                expr = indent(&expr, 10),
                sev = b.severity,
                obj = num(slo.objective * 100.0),
                url = spec.dashboard_url,
            );
        }
    }
    Ok(out)
}

fn indent(text: &str, by: usize) -> String {
    text.lines().map(|l| format!("{:by$}{l}\n", "")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_le_as_prometheus_writes_them() {
        assert_eq!(num(14.4 * (1.0 - 0.999)), "0.0144");
        assert_eq!(num(1.0), "1");
        assert_eq!(le(1.0), "1.0");
        assert_eq!(le(0.25), "0.25");
        assert_eq!(le(10.0), "10.0");
        assert_eq!(hours("3d").unwrap(), 72.0);
        assert_eq!(hours("30m").unwrap(), 0.5);
        assert!(hours("3x").is_err());
    }

    #[test]
    fn bad_specs_name_what_is_wrong() {
        let good = "period: 30d\njob: j\nselector: 'a=\"b\"'\nmin_request_rate: 0.1\ndashboard_url: u\nslos:\n  - name: availability\n    objective: 0.999\n";
        assert!(parse(good).is_ok());
        let err = parse(&good.replace("0.999", "99.9")).unwrap_err();
        assert!(err.contains("between 0 and 1"), "{err}");
        let err = parse(&format!(
            "{good}  - name: latency\n    objective: 0.99\n    threshold_seconds: 0.3\n"
        ))
        .unwrap_err();
        assert!(err.contains("not one of the buckets"), "{err}");
        let err = parse(&good.replace("30d", "30x")).unwrap_err();
        assert!(err.contains("period"), "{err}");
    }
}
