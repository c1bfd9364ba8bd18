//! The live page at `GET /`: the service's RED metrics and process health,
//! drawn in the browser from `/metrics`, with no Docker and no Grafana.
//!
//! `index.html` is written by hand: HTML, CSS and plain JavaScript in one
//! file, embedded in the binary, with no framework and nothing fetched from
//! elsewhere. It polls `/metrics` every second (the text format, parsed in
//! the browser), keeps five minutes in memory, and draws SVG charts. The
//! script and the stylesheet are inline, so the page is one route and one
//! request; the Content-Security-Policy allows exactly those two blocks by
//! their SHA-256 hashes and nothing else but `/metrics` on the same origin.
//! A unit test recomputes the hashes, so an edit to the page that forgets
//! them fails `cargo test` instead of breaking the page.

use tinymon::http::Reply;

/// The page.
pub(crate) const PAGE: &str = include_str!("index.html");

/// Content-Security-Policy of the page: its own inline script and style
/// (by hash), fetches to its own origin, an empty `data:` icon (so the
/// browser does not ask for /favicon.ico), nothing else.
pub(crate) const CSP: &str = "default-src 'none'; \
script-src 'sha256-jqKVhjDA7u9FMRS3SWUNw0iGiVQTMVbtt7i9Aj0ZkFY='; \
style-src 'sha256-8GYWfJHWci83c59NaYXO9RN3xihr6lra8xmKvAEpQ6k='; \
connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Headers sent with the page.
pub(crate) const HEADERS: &[(&str, &str)] = &[
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Cache-Control", "no-store"),
    ("Referrer-Policy", "no-referrer"),
];

/// The answer to `GET /`.
pub(crate) fn reply<'a>() -> Reply<'a> {
    Reply::text(200, PAGE)
        .with_content_type("text/html; charset=utf-8")
        .with_static_headers(HEADERS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use sha2::Digest as _;

    fn block<'a>(tag: &str) -> &'a str {
        let open = format!("<{tag}>");
        let start = PAGE.find(&open).unwrap() + open.len();
        let end = PAGE[start..].find(&format!("</{tag}>")).unwrap() + start;
        assert_eq!(PAGE.matches(&open).count(), 1, "one <{tag}> block");
        &PAGE[start..end]
    }

    #[test]
    fn the_csp_hashes_match_the_inline_script_and_style() {
        for tag in ["script", "style"] {
            let hash = base64::engine::general_purpose::STANDARD
                .encode(sha2::Sha256::digest(block(tag).as_bytes()));
            let want = format!("{tag}-src 'sha256-{hash}'");
            assert!(CSP.contains(&want), "update CSP in page/mod.rs: {want}");
        }
    }

    #[test]
    fn the_page_stays_small_and_self_contained() {
        assert!(PAGE.len() <= 40 * 1024, "{} bytes", PAGE.len());
        for outside in [
            "http://",
            "https://",
            "//cdn",
            "<script src",
            "rel=\"stylesheet",
            "@import",
            "url(",
        ] {
            assert!(
                !PAGE.contains(outside),
                "the page refers outside itself: {outside}"
            );
        }
        // No inline style attributes or event handlers: the CSP forbids them.
        for attr in [" style=\"", " onclick=", " onload=", " onsubmit="] {
            assert!(!PAGE.contains(attr), "{attr}");
        }
    }
}
