//! Label values of a series, and the borrowed view visitors receive.
//!
//! A family builds a [`LabelSet`] once, when a series is created: the values
//! and their quoted form `a="x",b="y"`. Quoting (backslash, double quote and
//! newline escaped) is the same in the Prometheus text format, OpenMetrics
//! and PromQL selectors, so the text encoders copy it as it is and never
//! escape a family's labels at scrape time. Encoders that need the raw
//! values (protobuf) read them from [`Labels::iter`].

/// The values of one series, with their quoted form built once.
pub(crate) struct LabelSet {
    pub(crate) values: Box<[Box<str>]>,
    pub(crate) quoted: Box<str>,
}

impl LabelSet {
    pub(crate) fn new(names: &[Box<str>], values: &[&str]) -> Self {
        let mut quoted = Vec::new();
        for (i, (name, value)) in names.iter().zip(values).enumerate() {
            if i > 0 {
                quoted.push(b',');
            }
            quoted.extend_from_slice(name.as_bytes());
            quoted.extend_from_slice(b"=\"");
            escape_into(&mut quoted, value, true);
            quoted.push(b'"');
        }
        LabelSet {
            values: values.iter().map(|&v| v.into()).collect(),
            quoted: String::from_utf8(quoted)
                .expect("escaping ASCII bytes keeps UTF-8")
                .into_boxed_str(),
        }
    }

    pub(crate) fn matches(&self, values: &[&str]) -> bool {
        self.values.len() == values.len() && self.values.iter().zip(values).all(|(a, b)| **a == **b)
    }
}

/// Appends `text` with `\` and newline escaped, and `"` too when `quote`.
/// Unescaped runs are copied in one go, so text without special characters
/// costs a single `extend_from_slice`.
pub(crate) fn escape_into(buf: &mut Vec<u8>, text: &str, quote: bool) {
    let bytes = text.as_bytes();
    let mut run_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'"' if quote => b"\\\"",
            _ => continue,
        };
        buf.extend_from_slice(&bytes[run_start..i]);
        buf.extend_from_slice(escaped);
        run_start = i + 1;
    }
    buf.extend_from_slice(&bytes[run_start..]);
}

/// The labels of one sample, as a visitor sees them.
#[derive(Clone, Copy)]
pub struct Labels<'a>(Repr<'a>);

#[derive(Clone, Copy)]
enum Repr<'a> {
    Series {
        names: &'a [Box<str>],
        set: &'a LabelSet,
    },
    Pairs(&'a [(&'a str, &'a str)]),
}

impl<'a> Labels<'a> {
    /// No labels.
    pub const NONE: Labels<'static> = Labels(Repr::Pairs(&[]));

    /// Labels given as `(name, value)` pairs; names must be valid label names.
    pub fn pairs(pairs: &'a [(&'a str, &'a str)]) -> Self {
        Labels(Repr::Pairs(pairs))
    }

    pub(crate) fn series(names: &'a [Box<str>], set: &'a LabelSet) -> Self {
        Labels(Repr::Series { names, set })
    }

    /// True when there are no labels.
    #[inline]
    pub fn is_empty(&self) -> bool {
        match self.0 {
            Repr::Series { names, .. } => names.is_empty(),
            Repr::Pairs(p) => p.is_empty(),
        }
    }

    /// `(name, value)` pairs, values unescaped.
    #[inline]
    pub fn iter(&self) -> LabelIter<'a> {
        match self.0 {
            Repr::Series { names, set } => {
                LabelIter(IterRepr::Series(names.iter(), set.values.iter()))
            }
            Repr::Pairs(p) => LabelIter(IterRepr::Pairs(p.iter())),
        }
    }

    /// `a="x",b="y"` with values escaped as the text formats want them, when
    /// it was built ahead (every series of a family; `""` for no labels);
    /// `None` for pairs, which an encoder escapes itself.
    #[inline(always)]
    pub fn quoted(&self) -> Option<&'a str> {
        match self.0 {
            Repr::Series { set, .. } => Some(&set.quoted),
            Repr::Pairs([]) => Some(""),
            Repr::Pairs(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_form_escapes_values_once() {
        let names: Vec<Box<str>> = vec!["a".into(), "b".into()];
        let set = LabelSet::new(&names, &["1", "q\"\\\n"]);
        assert_eq!(&*set.quoted, r#"a="1",b="q\"\\\n""#);
        let labels = Labels::series(&names, &set);
        assert_eq!(
            labels.iter().collect::<Vec<_>>(),
            [("a", "1"), ("b", "q\"\\\n")]
        );
        assert!(set.matches(&["1", "q\"\\\n"]));
        assert!(!set.matches(&["1"]));
        let pairs = [("x", "y")];
        assert_eq!(Labels::pairs(&pairs).quoted(), None);
        assert!(Labels::NONE.is_empty());
        assert_eq!(Labels::NONE.quoted(), Some(""));
    }
}

/// The `(name, value)` pairs of a [`Labels`], in order: a concrete type
/// rather than a chain of adapters, so an encoder that walks the labels
/// twice (to size a message, then to write it) pays for two short loops.
#[derive(Clone, Debug)]
pub struct LabelIter<'a>(IterRepr<'a>);

#[derive(Clone, Debug)]
enum IterRepr<'a> {
    Series(
        std::slice::Iter<'a, Box<str>>,
        std::slice::Iter<'a, Box<str>>,
    ),
    Pairs(std::slice::Iter<'a, (&'a str, &'a str)>),
}

impl<'a> Iterator for LabelIter<'a> {
    type Item = (&'a str, &'a str);

    #[inline]
    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        match &mut self.0 {
            IterRepr::Series(names, values) => Some((names.next()?, values.next()?)),
            IterRepr::Pairs(pairs) => pairs.next().map(|&(n, v)| (n, v)),
        }
    }
}
