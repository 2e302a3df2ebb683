//! The web UI's files, compiled into the extension from
//! `python/ferrotrace/ui/`: nothing is read from disk at request time, so
//! no request path can ever reach the filesystem; a name not in [`FILES`]
//! is a 404.

use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY};
use hyper::StatusCode;

use super::status::{reply, Reply};

/// One entry of [`FILES`], its content compiled in.
macro_rules! ui_file {
    ($name:literal, $media_type:expr) => {
        (
            $name,
            $media_type,
            include_str!(concat!("../../python/ferrotrace/ui/", $name)),
        )
    };
}

/// `(name, media type, content)` of every UI file, served at `/ui/{name}`.
const FILES: &[(&str, &str, &str)] = &[
    ui_file!("index.html", HTML),
    ui_file!("style.css", CSS),
    ui_file!("app.js", JS),
    ui_file!("api.js", JS),
    ui_file!("dom.js", JS),
    ui_file!("search.js", JS),
    ui_file!("trace.js", JS),
    ui_file!("graph.js", JS),
    ui_file!("operations.js", JS),
    ui_file!("errors.js", JS),
];

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// The UI's routes, each answered with `index.html` (whose script picks
/// the page from the URL): `/`, `/trace/{id}`, `/graph`, `/operations`,
/// `/errors`.
pub fn is_page(path: &str) -> bool {
    matches!(path, "/" | "/graph" | "/operations" | "/errors")
        || path
            .strip_prefix("/trace/")
            .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

/// The page of the UI's routes (`/`, `/trace/{id}`): its script reads the
/// URL and the API.
pub fn page() -> Reply {
    file("index.html").unwrap_or_else(|| reply(StatusCode::NOT_FOUND, "text/plain", "no UI"))
}

/// A UI file by name, if there is one.
pub fn file(name: &str) -> Option<Reply> {
    let (_, media_type, content) = FILES.iter().find(|(n, _, _)| *n == name)?;
    let mut r = reply(StatusCode::OK, media_type, content.as_bytes());
    let h = r.headers_mut();
    // Only this server's own files may run or load: span text that ever
    // slipped into markup still could not run a script.
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Some(r)
}
