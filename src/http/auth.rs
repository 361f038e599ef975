//! Authentication: API keys (scoped admin or read-only) and short-lived user tokens.
//!
//! - Keys come from `auth.api_keys` and `HEARTH_API_KEY` and are sent as
//!   `Authorization: Bearer <key>`. Browsers cannot set headers on WebSocket or
//!   EventSource requests, so `?token=` / `?access_token=` is accepted too.
//! - Keys are compared as SHA-256 digests with a constant-time equality, so neither the
//!   content nor the length of a key leaks through timing.
//! - User tokens (`hth1.<claims>.<hmac>`) are minted by an admin through
//!   `POST /api/auth/tokens`; they let a browser open one user's own streams
//!   (notifications, progress) without holding an API key.
//! - With no key configured, auth is off: hearth then serves loopback addresses only
//!   (enforced at start, see [`check_bind`]).
//!
//! # Authorization policy
//!
//! One table, enforced by [`authorize`] (the coarse check every request passes) and the
//! handlers (which know whose data a request touches); `tests/api/authz.rs` checks it
//! route by route for every route of the router:
//!
//! | caller | may |
//! |---|---|
//! | nobody (auth on) | `/healthz`, `/readyz`, `/openapi.json` only; everything else 401 |
//! | admin key (or auth off) | everything |
//! | read-only key | every `GET`/`HEAD` (including `/metrics` and streams) and the `POST`s that only read: `POST /api/search`, `POST /api/cache/mget`, `POST /v1/embeddings`, `POST /api/auth/stream-ticket`; any other write 403, and so is `/ws/worker` (a worker takes and ends jobs: its handler refuses all but admin keys) |
//! | user token | stream tickets for itself; its own notification feed (list, unread count, get, read, read-all, delete; preferences read-only) and streams (`/ws/notifications` for itself, `/ws/progress`, `GET /api/progress/{id}` and its `/events`: a progress id is a capability, as export ids are); exports: create (it becomes the owner; `notify_user_id` only itself, no `webhook_url`/`webhook_secret`), list its own, get, download and delete its own. Everything else 403: sending notifications, jobs, queues, schedules, cache, search, stored sources, progress writes and listing, `/metrics`, minting tokens |
//!
//! A credential in the query string (`?token=`, `?access_token=`) counts only on stream
//! routes ([`is_stream_route`]): elsewhere it is ignored, so the request is as if it had
//! no credential (401).
//!
//! Browsers should not put a key in a URL at all: they trade it for a single-use stream
//! ticket (`POST /api/auth/stream-ticket`, 60 s, same scope) and open the stream with
//! `?ticket=` (see `auth/ticket.rs`). User tokens never open the job event streams.

use crate::config::{Config, KeyScope};
use crate::error::{ApiError, ErrorCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use subtle::ConstantTimeEq;

mod ticket;
pub use ticket::{StreamCaller, TICKET_TTL_SECONDS, ticket_of};

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Auth is off (no keys configured; loopback only).
    Open,
    /// An admin API key: everything.
    Admin,
    /// A read-only API key: reads and streams.
    ReadOnly,
    /// A user token: only that user's own streams and feed.
    User(String),
}

impl Principal {
    /// True when the caller may read or act on data owned by `user_id`.
    pub fn may_access_user(&self, user_id: &str) -> bool {
        match self {
            Principal::Open | Principal::Admin | Principal::ReadOnly => true,
            Principal::User(u) => u == user_id,
        }
    }

    /// The scope's name: `open` (auth off), `admin`, `read_only` or `user`.
    pub fn scope(&self) -> &'static str {
        match self {
            Principal::Open => "open",
            Principal::Admin => "admin",
            Principal::ReadOnly => "read_only",
            Principal::User(_) => "user",
        }
    }

    /// True for callers that hold an API key (or when auth is off).
    pub fn is_service(&self) -> bool {
        !matches!(self, Principal::User(_))
    }

    /// A 403 unless the caller may access `user_id`'s data.
    pub fn require_user(&self, user_id: &str) -> Result<(), ApiError> {
        if self.may_access_user(user_id) { Ok(()) } else { Err(ApiError::new(ErrorCode::Forbidden, "this token belongs to another user")) }
    }
}

/// The claims inside a user token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenClaims {
    /// The user id the token is for.
    pub sub: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
}

const TOKEN_PREFIX: &str = "hth1";

/// Verifies credentials. Built once from the configuration.
pub struct Authenticator {
    keys: Vec<([u8; 32], KeyScope)>,
    token_key: Vec<u8>,
    /// Longest lifetime of a minted token, seconds.
    pub max_token_ttl: u64,
    /// Stream tickets already used.
    spent: ticket::Spent,
}

impl Authenticator {
    /// Builds the authenticator. The token secret is `auth.token_secret`, else derived
    /// from the first API key, else random for this process.
    pub fn new(config: &Config) -> Self {
        let keys = config.auth.api_keys.iter().map(|k| (digest(k.key.as_bytes()), k.scope)).collect();
        let token_key = match (&config.auth.token_secret, config.auth.api_keys.first()) {
            (Some(s), _) => s.as_bytes().to_vec(),
            (None, Some(k)) => {
                let mut h = Sha256::new();
                h.update(b"hearth user token key\0");
                h.update(k.key.as_bytes());
                h.finalize().to_vec()
            }
            (None, None) => rand::random::<[u8; 32]>().to_vec(),
        };
        Authenticator {
            keys,
            token_key,
            max_token_ttl: config.auth.max_token_ttl_seconds.unwrap_or(super::system::DEFAULT_MAX_TOKEN_TTL),
            spent: Default::default(),
        }
    }

    /// True when API keys are configured.
    pub fn enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Resolves a presented credential (or its absence) to a principal.
    pub fn authenticate(&self, credential: Option<&str>) -> Result<Principal, ApiError> {
        if !self.enabled() {
            if let Some(c) = credential
                && c.starts_with(TOKEN_PREFIX)
            {
                // Tokens still identify the user when auth is off.
                return self.verify_token(c).map(|cl| Principal::User(cl.sub));
            }
            return Ok(Principal::Open);
        }
        let Some(c) = credential else {
            return Err(ApiError::new(ErrorCode::Unauthorized, "missing credentials: send Authorization: Bearer <api key or user token>"));
        };
        if c.starts_with(TOKEN_PREFIX) {
            return self.verify_token(c).map(|cl| Principal::User(cl.sub));
        }
        let d = digest(c.as_bytes());
        let mut found = None;
        for (k, scope) in &self.keys {
            if bool::from(k.ct_eq(&d)) {
                found = Some(*scope);
            }
        }
        match found {
            Some(KeyScope::Admin) => Ok(Principal::Admin),
            Some(KeyScope::ReadOnly) => Ok(Principal::ReadOnly),
            None => Err(ApiError::new(ErrorCode::Unauthorized, "invalid API key or token")),
        }
    }

    /// Mints a token for `user_id` valid for `ttl_seconds`.
    pub fn mint(&self, user_id: &str, ttl_seconds: u64, now: i64) -> (String, i64) {
        let exp = now + ttl_seconds as i64;
        let claims = serde_json::to_vec(&TokenClaims { sub: user_id.to_string(), exp }).expect("claims serialize");
        let body = URL_SAFE_NO_PAD.encode(claims);
        let sig = URL_SAFE_NO_PAD.encode(self.sign(&body));
        (format!("{TOKEN_PREFIX}.{body}.{sig}"), exp)
    }

    /// Checks a token's signature and expiry.
    pub fn verify_token(&self, token: &str) -> Result<TokenClaims, ApiError> {
        let bad = || ApiError::new(ErrorCode::Unauthorized, "invalid or expired user token");
        let mut parts = token.split('.');
        let (Some(TOKEN_PREFIX), Some(body), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| bad())?;
        if !bool::from(self.sign(body).as_slice().ct_eq(&sig)) {
            return Err(bad());
        }
        let claims: TokenClaims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).map_err(|_| bad())?).map_err(|_| bad())?;
        if claims.exp <= chrono::Utc::now().timestamp() {
            return Err(bad());
        }
        Ok(claims)
    }

    fn sign(&self, body: &str) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.token_key).expect("hmac takes any key length");
        mac.update(body.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

fn digest(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

/// Refuses to serve a non-loopback address without API keys unless `auth.disabled`.
pub fn check_bind(config: &Config, addr: SocketAddr) -> Result<(), String> {
    if config.auth.api_keys.is_empty() && !addr.ip().is_loopback() && !config.auth.disabled {
        return Err(format!(
            "refusing to listen on {addr} without API keys: set HEARTH_API_KEY or auth.api_keys, \
             or set auth.disabled: true to serve unauthenticated on purpose"
        ));
    }
    Ok(())
}

/// True for the routes that serve a stream to clients that cannot set headers (browsers'
/// `WebSocket` and `EventSource`): WebSockets under `/ws/` and SSE routes ending in
/// `/events`. Only these accept the credential in the query string.
pub fn is_stream_route(path: &str) -> bool {
    path.starts_with("/ws/") || (path.starts_with("/api/") && path.ends_with("/events"))
}

/// Extracts the credential from `Authorization: Bearer`, or — on stream routes only (see
/// [`is_stream_route`]) — from the `token`/`access_token` query parameters. Elsewhere a
/// credential in the URL is ignored: URLs end up in logs, histories and referrers.
pub fn credential_of(headers: &axum::http::HeaderMap, query: Option<&str>, path: &str) -> Option<String> {
    if let Some(v) = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok())
        && let Some(t) = v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer "))
    {
        return Some(t.trim().to_string());
    }
    if !is_stream_route(path) {
        return None;
    }
    let q = query?;
    form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "token" || k == "access_token").map(|(_, v)| v.into_owned())
}

/// Who holds a stream, for the per-caller stream cap: the API key (a digest prefix, never
/// the key), the user of a user token, or the peer address when auth is off.
pub fn caller_id(principal: &Principal, credential: Option<&str>, peer: Option<std::net::IpAddr>) -> String {
    match (principal, credential) {
        (Principal::User(u), _) => format!("user:{u}"),
        (Principal::Admin | Principal::ReadOnly, Some(c)) => format!("key:{}", hex::encode(&digest(c.as_bytes())[..8])),
        _ => match peer {
            Some(ip) => format!("peer:{ip}"),
            None => "peer:unknown".into(),
        },
    }
}

/// POST routes that only read: a read-only key may call them.
const READ_ONLY_POSTS: &[&str] = &["/api/search", "/api/cache/mget", "/v1/embeddings", "/api/auth/stream-ticket"];

/// Whether `principal` may make this request at all; finer per-user checks happen in handlers.
pub fn authorize(principal: &Principal, method: &axum::http::Method, path: &str) -> Result<(), ApiError> {
    use axum::http::Method;
    let read = method == Method::GET || method == Method::HEAD || (method == Method::POST && READ_ONLY_POSTS.contains(&path));
    match principal {
        Principal::Open | Principal::Admin => Ok(()),
        Principal::ReadOnly if read => Ok(()),
        Principal::ReadOnly => Err(ApiError::new(ErrorCode::Forbidden, "this API key is read-only")),
        Principal::User(_) => {
            // Handlers check that the user in the request is the token's user, that
            // sending a notification (POST /api/notifications) needs a service principal,
            // and that a user acts only on the exports it created.
            let allowed = path.starts_with("/ws/")
                || path == "/api/auth/stream-ticket"
                || (read && path.starts_with("/api/progress/"))
                || (path.starts_with("/api/notifications") && (read || !path.starts_with("/api/notifications/preferences")))
                || path == "/api/exports"
                || path.starts_with("/api/exports/");
            if allowed {
                Ok(())
            } else {
                Err(ApiError::new(ErrorCode::Forbidden, "a user token only opens that user's own streams and feed"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ApiKeyConfig;

    fn cfg(keys: &[(&str, KeyScope)]) -> Config {
        let mut c = Config::default();
        c.auth.api_keys = keys.iter().map(|(k, s)| ApiKeyConfig { key: k.to_string(), scope: *s, name: None }).collect();
        c
    }

    #[test]
    fn keys_and_scopes() {
        let a = Authenticator::new(&cfg(&[("admin-key-0123456789", KeyScope::Admin), ("read-key-0123456789", KeyScope::ReadOnly)]));
        assert_eq!(a.authenticate(Some("admin-key-0123456789")).unwrap(), Principal::Admin);
        assert_eq!(a.authenticate(Some("read-key-0123456789")).unwrap(), Principal::ReadOnly);
        assert_eq!(a.authenticate(Some("nope")).unwrap_err().status(), 401);
        assert_eq!(a.authenticate(None).unwrap_err().status(), 401);
    }

    #[test]
    fn tokens_round_trip_and_reject_tampering() {
        let a = Authenticator::new(&cfg(&[("admin-key-0123456789", KeyScope::Admin)]));
        let (t, _) = a.mint("alice", 60, chrono::Utc::now().timestamp());
        assert_eq!(a.authenticate(Some(&t)).unwrap(), Principal::User("alice".into()));
        let mut tampered = t.clone();
        tampered.pop();
        tampered.push(if t.ends_with('A') { 'B' } else { 'A' });
        assert!(a.authenticate(Some(&tampered)).is_err());
        let (old, _) = a.mint("alice", 1, chrono::Utc::now().timestamp() - 100);
        assert!(a.verify_token(&old).is_err());
        let other = Authenticator::new(&cfg(&[("another-key-0123456789", KeyScope::Admin)]));
        assert!(other.verify_token(&t).is_err());
    }

    #[test]
    fn non_loopback_without_keys_is_refused() {
        let c = Config::default();
        assert!(check_bind(&c, "0.0.0.0:8080".parse().unwrap()).is_err());
        assert!(check_bind(&c, "127.0.0.1:8080".parse().unwrap()).is_ok());
        let mut c = Config::default();
        c.auth.disabled = true;
        assert!(check_bind(&c, "0.0.0.0:8080".parse().unwrap()).is_ok());
    }

    #[test]
    fn query_credentials_only_on_stream_routes() {
        let h = axum::http::HeaderMap::new();
        assert_eq!(credential_of(&h, Some("token=abc"), "/ws/progress").as_deref(), Some("abc"));
        assert_eq!(credential_of(&h, Some("access_token=abc"), "/api/progress/p1/events").as_deref(), Some("abc"));
        assert_eq!(credential_of(&h, Some("token=abc"), "/api/jobs"), None, "an admin key in a URL is not accepted on REST routes");
    }

    #[test]
    fn user_tokens_are_confined() {
        use axum::http::Method;
        let u = Principal::User("bob".into());
        assert!(authorize(&u, &Method::GET, "/ws/notifications").is_ok());
        assert!(authorize(&u, &Method::GET, "/api/jobs").is_err());
        assert!(authorize(&u, &Method::POST, "/api/jobs").is_err());
        assert!(authorize(&Principal::ReadOnly, &Method::POST, "/api/jobs").is_err());
        assert!(authorize(&Principal::ReadOnly, &Method::GET, "/api/jobs").is_ok());
        assert!(authorize(&Principal::ReadOnly, &Method::POST, "/api/search").is_ok(), "a search is a read");
        assert!(authorize(&Principal::ReadOnly, &Method::POST, "/api/search/index").is_err());
        assert!(authorize(&u, &Method::GET, "/api/exports/abc").is_ok(), "handlers check the export's owner");
        assert!(authorize(&u, &Method::GET, "/api/transcripts/abc").is_err());
    }
}
