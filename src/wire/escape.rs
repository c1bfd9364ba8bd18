//! Escaping for the two free-text places of the text formats.
//!
//! `# HELP` text escapes backslash and newline; label values additionally
//! escape the double quote. Everything else, including non-ASCII UTF-8, is
//! written as it is. The Prometheus text format, OpenMetrics and PromQL
//! selectors escape label values the same way, so one routine serves a
//! series' quoted form (built once, `label_forms`) and the text escaped at
//! scrape time (help, collectors' labels).

/// Appends `text` with `\` and newline escaped, and `"` too when `quote`.
/// Unescaped runs are copied in one go, so text without special characters
/// costs a single `extend_from_slice`.
fn escape_into(buf: &mut Vec<u8>, text: &str, quote: bool) {
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
