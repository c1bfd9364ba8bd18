//! Label values of a series, and the borrowed view visitors receive.
//!
//! A family builds a [`LabelSet`] once, when a series is created: the
//! values, and one allocation holding the label forms of
//! `crate::wire::label_forms`, the quoted text `a="x",b="y"` and the
//! protobuf `LabelPair` fields. Encoders copy the form they write, so no
//! scrape escapes or sizes a family's labels.

use crate::wire::label_forms::{put_protobuf_pair, put_quoted};

/// The values of one series, and its labels in both stored forms.
pub(crate) struct LabelSet {
    /// Kept apart from the forms for lookups. Reading them back from the
    /// protobuf form instead (each field's length says where the next
    /// one is) saved 16 bytes a series but made a 3-label lookup 212 ->
    /// 311 instructions and 12 -> 19 ns (callgrind and criterion,
    /// `counter inc, label lookup`); a table of where each value lies
    /// still left it at 231 instructions and 16-20 ns.
    values: Box<[Box<str>]>,
    /// The quoted form, then the protobuf form.
    forms: Box<[u8]>,
    /// Where the protobuf form starts.
    quoted_len: usize,
}

impl LabelSet {
    pub(crate) fn new(names: &[Box<str>], values: &[&str]) -> Self {
        let pairs = || names.iter().map(|n| &**n).zip(values.iter().copied());
        let mut forms = Vec::new();
        put_quoted(&mut forms, pairs());
        let quoted_len = forms.len();
        for (name, value) in pairs() {
            put_protobuf_pair(&mut forms, name, value);
        }
        LabelSet {
            values: values.iter().map(|&v| v.into()).collect(),
            forms: forms.into_boxed_slice(),
            quoted_len,
        }
    }

    fn quoted(&self) -> &[u8] {
        &self.forms[..self.quoted_len]
    }

    fn protobuf(&self) -> &[u8] {
        &self.forms[self.quoted_len..]
    }

    /// True when the series has exactly these values.
    #[inline]
    pub(crate) fn matches(&self, values: &[&str]) -> bool {
        self.values.len() == values.len() && self.values.iter().zip(values).all(|(a, b)| **a == **b)
    }
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

impl std::fmt::Debug for Labels<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
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
    /// it was built ahead (every series of a family; empty for no labels);
    /// `None` for pairs, which an encoder escapes itself.
    #[inline(always)]
    pub(crate) fn quoted(&self) -> Option<&'a [u8]> {
        match self.0 {
            Repr::Series { set, .. } => Some(set.quoted()),
            Repr::Pairs([]) => Some(b""),
            Repr::Pairs(_) => None,
        }
    }

    /// The labels as protobuf `LabelPair` fields of a `Metric`, when they
    /// were built ahead (as [`Labels::quoted`]).
    #[inline(always)]
    pub(crate) fn protobuf(&self) -> Option<&'a [u8]> {
        match self.0 {
            Repr::Series { set, .. } => Some(set.protobuf()),
            Repr::Pairs([]) => Some(b""),
            Repr::Pairs(_) => None,
        }
    }
}

/// The `(name, value)` pairs of a [`Labels`], in order.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_and_the_values_come_from_one_set() {
        let names: Vec<Box<str>> = vec!["a".into(), "b".into()];
        let set = LabelSet::new(&names, &["1", "q\"\\\n"]);
        let labels = Labels::series(&names, &set);
        assert_eq!(labels.quoted(), Some(&br#"a="1",b="q\"\\\n""#[..]));
        assert_eq!(
            labels.iter().collect::<Vec<_>>(),
            [("a", "1"), ("b", "q\"\\\n")]
        );
        let mut protobuf = Vec::new();
        put_protobuf_pair(&mut protobuf, "a", "1");
        put_protobuf_pair(&mut protobuf, "b", "q\"\\\n");
        assert_eq!(labels.protobuf(), Some(&protobuf[..]));
        assert!(set.matches(&["1", "q\"\\\n"]));
        assert!(!set.matches(&["1"]));
        assert!(!set.matches(&["1", "q"]));
        assert!(!set.matches(&["1", "q\"\\\n", "x"]));
        assert_eq!(format!("{labels:?}"), r#"{"a": "1", "b": "q\"\\\n"}"#);
    }

    #[test]
    fn pairs_are_escaped_by_the_encoder_and_no_labels_by_no_one() {
        let pairs = [("x", "y")];
        assert_eq!(Labels::pairs(&pairs).quoted(), None);
        assert_eq!(Labels::pairs(&pairs).protobuf(), None);
        assert!(Labels::NONE.is_empty());
        assert_eq!(Labels::NONE.quoted(), Some(&b""[..]));
        assert_eq!(Labels::NONE.protobuf(), Some(&b""[..]));
        let empty = LabelSet::new(&[], &[]);
        assert!(Labels::series(&[], &empty).is_empty());
        assert!(empty.matches(&[]));
        assert_eq!(Labels::series(&[], &empty).iter().count(), 0);
    }
}
