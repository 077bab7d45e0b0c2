//! The web UI (`web/` in the repository): the page shell and the esbuild
//! bundle committed under `web/dist/`, compiled into the binary so `baton
//! serve` needs no Node.js at run time. Every UI response carries a strict
//! Content-Security-Policy: scripts and styles only from this origin, no
//! inline script, images only from this origin or `data:`, requests only
//! to this origin, no frames.

const INDEX_HTML: &str = include_str!("../../../web/index.html");
const APP_JS: &str = include_str!("../../../web/dist/app.js");
const APP_CSS: &str = include_str!("../../../web/dist/app.css");

/// The Content-Security-Policy of every UI response.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; \
form-action 'self'; frame-ancestors 'none'";

/// Paths the UI routes itself (history API): each answers the page shell.
pub const PAGE_ROUTES: [&str; 5] = ["/", "/s/{id}", "/search", "/stats", "/share/{token}"];

/// The content type and bytes of a UI file, by request path; any other
/// path (the router sends only [`PAGE_ROUTES`]) answers the page shell.
pub fn asset(path: &str) -> (&'static str, &'static str) {
    match path {
        "/assets/app.js" => ("text/javascript; charset=utf-8", APP_JS),
        "/assets/app.css" => ("text/css; charset=utf-8", APP_CSS),
        _ => ("text/html; charset=utf-8", INDEX_HTML),
    }
}
