//! What keeps a web page the user happens to have open from using hearth's API through
//! their browser.
//!
//! A page on another site can make the browser send requests to `127.0.0.1:8080`; it
//! cannot read the answers (the browser's same-origin policy), but the requests still
//! act, and a WebSocket is not covered by that policy at all. And through DNS rebinding
//! (a hostile name that resolves to 127.0.0.1 after the page loaded) a page becomes
//! "same-origin" with hearth and reads everything. So, before any handler runs:
//!
//! - **Host** (only when auth is off — with keys, a page has no key to send): the `Host`
//!   header, without its port, must be a loopback name or address, the address hearth is
//!   bound to (any IP literal when bound to all interfaces), or one of
//!   `server.public_hosts`. A rebinding name is none of these: 403. The probes
//!   (`/healthz`, `/readyz`) answer whatever the Host, as orchestrators call them by
//!   whatever name they know.
//! - **Origin** on WebSocket/SSE upgrades and on every state-changing request (POST, PUT,
//!   PATCH, DELETE): when the browser says where the request comes from, it must be
//!   hearth's own origin (same host and port) or listed in `server.cors.allowed_origins`:
//!   else 403. Programs that are not browsers send no `Origin` and are not affected.
//! - **Content type**: a POST whose body is an HTML form or text (`x-www-form-urlencoded`,
//!   `multipart/form-data`, `text/plain`: the types a page may send anywhere without
//!   asking) is refused with 415, whatever the route (routes without a body included).
//! - **CORS** is off unless `server.cors.allowed_origins` lists origins; then those (and
//!   only those) get CORS answers, preflights included (see [`cors_layer`]).

use crate::config::Config;
use crate::error::{ApiError, ErrorCode};
use axum::extract::Request;
use axum::http::{HeaderValue, Method, header};
use std::net::IpAddr;
use std::sync::Arc;

/// The browser rules of one server, built once from the configuration.
#[derive(Debug, Clone)]
pub struct BrowserPolicy {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Whether the Host check applies (auth off).
    check_host: bool,
    /// The IP hearth listens on (unspecified: any local address).
    bound: Option<IpAddr>,
    /// `server.public_hosts`, lowercased.
    public_hosts: Vec<String>,
    /// `server.cors.allowed_origins`, normalised (lowercase, no trailing slash).
    origins: Vec<String>,
}

impl BrowserPolicy {
    /// The rules `config` asks for.
    pub fn new(config: &Config) -> Self {
        let auth_off = config.auth.api_keys.is_empty();
        let bound = config.bind_addr().ok().map(|a| a.ip());
        BrowserPolicy {
            inner: Arc::new(Inner {
                check_host: auth_off,
                bound,
                public_hosts: config.server.public_hosts.iter().map(|h| h.trim().to_ascii_lowercase()).collect(),
                origins: config.server.cors.allowed_origins.iter().map(|o| normalise_origin(o)).collect(),
            }),
        }
    }

    /// Refuses a request a browser must not be able to make (see the module doc).
    pub fn check(&self, req: &Request) -> Result<(), ApiError> {
        let headers = req.headers();
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).or_else(|| req.uri().authority().map(|a| a.as_str()));
        if self.inner.check_host
            && !matches!(req.uri().path(), "/healthz" | "/readyz")
            && let Some(host) = host
            && !self.host_allowed(host)
        {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                format!(
                    "Host '{host}' is not this server's: with authentication off, hearth answers only to loopback names, \
                     its bound address and server.public_hosts"
                ),
            ));
        }
        let method = req.method();
        let unsafe_method = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        if (unsafe_method || super::auth::is_stream_route(req.uri().path()))
            && let Some(origin) = headers.get(header::ORIGIN)
        {
            let origin = origin.to_str().unwrap_or("null");
            if !self.origin_allowed(origin, host) {
                return Err(ApiError::new(
                    ErrorCode::Forbidden,
                    format!("Origin '{origin}' may not use this API from a browser; list it in server.cors.allowed_origins"),
                ));
            }
        }
        if *method == Method::POST
            && let Some(ct) = headers.get(header::CONTENT_TYPE)
            && is_form_type(ct)
        {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "Content-Type: a form or text/plain body is not accepted here; send application/json",
            ));
        }
        Ok(())
    }

    fn host_allowed(&self, host: &str) -> bool {
        let name = strip_port(host).to_ascii_lowercase();
        if name == "localhost" || name.ends_with(".localhost") || self.inner.public_hosts.iter().any(|h| *h == name) {
            return true;
        }
        match name.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            Ok(ip) => ip.is_loopback() || self.inner.bound.is_some_and(|b| b.is_unspecified() || b == ip),
            Err(_) => false,
        }
    }

    fn origin_allowed(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = normalise_origin(origin);
        if self.inner.origins.iter().any(|o| *o == origin) {
            return true;
        }
        // Same origin: the Origin's authority is the Host the browser sent.
        let authority = origin.split_once("://").map(|(_, a)| a);
        matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
    }
}

/// `host` without a trailing `:port` (IPv6 literals keep their brackets).
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

fn normalise_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// The content types an HTML page may POST anywhere without a CORS preflight.
fn is_form_type(ct: &HeaderValue) -> bool {
    let mime = ct.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    matches!(mime.as_str(), "application/x-www-form-urlencoded" | "multipart/form-data" | "text/plain")
}

/// The CORS layer for `server.cors.allowed_origins`, or None when none are listed (CORS
/// off: a browser keeps other sites from reading hearth's answers).
pub fn cors_layer(config: &Config) -> Option<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let origins: Vec<HeaderValue> =
        config.server.cors.allowed_origins.iter().filter_map(|o| HeaderValue::from_str(&normalise_origin(o)).ok()).collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::HeaderName::from_static("x-request-id")])
            .expose_headers([header::HeaderName::from_static("x-request-id"), header::HeaderName::from_static("x-cache")])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(yaml: &str) -> BrowserPolicy {
        BrowserPolicy::new(&Config::from_yaml(yaml).unwrap())
    }

    fn req(method: &str, path: &str, headers: &[(&str, &str)]) -> Request {
        let mut b = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn hosts_with_auth_off() {
        let p = policy("");
        for ok in ["127.0.0.1:8080", "localhost:8080", "LOCALHOST", "app.localhost:1", "[::1]:8080", "127.0.0.2"] {
            assert!(p.check(&req("GET", "/api/jobs", &[("host", ok)])).is_ok(), "{ok}");
        }
        for bad in ["evil.example", "evil.example:8080", "10.0.0.1:8080", "localhost.evil.example"] {
            assert!(p.check(&req("GET", "/api/jobs", &[("host", bad)])).is_err(), "{bad}");
        }
        assert!(p.check(&req("GET", "/readyz", &[("host", "pod-7.cluster.local")])).is_ok(), "probes answer any Host");
        let listed = policy("server: {public_hosts: [hearth.internal]}");
        assert!(listed.check(&req("GET", "/", &[("host", "Hearth.Internal:8080")])).is_ok());
        let keys = policy("auth: {api_keys: [{key: 'k-0123456789abcdef'}]}");
        assert!(keys.check(&req("GET", "/", &[("host", "evil.example")])).is_ok(), "with keys the Host is not checked");
        let all = policy("server: {bind: '0.0.0.0:8080'}\nauth: {disabled: true}");
        assert!(all.check(&req("GET", "/", &[("host", "192.168.1.20:8080")])).is_ok(), "any address when bound to all");
        assert!(all.check(&req("GET", "/", &[("host", "rebind.evil.example:8080")])).is_err());
    }

    #[test]
    fn origins_on_streams_and_writes() {
        let p = policy("server: {cors: {allowed_origins: ['https://app.example/']}}");
        let h = ("host", "127.0.0.1:8080");
        let evil = ("origin", "http://evil.example");
        assert!(p.check(&req("GET", "/ws/progress", &[h, evil])).is_err(), "a cross-origin WebSocket");
        assert!(p.check(&req("GET", "/api/jobs/events", &[h, evil])).is_err(), "a cross-origin SSE stream");
        assert!(p.check(&req("POST", "/api/queues/default/pause", &[h, evil])).is_err(), "a cross-origin write");
        assert!(p.check(&req("GET", "/api/jobs", &[h, evil])).is_ok(), "a read: the browser keeps the answer from the page");
        assert!(p.check(&req("GET", "/ws/progress", &[h, ("origin", "http://127.0.0.1:8080")])).is_ok(), "same origin");
        assert!(p.check(&req("DELETE", "/api/cache/k", &[h, ("origin", "https://APP.example")])).is_ok(), "listed");
        assert!(p.check(&req("POST", "/api/jobs", &[h, ("origin", "null")])).is_err(), "an opaque origin");
        assert!(p.check(&req("POST", "/api/jobs", &[h])).is_ok(), "no Origin: not a browser");
    }

    #[test]
    fn form_posts_are_refused() {
        let p = policy("");
        let h = ("host", "127.0.0.1");
        for ct in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "Text/Plain;charset=utf-8"] {
            let e = p.check(&req("POST", "/api/jobs/1/retry", &[h, ("content-type", ct)])).unwrap_err();
            assert_eq!(e.code, ErrorCode::UnsupportedMediaType, "{ct}");
        }
        assert!(p.check(&req("POST", "/api/jobs", &[h, ("content-type", "application/json")])).is_ok());
        assert!(p.check(&req("PUT", "/api/cache/k", &[h, ("content-type", "text/plain")])).is_ok(), "raw cache values keep their type");
    }

    #[test]
    fn ports_are_stripped() {
        assert_eq!(strip_port("a.b:80"), "a.b");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
        assert_eq!(strip_port("host"), "host");
    }
}
