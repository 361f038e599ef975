//! Stream tickets: how a browser opens a WebSocket or an EventSource without putting its
//! API key in a URL (browsers cannot set headers on those).
//!
//! `POST /api/auth/stream-ticket` (with the key in the `Authorization` header) answers a
//! ticket valid for [`TICKET_TTL_SECONDS`], bound to the caller's scope (admin,
//! read-only, a user, or auth off) and to its stream slot owner. The browser passes it as
//! `?ticket=` on a stream route; it works once. A ticket is signed like a user token (a
//! distinct prefix keeps the two apart), so any node with the same keys or
//! `auth.token_secret` accepts it; "once" is enforced per node (the spent set lives in
//! memory until the ticket expires).

use super::{Authenticator, Principal};
use crate::error::{ApiError, ErrorCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use subtle::ConstantTimeEq;

/// How long a ticket may wait before it is used.
pub const TICKET_TTL_SECONDS: i64 = 60;

const TICKET_PREFIX: &str = "htk1";
/// Spent tickets are forgotten (once expired) when more than this many are remembered.
const SPENT_SWEEP_AT: usize = 1024;

/// Who a ticket stands for.
#[derive(Debug, Serialize, Deserialize)]
struct TicketClaims {
    /// `open`, `admin`, `read_only` or `user`.
    scope: String,
    /// The user, for `user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    /// The stream-slot owner of the caller that asked for it.
    caller: String,
    /// Expiry, seconds since the Unix epoch.
    exp: i64,
    /// Makes each ticket unique, so that it can be spent once.
    nonce: String,
}

/// The caller a ticket was minted for, put in the request's extensions when a ticket
/// authenticated it: streams count against that caller's slots.
#[derive(Debug, Clone)]
pub struct StreamCaller(pub String);

/// Nonces of spent tickets, with their expiry.
#[derive(Default)]
pub(super) struct Spent(Mutex<HashMap<String, i64>>);

impl Authenticator {
    /// Mints a ticket for `principal` (whose stream slots are `caller`'s). Returns the
    /// ticket and its expiry (seconds since the Unix epoch).
    pub fn mint_ticket(&self, principal: &Principal, caller: &str, now: i64) -> (String, i64) {
        let (scope, sub) = match principal {
            Principal::User(u) => ("user", Some(u.clone())),
            p => (p.scope(), None),
        };
        let exp = now + TICKET_TTL_SECONDS;
        let nonce = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>());
        let claims = TicketClaims { scope: scope.into(), sub, caller: caller.into(), exp, nonce };
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("claims serialize"));
        let sig = URL_SAFE_NO_PAD.encode(self.sign(&format!("{TICKET_PREFIX}.{body}")));
        (format!("{TICKET_PREFIX}.{body}.{sig}"), exp)
    }

    /// Checks a ticket (signature, expiry, not spent), spends it, and answers who it
    /// stands for and whose stream slots it uses.
    pub fn redeem_ticket(&self, ticket: &str, now: i64) -> Result<(Principal, StreamCaller), ApiError> {
        let bad =
            || ApiError::new(ErrorCode::Unauthorized, "invalid or expired stream ticket: get a new one from POST /api/auth/stream-ticket");
        let mut parts = ticket.split('.');
        let (Some(TICKET_PREFIX), Some(body), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| bad())?;
        if !bool::from(self.sign(&format!("{TICKET_PREFIX}.{body}")).as_slice().ct_eq(&sig)) {
            return Err(bad());
        }
        let claims: TicketClaims = URL_SAFE_NO_PAD.decode(body).ok().and_then(|b| serde_json::from_slice(&b).ok()).ok_or_else(bad)?;
        if claims.exp <= now {
            return Err(bad());
        }
        let principal = match (claims.scope.as_str(), claims.sub) {
            // A ticket minted with auth off opens nothing once keys are configured.
            ("open", _) if !self.enabled() => Principal::Open,
            ("admin", _) => Principal::Admin,
            ("read_only", _) => Principal::ReadOnly,
            ("user", Some(u)) => Principal::User(u),
            _ => return Err(bad()),
        };
        {
            let mut spent = self.spent.0.lock();
            if spent.len() > SPENT_SWEEP_AT {
                spent.retain(|_, exp| *exp > now);
            }
            if spent.insert(claims.nonce, claims.exp).is_some() {
                return Err(ApiError::new(ErrorCode::Unauthorized, "this stream ticket was already used; get a new one"));
            }
        }
        Ok((principal, StreamCaller(claims.caller)))
    }
}

/// The `ticket` query parameter, on stream routes only (see [`super::is_stream_route`]).
pub fn ticket_of(query: Option<&str>, path: &str) -> Option<String> {
    if !super::is_stream_route(path) {
        return None;
    }
    form_urlencoded::parse(query?.as_bytes()).find(|(k, _)| k == "ticket").map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ApiKeyConfig, Config, KeyScope};

    fn with_key() -> Authenticator {
        let mut c = Config::default();
        c.auth.api_keys = vec![ApiKeyConfig { key: "some-key-0123456789".into(), scope: KeyScope::ReadOnly, name: None }];
        Authenticator::new(&c)
    }

    #[test]
    fn a_ticket_keeps_its_scope_and_works_once() {
        let a = with_key();
        let (t, exp) = a.mint_ticket(&Principal::ReadOnly, "key:abc", 1000);
        assert_eq!(exp, 1000 + TICKET_TTL_SECONDS);
        let (p, caller) = a.redeem_ticket(&t, 1001).expect("a fresh ticket works");
        assert_eq!((p, caller.0.as_str()), (Principal::ReadOnly, "key:abc"));
        assert_eq!(a.redeem_ticket(&t, 1002).unwrap_err().status(), 401, "a ticket works once");
        let (u, _) = a.mint_ticket(&Principal::User("bob".into()), "user:bob", 1000);
        assert_eq!(a.redeem_ticket(&u, 1000).unwrap().0, Principal::User("bob".into()));
    }

    #[test]
    fn expired_forged_and_foreign_tickets_are_refused() {
        let a = with_key();
        let (t, _) = a.mint_ticket(&Principal::Admin, "key:abc", 1000);
        assert!(a.redeem_ticket(&t, 1000 + TICKET_TTL_SECONDS).is_err(), "expired");
        let (t, _) = a.mint_ticket(&Principal::Admin, "key:abc", 1000);
        let forged = format!("{}x", &t[..t.len() - 1]);
        assert!(a.redeem_ticket(&forged, 1001).is_err(), "forged signature");
        let other = Authenticator::new(&Config::default());
        assert!(other.redeem_ticket(&t, 1001).is_err(), "another key signs differently");
        let (open, _) = other.mint_ticket(&Principal::Open, "peer:x", 1000);
        assert!(other.redeem_ticket(&open, 1001).is_ok(), "auth off: an open ticket works");
        let (t, _) = a.mint_ticket(&Principal::Admin, "key:abc", 1000);
        let as_token = t.replacen(TICKET_PREFIX, "hth1", 1);
        assert!(a.authenticate(Some(&as_token)).is_err(), "a ticket is not a user token");
    }

    #[test]
    fn tickets_come_from_the_query_of_stream_routes_only() {
        assert_eq!(ticket_of(Some("queue=a&ticket=t1"), "/ws/jobs").as_deref(), Some("t1"));
        assert_eq!(ticket_of(Some("ticket=t1"), "/api/jobs/events").as_deref(), Some("t1"));
        assert_eq!(ticket_of(Some("ticket=t1"), "/api/jobs"), None);
    }
}
