//! The web viewer, "Call Viewer": the page at `/` and its files under
//! `/assets/`, plain HTML, CSS and JavaScript modules compiled into the
//! binary (`include_bytes!`), so `cargo build` yields a server that shows
//! the calls with nothing to install, fetch or build, and that works
//! offline.
//!
//! Everything the page shows comes from the API (`/api/conversations` with
//! its filters, `/api/conversations/{id}/messages`, `/healthz`,
//! `POST /api/sync/today`, and `/api/stats` for the dashboard at
//! `#view=dashboard`, its charts drawn in SVG by `js/charts.js`);
//! `/api/events` keeps it current without reload.
//!
//! The page is a template with one placeholder, the base path its files are
//! loaded from: the path the page was requested at, so the viewer works
//! where the router is [nested](axum::Router::nest) (at `/calls`, the page
//! loads `/calls/assets/...`, and its scripts, which find the API relative
//! to their own URL, call `/calls/api/...`).
//!
//! Responses carry a strict `Content-Security-Policy` (scripts, styles and
//! connections only from this server; recordings from anywhere over HTTP(S)),
//! `Referrer-Policy: no-referrer` (the page may be opened with
//! `?token=`, which it drops from the address at once) and
//! `Cache-Control: no-cache` with an `ETag`, so a new build is picked up
//! at once and unchanged files are answered `304`.
//!
//! When the server requires an API token the viewer needs it too: open
//! `/?token=TOKEN` once (the page keeps it in the tab's `sessionStorage`
//! and sends `Authorization: Bearer`), or enter it when the page asks.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::extract::{OriginalUri, Path};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha1::{Digest, Sha1};

use crate::error::ApiError;

/// One embedded file.
#[derive(Clone, Copy, Debug)]
pub struct Asset {
    /// Its path under `/assets/`.
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $content_type:literal) => {
        Asset {
            path: $path,
            content_type: $content_type,
            body: include_bytes!(concat!("../assets/", $path)),
        }
    };
}

/// The files served under `/assets/`.
pub const ASSETS: &[Asset] = &[
    asset!("viewer.css", "text/css; charset=utf-8"),
    asset!("js/main.js", "text/javascript; charset=utf-8"),
    asset!("js/api.js", "text/javascript; charset=utf-8"),
    asset!("js/format.js", "text/javascript; charset=utf-8"),
    asset!("js/live.js", "text/javascript; charset=utf-8"),
    asset!("js/render.js", "text/javascript; charset=utf-8"),
    asset!("js/dashboard.js", "text/javascript; charset=utf-8"),
    asset!("js/charts.js", "text/javascript; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
];

/// The page template; `{{base}}` becomes the path the page was requested
/// at, ending with `/`.
const INDEX: &str = include_str!("../assets/index.html");

/// The `Content-Security-Policy` of the viewer's responses.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     media-src 'self' https: http:; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// The embedded file at `path` (relative to `/assets/`).
pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

fn etags() -> &'static HashMap<&'static str, String> {
    static ETAGS: OnceLock<HashMap<&'static str, String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let digest = Sha1::digest(a.body);
                let hex: String = digest[..10].iter().map(|b| format!("{b:02x}")).collect();
                (a.path, format!("\"{hex}\""))
            })
            .collect()
    })
}

/// The headers every viewer response carries.
fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Escapes text for an HTML attribute.
fn escape_attribute(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// The page's base: the requested path, ending with `/`.
fn base_of(path: &str) -> String {
    if path.ends_with('/') {
        path.to_owned()
    } else {
        format!("{path}/")
    }
}

/// The page as served for a request to `path`.
pub fn page(path: &str) -> String {
    INDEX.replace("{{base}}", &escape_attribute(&base_of(path)))
}

/// `GET /`: the viewer's page.
pub async fn index(OriginalUri(uri): OriginalUri) -> Response {
    let body = page(uri.path());
    secure(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response())
}

/// `GET /assets/{path}`: an embedded file (`304` when the client's
/// `If-None-Match` names its ETag), or the API's JSON 404.
pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = find(&path) else {
        return ApiError::not_found(format!("the viewer has no file {path:?}")).into_response();
    };
    let etag = etags().get(asset.path).cloned().unwrap_or_default();
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.content_type)], asset.body).into_response()
    };
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    secure(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_its_files_from_where_it_is_served() {
        assert!(page("/").contains(r#"href="/assets/viewer.css""#));
        assert!(page("/calls").contains(r#"src="/calls/assets/js/main.js""#));
        assert!(page("/calls/").contains(r#"href="/calls/assets/viewer.css""#));
        assert!(page("/a\"b<").contains(r#"href="/a&quot;b&lt;/assets/viewer.css""#));
        assert!(!page("/").contains("{{"));
        assert!(!INDEX.contains("http://") && !INDEX.contains("https://"));
    }

    #[test]
    fn every_file_the_page_and_modules_load_is_embedded() {
        let mut texts = vec![INDEX.to_owned()];
        for a in ASSETS {
            assert!(!a.body.is_empty(), "{}", a.path);
            if a.content_type.starts_with("text/") {
                texts.push(String::from_utf8(a.body.to_vec()).unwrap());
            }
        }
        for text in &texts {
            // No CDN: nothing is loaded from another origin.
            assert!(!text.contains("cdn."), "a CDN reference");
            for piece in text.split("assets/").skip(1) {
                let name: String = piece
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || "._/-".contains(*c))
                    .collect();
                if name.contains('.') {
                    assert!(
                        find(&name).is_some(),
                        "{name} is referenced but not embedded"
                    );
                }
            }
            for piece in text.split("from \"./").skip(1) {
                let name: String = piece.chars().take_while(|c| *c != '"').collect();
                assert!(
                    find(&format!("js/{name}")).is_some(),
                    "module {name} is imported but not embedded"
                );
            }
        }
    }
}
