//! Arbitrary `Accept` headers: negotiation never panics, and it picks
//! OpenMetrics or protobuf only when the header names it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tinymon::encode::{negotiate, Format};

fuzz_target!(|data: &[u8]| {
    let accept = String::from_utf8_lossy(data);
    let format = negotiate(Some(&accept));
    let lower = accept.to_ascii_lowercase();
    match format {
        Format::OpenMetrics => assert!(lower.contains("application/openmetrics-text")),
        Format::Protobuf => assert!(lower.contains("application/vnd.google.protobuf")),
        Format::Text => {}
    }
    assert!(!format.content_type().is_empty());
});
