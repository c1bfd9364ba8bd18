//! Arbitrary request targets through the router and the /work query parser:
//! no panic, and every accepted query is within its documented bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tiny_http::Method;
use tinymon::http::{RouteMatch, Router};

// The demo binary's /work query parser.
use tinymon_demo_kit::work_params::{parse_query, MAX_DELAY_MS};

fuzz_target!(|data: &[u8]| {
    let target = String::from_utf8_lossy(data);
    let router = Router::new()
        .route(Method::Get, "/metrics", 0)
        .and_then(|r| r.route(Method::Get, "/hello", 1))
        .and_then(|r| r.route(Method::Get, "/users/{id}/items/{item}", 2))
        .unwrap();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    for method in [Method::Get, Method::Head, Method::Post] {
        match router.find(&method, path) {
            RouteMatch::Found(t, _) | RouteMatch::MethodNotAllowed(t, _) => {
                assert!(t.matches(path));
            }
            RouteMatch::NotFound => {}
        }
    }
    if let Ok(p) = parse_query(query) {
        assert!(p.delay_ms <= MAX_DELAY_MS);
        assert!((0.0..=1.0).contains(&p.fail));
    } else {
        let err = parse_query(query).unwrap_err();
        // The echoed input is clipped to 32 characters; escaped, each is at
        // most 10 bytes (\u{10ffff}), so the message stays bounded.
        assert!(
            err.len() < 512,
            "error message grows with input: {}",
            err.len()
        );
    }
});
