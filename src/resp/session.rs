//! A RESP connection's state and the commands that change it rather than the cache:
//! `AUTH` (against hearth's API keys), `HELLO` (protocol version, optional auth and name)
//! and `CLIENT` (name, id, info).

use super::commands::{REDIS_VERSION, Res};
use super::cursors::Cursors;
use super::proto::Reply;
use crate::http::auth::{Authenticator, Principal};
use bytes::Bytes;

/// A connection's state.
pub struct Session {
    /// Replies in RESP3 (after `HELLO 3`).
    pub resp3: bool,
    /// Who authenticated (None: not yet, while keys are configured).
    pub principal: Option<Principal>,
    /// `CLIENT SETNAME`.
    pub name: Option<String>,
    /// The connection's number (`CLIENT ID`).
    pub id: u64,
    /// The endpoint's `SCAN` cursors, shared by every connection.
    pub cursors: std::sync::Arc<Cursors>,
}

/// What the connection does after a reply.
#[derive(Debug, PartialEq, Eq)]
pub enum After {
    /// Reads the next request.
    Continue,
    /// Closes the connection (`QUIT`).
    Close,
}

pub(super) fn authenticate(auth: &Authenticator, s: &mut Session, a: &[Bytes]) -> Reply {
    let password = match a {
        [p] | [_, p] => String::from_utf8_lossy(p).into_owned(),
        _ => return Reply::err("wrong number of arguments for 'auth' command"),
    };
    if !auth.enabled() {
        return Reply::err(
            "AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        );
    }
    match auth.authenticate(Some(&password)) {
        Ok(p @ (Principal::Admin | Principal::ReadOnly)) => {
            s.principal = Some(p);
            Reply::OK
        }
        _ => Reply::Error("WRONGPASS invalid username-password pair or user is disabled.".into()),
    }
}

/// `HELLO [protover [AUTH username password] [SETNAME name]]`.
pub(super) fn hello(auth: &Authenticator, s: &mut Session, a: &[Bytes]) -> Reply {
    let mut resp3 = s.resp3;
    if let Some(v) = a.first() {
        match v.as_ref() {
            b"2" => resp3 = false,
            b"3" => resp3 = true,
            _ => return Reply::Error("NOPROTO unsupported protocol version".into()),
        }
    }
    let mut i = 1;
    while i < a.len() {
        match a[i].to_ascii_uppercase().as_slice() {
            b"AUTH" => {
                let (Some(u), Some(p)) = (a.get(i + 1), a.get(i + 2)) else { return Reply::err("syntax error in HELLO option 'auth'") };
                let r = authenticate(auth, s, &[u.clone(), p.clone()]);
                if r != Reply::OK {
                    return r;
                }
                i += 3;
            }
            b"SETNAME" => {
                let Some(n) = a.get(i + 1) else { return Reply::err("syntax error in HELLO option 'setname'") };
                s.name = Some(String::from_utf8_lossy(n).into_owned());
                i += 2;
            }
            _ => return Reply::err(format!("syntax error in HELLO option '{}'", String::from_utf8_lossy(&a[i]))),
        }
    }
    if s.principal.is_none() {
        return Reply::Error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into());
    }
    s.resp3 = resp3;
    Reply::Map(vec![
        (Reply::text("server"), Reply::text("redis")),
        (Reply::text("version"), Reply::text(REDIS_VERSION)),
        (Reply::text("proto"), Reply::Int(if resp3 { 3 } else { 2 })),
        (Reply::text("id"), Reply::Int(s.id as i64)),
        (Reply::text("mode"), Reply::text("standalone")),
        (Reply::text("role"), Reply::text("master")),
        (Reply::text("modules"), Reply::Array(Vec::new())),
    ])
}

pub(super) fn client(s: &mut Session, a: &[Bytes]) -> Res {
    let sub = a.first().map(|x| x.to_ascii_uppercase()).unwrap_or_default();
    match sub.as_slice() {
        b"SETNAME" => {
            let n = a.get(1).ok_or_else(|| Reply::err("wrong number of arguments for 'client|setname' command"))?;
            s.name = Some(String::from_utf8_lossy(n).into_owned());
            Ok(Reply::OK)
        }
        b"GETNAME" => Ok(s.name.clone().map_or(Reply::Nil, Reply::text)),
        b"ID" => Ok(Reply::Int(s.id as i64)),
        b"SETINFO" | b"NO-EVICT" | b"NO-TOUCH" | b"REPLY" => Ok(Reply::OK),
        b"INFO" => Ok(Reply::text(format!("id={} name={} resp={}\n", s.id, s.name.as_deref().unwrap_or(""), if s.resp3 { 3 } else { 2 }))),
        _ => Err(Reply::err(format!("unknown subcommand '{}'. Try CLIENT HELP.", String::from_utf8_lossy(&sub)))),
    }
}
