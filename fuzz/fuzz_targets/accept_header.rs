//! Arbitrary `Accept` headers: negotiation never panics, and it picks
//! OpenMetrics only when the header names it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tinymon::encode::{negotiate, Format};

fuzz_target!(|data: &[u8]| {
    let accept = String::from_utf8_lossy(data);
    let format = negotiate(Some(&accept));
    if format == Format::OpenMetrics {
        assert!(accept
            .to_ascii_lowercase()
            .contains("application/openmetrics-text"));
    }
    assert!(!format.content_type().is_empty());
});
