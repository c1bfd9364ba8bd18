//! What a handler answers, before it becomes a tiny_http response.

/// A response body.
pub enum Body {
    /// Fixed text.
    Static(&'static str),
    /// Text built for this request (error messages).
    Text(String),
    /// The worker's encoder buffer, filled by the /metrics handler; sent
    /// without copying.
    Encoded,
}

/// Status, content type and body of an answer, with at most one extra
/// header built per request (`Allow` on 405, `WWW-Authenticate` on 401)
/// and any number of fixed ones (the page's security headers).
pub struct Reply<'a> {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Body,
    pub header: Option<(&'static str, &'a str)>,
    pub static_headers: &'static [(&'static str, &'static str)],
}

/// Content type of every plain-text answer.
pub const TEXT: &str = "text/plain; charset=utf-8";

impl Reply<'_> {
    /// A plain-text answer.
    pub fn text(status: u16, body: &'static str) -> Self {
        Reply {
            status,
            content_type: TEXT,
            body: Body::Static(body),
            header: None,
            static_headers: &[],
        }
    }

    /// A plain-text answer built at run time.
    pub fn owned(status: u16, body: String) -> Self {
        Reply {
            status,
            content_type: TEXT,
            body: Body::Text(body),
            header: None,
            static_headers: &[],
        }
    }
}
