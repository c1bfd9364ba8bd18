//! Routes requests by method and route template.
//!
//! A template is a path whose segments are literal or `{name}` (any one
//! non-empty segment). The matched template, never the raw URL, is what the
//! middleware records as the `path` label. Matching walks the segments of the
//! template and the path side by side, so it allocates nothing.
//!
//! `HEAD` is served by the `GET` handler of a template (tiny_http omits the
//! body). A path that matches a template without a handler for the method is
//! answered 405 with an `Allow` header listing the methods it has.

use std::fmt;

use tiny_http::Method;

/// A route's name in metrics and its matching rule, e.g. `/users/{id}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteTemplate(&'static str);

impl RouteTemplate {
    /// Checks the template: it starts with `/`, and `{...}` covers whole segments.
    pub fn new(template: &'static str) -> Result<Self, String> {
        if !template.starts_with('/') {
            return Err(format!("route {template:?} must start with '/'"));
        }
        for segment in template.split('/').skip(1) {
            let param = segment.starts_with('{') || segment.ends_with('}');
            if param && (segment.len() < 3 || !segment.starts_with('{') || !segment.ends_with('}'))
            {
                return Err(format!(
                    "route {template:?}: a parameter must be a whole segment like {{id}}"
                ));
            }
        }
        Ok(RouteTemplate(template))
    }

    /// The template text, used as the `path` label.
    pub fn as_str(&self) -> &'static str {
        self.0
    }

    /// True when `path` (without query) fits this template.
    pub fn matches(&self, path: &str) -> bool {
        let mut want = self.0.split('/');
        let mut have = path.split('/');
        loop {
            match (want.next(), have.next()) {
                (None, None) => return true,
                (Some(w), Some(h)) => {
                    let param = w.starts_with('{');
                    if (param && h.is_empty()) || (!param && w != h) {
                        return false;
                    }
                }
                _ => return false,
            }
        }
    }
}

/// What the router found for a request.
pub enum RouteMatch<'r, H> {
    /// A handler for this template and method.
    Found(RouteTemplate, &'r H),
    /// The path fits a template that has no handler for the method.
    MethodNotAllowed(RouteTemplate, &'r str),
    /// No template fits the path.
    NotFound,
}

struct Entry<H> {
    template: RouteTemplate,
    methods: Vec<(Method, H)>,
    /// "GET, HEAD" etc., built once for 405 answers.
    allow: String,
}

/// Templates with their handlers, tried in the order they were added.
pub struct Router<H> {
    entries: Vec<Entry<H>>,
}

impl<H> fmt::Debug for RouteMatch<'_, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteMatch::Found(t, _) => f.debug_tuple("Found").field(t).finish_non_exhaustive(),
            RouteMatch::MethodNotAllowed(t, allow) => f
                .debug_tuple("MethodNotAllowed")
                .field(t)
                .field(allow)
                .finish(),
            RouteMatch::NotFound => f.write_str("NotFound"),
        }
    }
}

/// The templates and their methods (handlers are functions or closures,
/// which have no `Debug`).
impl<H> fmt::Debug for Router<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|e| (e.template, &e.allow)))
            .finish()
    }
}

impl<H> Default for Router<H> {
    fn default() -> Self {
        Router {
            entries: Vec::new(),
        }
    }
}

impl<H> Router<H> {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `handler` for `method` on `template`.
    ///
    /// ```
    /// use tinymon::http::{RouteMatch, Router};
    /// use tiny_http::Method;
    ///
    /// let router = Router::new()
    ///     .route(Method::Get, "/users/{id}", "user").unwrap();
    /// assert!(matches!(router.find(&Method::Get, "/users/7"), RouteMatch::Found(t, &"user") if t.as_str() == "/users/{id}"));
    /// assert!(matches!(router.find(&Method::Post, "/users/7"), RouteMatch::MethodNotAllowed(_, "GET, HEAD")));
    /// assert!(matches!(router.find(&Method::Get, "/users/"), RouteMatch::NotFound));
    /// ```
    pub fn route(
        mut self,
        method: Method,
        template: &'static str,
        handler: H,
    ) -> Result<Self, String> {
        let template = RouteTemplate::new(template)?;
        let at = match self.entries.iter().position(|e| e.template == template) {
            Some(at) => at,
            None => {
                self.entries.push(Entry {
                    template,
                    methods: Vec::new(),
                    allow: String::new(),
                });
                self.entries.len() - 1
            }
        };
        let entry = &mut self.entries[at];
        if entry.methods.iter().any(|(m, _)| *m == method) {
            return Err(format!(
                "route {} {} added twice",
                method,
                template.as_str()
            ));
        }
        entry.methods.push((method, handler));
        let mut allow: Vec<String> = entry.methods.iter().map(|(m, _)| m.to_string()).collect();
        if allow.iter().any(|m| m == "GET") && !allow.iter().any(|m| m == "HEAD") {
            allow.push("HEAD".into());
        }
        entry.allow = allow.join(", ");
        Ok(self)
    }

    /// Finds the route for a request. `path` must not include the query.
    pub fn find(&self, method: &Method, path: &str) -> RouteMatch<'_, H> {
        let Some(entry) = self.entries.iter().find(|e| e.template.matches(path)) else {
            return RouteMatch::NotFound;
        };
        let handler = entry.methods.iter().find(|(m, _)| m == method).or_else(|| {
            (*method == Method::Head)
                .then(|| entry.methods.iter().find(|(m, _)| *m == Method::Get))
                .flatten()
        });
        match handler {
            Some((_, h)) => RouteMatch::Found(entry.template, h),
            None => RouteMatch::MethodNotAllowed(entry.template, &entry.allow),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_validation() {
        assert!(RouteTemplate::new("/").is_ok());
        assert!(RouteTemplate::new("/a/{id}/b").is_ok());
        assert!(RouteTemplate::new("a").is_err());
        assert!(RouteTemplate::new("/a{id}").is_err());
        assert!(RouteTemplate::new("/{}").is_err());
    }

    #[test]
    fn matching() {
        let t = RouteTemplate::new("/a/{id}/b").unwrap();
        assert!(t.matches("/a/1/b"));
        assert!(t.matches("/a/%2F/b"));
        assert!(!t.matches("/a//b"));
        assert!(!t.matches("/a/1/b/"));
        assert!(!t.matches("/a/1"));
        assert!(!t.matches("a/1/b"));
        let root = RouteTemplate::new("/").unwrap();
        assert!(root.matches("/"));
        assert!(!root.matches("/x"));
        assert!(!root.matches(""));
    }

    #[test]
    fn methods_head_and_allow() {
        let r = Router::new()
            .route(Method::Get, "/x", 1)
            .unwrap()
            .route(Method::Post, "/x", 2)
            .unwrap()
            .route(Method::Put, "/y", 3)
            .unwrap();
        assert!(matches!(
            r.find(&Method::Get, "/x"),
            RouteMatch::Found(_, 1)
        ));
        assert!(matches!(
            r.find(&Method::Head, "/x"),
            RouteMatch::Found(_, 1)
        ));
        assert!(matches!(
            r.find(&Method::Post, "/x"),
            RouteMatch::Found(_, 2)
        ));
        assert!(matches!(
            r.find(&Method::Delete, "/x"),
            RouteMatch::MethodNotAllowed(_, "GET, POST, HEAD")
        ));
        assert!(matches!(
            r.find(&Method::Head, "/y"),
            RouteMatch::MethodNotAllowed(_, "PUT")
        ));
        assert!(matches!(r.find(&Method::Get, "/z"), RouteMatch::NotFound));
        assert!(Router::new()
            .route(Method::Get, "/x", 1)
            .unwrap()
            .route(Method::Get, "/x", 2)
            .is_err());
    }
}
