//! The dashboard at `/ui`: a few static files (plain HTML, CSS and JavaScript from `ui/`
//! at the repository root) compiled into the binary, so it needs no Node and no files at
//! run time. The page talks to hearth only through the public REST and WebSocket API, with
//! the API key the user typed (kept in `sessionStorage`, sent as `Authorization: Bearer`)
//! and stream tickets for WebSockets.
//!
//! The files are public (the page holds no data; every API call it makes is
//! authenticated). Each answer carries a strict Content-Security-Policy (only this
//! origin's scripts, styles and connections; no inline code; no framing), `no-referrer`,
//! and an ETag with `Cache-Control: no-cache`, so a browser revalidates cheaply and never
//! runs a stale script after an upgrade.

use axum::{
    Router,
    extract::Path,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

/// Every file of the dashboard, as built into the binary.
const ASSETS: &[Asset] = &[
    Asset { name: "index.html", content_type: "text/html; charset=utf-8", body: include_bytes!("../../../ui/index.html") },
    Asset { name: "app.css", content_type: "text/css; charset=utf-8", body: include_bytes!("../../../ui/app.css") },
    Asset { name: "api.js", content_type: "text/javascript; charset=utf-8", body: include_bytes!("../../../ui/api.js") },
    Asset { name: "dom.js", content_type: "text/javascript; charset=utf-8", body: include_bytes!("../../../ui/dom.js") },
    Asset { name: "app.js", content_type: "text/javascript; charset=utf-8", body: include_bytes!("../../../ui/app.js") },
    Asset { name: "pages.js", content_type: "text/javascript; charset=utf-8", body: include_bytes!("../../../ui/pages.js") },
    Asset { name: "jobs.js", content_type: "text/javascript; charset=utf-8", body: include_bytes!("../../../ui/jobs.js") },
    Asset { name: "favicon.svg", content_type: "image/svg+xml", body: include_bytes!("../../../ui/favicon.svg") },
];

/// The policy of every dashboard answer: this origin only, nothing inline, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Strong ETags of the assets, computed once.
static ETAGS: LazyLock<Vec<String>> =
    LazyLock::new(|| ASSETS.iter().map(|a| format!("\"{}\"", hex::encode(&Sha256::digest(a.body)[..12]))).collect());

/// True for the paths the dashboard serves (public: no credentials needed).
pub fn is_ui_path(path: &str) -> bool {
    path == "/ui" || path.starts_with("/ui/")
}

/// Total size of the embedded files, in bytes.
pub fn assets_size() -> usize {
    ASSETS.iter().map(|a| a.body.len()).sum()
}

/// The dashboard's routes (outside the OpenAPI document: they are not API).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(|headers: HeaderMap| async move { serve("index.html", &headers) }))
        .route("/ui/{file}", get(|Path(file): Path<String>, headers: HeaderMap| async move { serve(&file, &headers) }))
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(i) = ASSETS.iter().position(|a| a.name == name) else {
        return crate::error::ApiError::not_found("file", name).into_response();
    };
    let asset = &ASSETS[i];
    let etag = &ETAGS[i];
    let fresh = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut resp = if fresh { StatusCode::NOT_MODIFIED.into_response() } else { asset.body.into_response() };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_the_page_names_is_embedded_and_nothing_is_inline() {
        let index = std::str::from_utf8(ASSETS[0].body).unwrap();
        for a in &ASSETS[1..] {
            assert!(index.contains(a.name), "index.html does not load {}", a.name);
        }
        let handler_attr = index.split(" on").skip(1).any(|rest| {
            let name = rest.chars().take_while(char::is_ascii_alphabetic).count();
            name > 0 && rest[name..].starts_with('=')
        });
        assert!(!index.contains("<script>") && !index.contains("style=") && !handler_attr, "inline code breaks the CSP");
        assert!(assets_size() < 300 * 1024, "the dashboard stays small: {} bytes", assets_size());
    }
}
