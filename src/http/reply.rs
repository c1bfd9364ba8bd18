//! What a handler answers; the server writes it out (see `raw_response`).

use crate::encode::Format;

/// A response body.
pub(crate) enum ReplyBody {
    /// Fixed text.
    Static(&'static str),
    /// Text built for this request.
    Text(String),
    /// The worker's encoder buffer of this format, filled by the /metrics
    /// handler; sent without copying.
    Encoded(Format),
}

/// Status, content type and body of an answer, with at most one header
/// built per request (`Allow` on 405, say) and any number of fixed ones.
///
/// ```
/// use tinymon::http::Reply;
/// let reply = Reply::text(404, "no such order\n");
/// assert_eq!(reply.status(), 404);
/// let page = Reply::text(200, "<h1>hi</h1>")
///     .with_content_type("text/html; charset=utf-8")
///     .with_static_headers(&[("Cache-Control", "no-store")]);
/// assert_eq!(page.status(), 200);
/// ```
pub struct Reply<'a> {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) body: ReplyBody,
    pub(crate) header: Option<(&'static str, &'a str)>,
    pub(crate) static_headers: &'static [(&'static str, &'static str)],
}

impl std::fmt::Debug for Reply<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply")
            .field("status", &self.status)
            .field("content_type", &self.content_type)
            .field("header", &self.header)
            .field("static_headers", &self.static_headers)
            .finish_non_exhaustive()
    }
}

/// Content type of every plain-text answer.
pub const TEXT: &str = "text/plain; charset=utf-8";

impl<'a> Reply<'a> {
    /// A plain-text answer.
    pub fn text(status: u16, body: &'static str) -> Self {
        Reply {
            status,
            content_type: TEXT,
            body: ReplyBody::Static(body),
            header: None,
            static_headers: &[],
        }
    }

    /// A plain-text answer built at run time.
    pub fn owned(status: u16, body: String) -> Self {
        Reply {
            body: ReplyBody::Text(body),
            ..Reply::text(status, "")
        }
    }

    pub(crate) fn encoded(format: Format) -> Self {
        Reply {
            content_type: format.content_type(),
            body: ReplyBody::Encoded(format),
            ..Reply::text(200, "")
        }
    }

    /// Replaces the Content-Type.
    pub fn with_content_type(mut self, content_type: &'static str) -> Self {
        self.content_type = content_type;
        self
    }

    /// Adds one header whose value is built for this request (replacing
    /// any set before). Values must not contain CR or LF.
    pub fn with_header(mut self, name: &'static str, value: &'a str) -> Self {
        self.header = Some((name, value));
        self
    }

    /// Adds fixed headers, such as a page's security headers.
    pub fn with_static_headers(mut self, headers: &'static [(&'static str, &'static str)]) -> Self {
        self.static_headers = headers;
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }
}
