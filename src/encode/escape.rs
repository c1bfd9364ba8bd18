//! Escaping for the two free-text places of the text formats.
//!
//! `# HELP` text escapes backslash and newline; label values additionally
//! escape the double quote. Everything else, including non-ASCII UTF-8, is
//! written as it is. The escaping itself lives with the label sets
//! (`metrics::labels`), which quote a series' values once when it is
//! created; these are the entry points for the text that is escaped at
//! scrape time (help, collectors' labels).

use crate::metrics::escape_into;

/// Appends `help` with `\` and newline escaped.
pub(crate) fn write_help(buf: &mut Vec<u8>, help: &str) {
    escape_into(buf, help, false);
}

/// Appends `value` with `\`, `"` and newline escaped.
pub(crate) fn write_label_value(buf: &mut Vec<u8>, value: &str) {
    escape_into(buf, value, true);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(s: &str) -> String {
        let mut buf = Vec::new();
        write_label_value(&mut buf, s);
        String::from_utf8(buf).unwrap()
    }

    fn help(s: &str) -> String {
        let mut buf = Vec::new();
        write_help(&mut buf, s);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn label_values() {
        assert_eq!(label(""), "");
        assert_eq!(label("plain"), "plain");
        assert_eq!(label(r#"a"b"#), r#"a\"b"#);
        assert_eq!(label(r"a\b"), r"a\\b");
        assert_eq!(label("a\nb"), r"a\nb");
        assert_eq!(label("\\\"\n"), r#"\\\"\n"#);
        assert_eq!(label("tab\tstays"), "tab\tstays");
        assert_eq!(label("héllo ✓ 日本"), "héllo ✓ 日本");
    }

    #[test]
    fn help_keeps_quotes() {
        assert_eq!(help(r#"the "x" \ thing"#), r#"the "x" \\ thing"#);
        assert_eq!(help("two\nlines"), r"two\nlines");
    }

    #[test]
    fn escaping_round_trips() {
        // Undo the escaping the way a Prometheus parser does and compare.
        for s in ["", "\\", "\"", "\n", "a\\nb", "\\\\\"\"\n\n", "ü\"\\ß\n"] {
            let escaped = label(s);
            let mut out = String::new();
            let mut chars = escaped.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    match chars.next() {
                        Some('n') => out.push('\n'),
                        Some(other) => out.push(other),
                        None => panic!("dangling backslash in {escaped:?}"),
                    }
                } else {
                    assert!(c != '"' && c != '\n', "unescaped {c:?} in {escaped:?}");
                    out.push(c);
                }
            }
            assert_eq!(out, s);
        }
    }
}
