//! What can go wrong when metrics are defined, and the checks that find it.
//!
//! Everything here runs when a family or collector is built or registered,
//! never on the hot path: once a family exists, its names are known good.

use std::fmt;

/// A metric definition the registry or a constructor refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricError {
    /// A metric name outside `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    InvalidMetricName(String),
    /// A label name outside `[a-zA-Z_][a-zA-Z0-9_]*`, or starting with `__`.
    InvalidLabelName(String),
    /// A label name that the family's type writes itself (`le` for histograms).
    ReservedLabelName(String),
    /// The same label name twice in one family.
    DuplicateLabelName(String),
    /// Every family needs help text; `promtool check metrics` flags empty help.
    EmptyHelp(String),
    /// Histogram buckets that are empty, unsorted, repeated or not finite.
    InvalidBuckets(String),
    /// A series cap of zero would drop every observation; one above
    /// [`super::MAX_SERIES_CAP`] would reserve an unreasonable table.
    InvalidSeriesCap(String, usize),
    /// A name (or a histogram's `_bucket`/`_sum`/`_count`) already registered.
    Duplicate(String),
}

impl fmt::Display for MetricError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricError::InvalidMetricName(n) => write!(
                f,
                "invalid metric name {n:?}: use letters, digits, '_' and ':', not starting with a digit"
            ),
            MetricError::InvalidLabelName(n) => write!(
                f,
                "invalid label name {n:?}: use letters, digits and '_', not starting with a digit or \"__\""
            ),
            MetricError::ReservedLabelName(n) => {
                write!(f, "label name {n:?} is reserved for histogram buckets")
            }
            MetricError::DuplicateLabelName(n) => write!(f, "label name {n:?} given twice"),
            MetricError::EmptyHelp(n) => write!(f, "metric {n:?} has no help text"),
            MetricError::InvalidBuckets(why) => write!(f, "invalid histogram buckets: {why}"),
            MetricError::InvalidSeriesCap(n, cap) => write!(
                f,
                "metric {n:?}: series cap {cap} is outside 1..={}",
                super::MAX_SERIES_CAP
            ),
            MetricError::Duplicate(n) => write!(f, "metric name {n:?} is already registered"),
        }
    }
}

impl std::error::Error for MetricError {}

/// Checks a metric name against the Prometheus data model.
pub(crate) fn check_metric_name(name: &str) -> Result<(), MetricError> {
    let ok = !name.is_empty()
        && name.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_alphabetic() || b == b'_' || b == b':' || (i > 0 && b.is_ascii_digit())
        });
    if ok {
        Ok(())
    } else {
        Err(MetricError::InvalidMetricName(name.to_owned()))
    }
}

/// Checks one label name; `__` names are reserved for Prometheus itself.
pub(crate) fn check_label_name(name: &str) -> Result<(), MetricError> {
    let ok = !name.is_empty()
        && !name.starts_with("__")
        && name
            .bytes()
            .enumerate()
            .all(|(i, b)| b.is_ascii_alphabetic() || b == b'_' || (i > 0 && b.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(MetricError::InvalidLabelName(name.to_owned()))
    }
}

/// Checks a family's name, help and label names together.
pub(crate) fn check_definition(
    name: &str,
    help: &str,
    label_names: &[&str],
    reserved: &[&str],
) -> Result<(), MetricError> {
    check_metric_name(name)?;
    if help.trim().is_empty() {
        return Err(MetricError::EmptyHelp(name.to_owned()));
    }
    for (i, label) in label_names.iter().enumerate() {
        check_label_name(label)?;
        if reserved.contains(label) {
            return Err(MetricError::ReservedLabelName((*label).to_owned()));
        }
        if label_names[..i].contains(label) {
            return Err(MetricError::DuplicateLabelName((*label).to_owned()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names() {
        for good in ["a", "_x", "http_requests_total", "ns:rule:rate5m", "A1"] {
            assert_eq!(check_metric_name(good), Ok(()), "{good}");
        }
        for bad in ["", "1a", "a-b", "a b", "é", "a.b"] {
            assert!(check_metric_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn label_names() {
        for good in ["a", "_x", "path", "status2"] {
            assert_eq!(check_label_name(good), Ok(()), "{good}");
        }
        for bad in ["", "__name__", "__x", "1a", "a:b", "a-b"] {
            assert!(check_label_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn definitions() {
        assert_eq!(check_definition("x", "help", &["a", "b"], &[]), Ok(()));
        assert_eq!(
            check_definition("x", " ", &[], &[]),
            Err(MetricError::EmptyHelp("x".into()))
        );
        assert_eq!(
            check_definition("x", "h", &["a", "a"], &[]),
            Err(MetricError::DuplicateLabelName("a".into()))
        );
        assert_eq!(
            check_definition("x", "h", &["le"], &["le"]),
            Err(MetricError::ReservedLabelName("le".into()))
        );
    }
}
