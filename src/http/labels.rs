//! The label values the middleware records, drawn from fixed sets.
//!
//! No request can invent a label value: the type label is [`SERVER_TYPE`],
//! the path label is a route template or
//! [`UNMATCHED`], the method is one of the nine standard methods or
//! [`OTHER_METHOD`], and the status is one of the 500 codes 100–599. That is
//! what keeps the number of series bounded whatever clients send.

use once_cell::sync::Lazy;
use tiny_http::Method;

/// The `type` label of requests a server handles.
pub const SERVER_TYPE: &str = "http";

/// The `path` label of every request that matched no route.
pub const UNMATCHED: &str = "<unmatched>";

/// The `method` label of every request with a non-standard method.
pub const OTHER_METHOD: &str = "OTHER";

/// The `method` label for a request method.
pub fn method_label(method: &Method) -> &'static str {
    match method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Connect => "CONNECT",
        Method::Options => "OPTIONS",
        Method::Trace => "TRACE",
        Method::Patch => "PATCH",
        Method::NonStandard(_) => OTHER_METHOD,
    }
}

static STATUS_TEXT: Lazy<Box<[Box<str>]>> =
    Lazy::new(|| (100..600).map(|c: u16| c.to_string().into()).collect());

/// The `status` label for an HTTP status code, without allocating.
///
/// ```
/// assert_eq!(tinymon::http::status_label(404), "404");
/// ```
pub fn status_label(code: u16) -> &'static str {
    match code {
        100..=599 => &STATUS_TEXT[usize::from(code - 100)],
        _ => "invalid",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_fold_to_fixed_set() {
        assert_eq!(method_label(&Method::Get), "GET");
        assert_eq!(method_label(&"BREW".parse().unwrap()), OTHER_METHOD);
        assert_eq!(method_label(&"get".parse().unwrap()), OTHER_METHOD);
    }

    #[test]
    fn statuses() {
        assert_eq!(status_label(100), "100");
        assert_eq!(status_label(200), "200");
        assert_eq!(status_label(599), "599");
        assert_eq!(status_label(99), "invalid");
        assert_eq!(status_label(600), "invalid");
    }
}
