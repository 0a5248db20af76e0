//! `Router`: which component answers a path. The longest matching prefix wins; a prefix
//! matches whole path segments (`/api` matches `/api` and `/api/x`, not `/apix`).

use wasmbox_engine::http::HttpHandler;

pub struct Route {
    /// Starts with `/`; `/` matches everything.
    pub prefix: String,
    pub handler: HttpHandler,
}

pub struct Router {
    /// Longest prefix first.
    routes: Vec<Route>,
}

impl Router {
    pub fn new(mut routes: Vec<Route>) -> Self {
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.trim_end_matches('/').len()));
        Router { routes }
    }

    pub fn find(&self, path: &str) -> Option<&Route> {
        self.routes.iter().find(|r| prefix_matches(&r.prefix, path))
    }
}

pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_matches;

    #[test]
    fn whole_segments_only() {
        assert!(prefix_matches("/", "/"));
        assert!(prefix_matches("/", "/anything/at/all"));
        assert!(prefix_matches("/api", "/api"));
        assert!(prefix_matches("/api", "/api/users"));
        assert!(prefix_matches("/api/", "/api/users"));
        assert!(!prefix_matches("/api", "/apix"));
        assert!(!prefix_matches("/api/v2", "/api"));
    }
}
