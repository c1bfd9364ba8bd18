//! The query of `GET /work`, parsed and checked; the fuzz target
//! `route_and_query` drives it.

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
}
