//! A strict reader of the text format, as tinymon writes it.
//!
//! It exists to check the encoder: the consistency tests and the fuzz
//! target encode values, read them back with this parser, and compare. It
//! accepts only what the encoder is meant to produce: each family has
//! `# HELP` then `# TYPE`, then its samples, and each family appears once.
//! Any other escape, a stray character or an unknown type is an error.

use std::fmt;

/// The `# TYPE` of a family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One family read back.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedFamily {
    pub name: String,
    pub help: String,
    pub kind: Kind,
    pub samples: Vec<ParsedSample>,
}

/// One sample line read back.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedSample {
    /// The full sample name (`x_bucket`, `x_sum`, ... for histograms).
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// Where and why parsing failed.
#[derive(Debug, PartialEq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parses a whole scrape.
///
/// ```
/// let text = "# HELP up Whether it is up.\n# TYPE up gauge\nup{job=\"a\\\"b\"} 1\n";
/// let families = tinymon_test_support::parse_text(text).unwrap();
/// assert_eq!(families[0].samples[0].labels, [("job".to_string(), "a\"b".to_string())]);
/// ```
pub fn parse_text(text: &str) -> Result<Vec<ParsedFamily>, ParseError> {
    let mut families: Vec<ParsedFamily> = Vec::new();
    let body = match text.strip_suffix('\n') {
        Some(b) => b,
        None if text.is_empty() => return Ok(families),
        None => {
            return Err(ParseError {
                line: text.lines().count(),
                message: "text does not end with a newline".into(),
            })
        }
    };
    let mut lines = body.split('\n').enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        let err = |message: String| ParseError {
            line: i + 1,
            message,
        };
        let Some(rest) = line.strip_prefix("# HELP ") else {
            return Err(err(format!("expected # HELP, found {line:?}")));
        };
        let (name, help) = rest
            .split_once(' ')
            .ok_or_else(|| err("HELP without text".into()))?;
        check_name(name).map_err(err)?;
        let help = unescape(help, false).map_err(err)?;
        let (j, type_line) = lines
            .next()
            .ok_or_else(|| err(format!("{name}: HELP without TYPE")))?;
        let err = |message: String| ParseError {
            line: j + 1,
            message,
        };
        let kind = match type_line
            .strip_prefix("# TYPE ")
            .and_then(|t| t.split_once(' '))
        {
            Some((n, "counter")) if n == name => Kind::Counter,
            Some((n, "gauge")) if n == name => Kind::Gauge,
            Some((n, "histogram")) if n == name => Kind::Histogram,
            _ => {
                return Err(err(format!(
                    "expected # TYPE {name} ..., found {type_line:?}"
                )))
            }
        };
        if families.iter().any(|f| f.name == name) {
            return Err(err(format!("family {name} appears twice")));
        }
        let mut samples = Vec::new();
        while let Some((k, line)) = lines.next_if(|(_, l)| !l.starts_with('#')) {
            let sample = parse_sample(line).map_err(|m| ParseError {
                line: k + 1,
                message: m,
            })?;
            let suffix = &sample.name[name.len().min(sample.name.len())..];
            let belongs = sample.name.starts_with(name)
                && match kind {
                    Kind::Histogram => ["_bucket", "_sum", "_count"].contains(&suffix),
                    _ => suffix.is_empty(),
                };
            if !belongs {
                return Err(ParseError {
                    line: k + 1,
                    message: format!("sample {} outside family {name}", sample.name),
                });
            }
            samples.push(sample);
        }
        families.push(ParsedFamily {
            name: name.to_owned(),
            help,
            kind,
            samples,
        });
    }
    Ok(families)
}

/// A metric name (`colons` true) or label name from the Prometheus data
/// model; label names starting with `__` are reserved.
fn check_name_chars(name: &str, colons: bool) -> Result<(), String> {
    let ok = !name.is_empty()
        && (colons || !name.starts_with("__"))
        && name.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_alphabetic()
                || b == b'_'
                || (colons && b == b':')
                || (i > 0 && b.is_ascii_digit())
        });
    if ok {
        Ok(())
    } else {
        Err(format!("invalid name {name:?}"))
    }
}

fn check_name(name: &str) -> Result<(), String> {
    check_name_chars(name, true)
}

fn parse_sample(line: &str) -> Result<ParsedSample, String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or_else(|| format!("no value in {line:?}"))?;
    let name = &line[..name_end];
    check_name(name)?;
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(mut inner) = rest.strip_prefix('{') {
        loop {
            let (label, after) = inner
                .split_once("=\"")
                .ok_or_else(|| format!("bad label in {line:?}"))?;
            check_name_chars(label, false)?;
            let (value, after) = take_quoted(after)?;
            labels.push((label.to_owned(), value));
            match after.as_bytes().first() {
                Some(b',') => inner = &after[1..],
                Some(b'}') => {
                    rest = &after[1..];
                    break;
                }
                _ => return Err(format!("bad label list in {line:?}")),
            }
        }
    }
    let value = rest
        .strip_prefix(' ')
        .ok_or_else(|| format!("no space before the value in {line:?}"))?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v if !v.is_empty()
            && v.bytes()
                .all(|b| b.is_ascii_digit() || b"+-.e".contains(&b)) =>
        {
            v.parse().map_err(|_| format!("bad value {v:?}"))?
        }
        v => return Err(format!("bad value {v:?}")),
    };
    Ok(ParsedSample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Reads an escaped label value up to its closing quote.
fn take_quoted(s: &str) -> Result<(String, &str), String> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &s[i + 1..])),
            '\\' => match chars.next().map(|(_, c)| c) {
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some('n') => out.push('\n'),
                other => return Err(format!("bad escape \\{other:?}")),
            },
            '\n' => return Err("raw newline in a label value".into()),
            c => out.push(c),
        }
    }
    Err("unterminated label value".into())
}

fn unescape(s: &str, quote: bool) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                Some('"') if quote => out.push('"'),
                other => return Err(format!("bad escape \\{other:?} in HELP")),
            },
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_what_the_encoder_never_writes() {
        for bad in [
            "x 1\n",
            "# HELP x h\nx 1\n",
            "# HELP x h\n# TYPE x summary\n",
            "# HELP x h\n# TYPE x gauge\nx{a=\"\\t\"} 1\n",
            "# HELP x h\n# TYPE x gauge\nx{a=\"b} 1\n",
            "# HELP x h\n# TYPE x gauge\nx 1",
            "# HELP x h\n# TYPE x gauge\ny 1\n",
            "# HELP x h\n# TYPE x gauge\nx one\n",
            "# HELP x h\n# TYPE x gauge\n# HELP x h\n# TYPE x gauge\n",
            "# HELP x a\\tb\n# TYPE x gauge\n",
        ] {
            assert!(parse_text(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn reads_histograms() {
        let text =
            "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.5\nh_count 2\n";
        let f = parse_text(text).unwrap();
        assert_eq!(f[0].kind, Kind::Histogram);
        assert_eq!(f[0].samples.len(), 3);
        assert_eq!(f[0].samples[0].value, 2.0);
    }
}
