//! The commands of the RESP endpoint, each mapped onto the cache's own operations (so a
//! key set here is read over HTTP and from Rust, with the same TTL and L1/L2 rules).
//!
//! Differences from Redis, by design: every key has a TTL (a `SET` without `EX`/`PX`
//! gets `cache.l2.default_ttl`, `PERSIST` sets `cache.max_ttl`, so `TTL` never answers
//! -1); only strings exist (`TYPE` is `string` or `none`); there is one database
//! (`SELECT 0`); `MSET` sets its keys one by one, not atomically. Read-modify-write
//! commands (`INCR`, `APPEND`, `SET NX|XX|GET|KEEPTTL`, `GETDEL`, `HEARTH.CAD`, ...) are
//! atomic through [`Cache::update`].

use super::cursors::Cursors;
use super::proto::Reply;
pub use super::session::{After, Session};
use super::session::{authenticate, client, hello};
use crate::cache::{Cache, CacheValue, Current, Update};
use crate::http::auth::{Authenticator, Principal};
use bytes::Bytes;
use std::time::Duration;

/// The version `INFO` and `HELLO` report, for client libraries that check it.
pub(super) const REDIS_VERSION: &str = "7.2.0";

/// The connection commands, handled by `run` before `command`.
const CONNECTION: &[&str] = &["QUIT", "AUTH", "HELLO", "RESET", "CLIENT"];

/// The commands that only read, besides the connection commands `run` handles itself.
const READS: &[&str] = &[
    "PING", "ECHO", "SELECT", "INFO", "COMMAND", "GET", "MGET", "EXISTS", "TOUCH", "TYPE", "STRLEN", "TTL", "PTTL", "DBSIZE", "SCAN",
    "KEYS",
];

/// The commands that change data (refused to read-only keys).
const WRITES: &[&str] = &[
    "SET",
    "SETNX",
    "SETEX",
    "PSETEX",
    "MSET",
    "DEL",
    "UNLINK",
    "EXPIRE",
    "PEXPIRE",
    "EXPIREAT",
    "PEXPIREAT",
    "PERSIST",
    "INCR",
    "INCRBY",
    "DECR",
    "DECRBY",
    "APPEND",
    "GETDEL",
    "GETEX",
    "GETSET",
    "FLUSHDB",
    "FLUSHALL",
    "HEARTH.CAD",
    "HEARTH.TAG",
    "HEARTH.INVALIDATE",
];

/// Runs one request.
pub async fn run(cache: &Cache, auth: &Authenticator, s: &mut Session, args: Vec<Bytes>) -> (Reply, After) {
    let Some(name) = args.first().map(|n| String::from_utf8_lossy(n).to_ascii_uppercase()) else {
        return (Reply::err("empty command"), After::Continue);
    };
    let a = &args[1..];
    match name.as_str() {
        "QUIT" => return (Reply::OK, After::Close),
        "AUTH" => return (authenticate(auth, s, a), After::Continue),
        "HELLO" => return (hello(auth, s, a), After::Continue),
        "RESET" => {
            (s.resp3, s.name) = (false, None);
            s.principal = (!auth.enabled()).then_some(Principal::Open);
            return (Reply::Simple("RESET"), After::Continue);
        }
        _ => {}
    }
    let reply = match &s.principal {
        None => Reply::Error("NOAUTH Authentication required.".into()),
        Some(Principal::ReadOnly) if WRITES.contains(&name.as_str()) => {
            Reply::Error("NOPERM this API key is read-only and cannot run this command".into())
        }
        Some(_) => match name.as_str() {
            "CLIENT" => client(s, a).unwrap_or_else(|e| e),
            _ => match command(cache, &s.cursors, &name, a).await {
                Ok(r) | Err(r) => r,
            },
        },
    };
    (reply, After::Continue)
}

pub(super) type Res = Result<Reply, Reply>;

/// True for a write whose outcome does not depend on other commands of the pipeline
/// beyond their order: a plain `SET` (at most `EX`/`PX`), `SETEX`, `PSETEX`, `DEL`,
/// `UNLINK`. A run of these is made durable together ([`run_write`]).
pub fn is_plain_write(args: &[Bytes]) -> bool {
    let Some(name) = args.first() else { return false };
    let upper = name.to_ascii_uppercase();
    match upper.as_slice() {
        b"SET" => args.len() == 3 || (args.len() == 5 && matches!(args[3].to_ascii_uppercase().as_slice(), b"EX" | b"PX")),
        b"SETEX" | b"PSETEX" | b"DEL" | b"UNLINK" => args.len() >= 2,
        _ => false,
    }
}

/// Runs a plain write ([`is_plain_write`]). Several may run at once: each orders itself
/// among the key's operations when first polled, so polling them in request order keeps
/// the pipeline's order, and their commits share one group commit.
pub async fn run_write(cache: &Cache, s: &Session, args: Vec<Bytes>) -> Reply {
    let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
    match &s.principal {
        None => Reply::Error("NOAUTH Authentication required.".into()),
        Some(Principal::ReadOnly) => Reply::Error("NOPERM this API key is read-only and cannot run this command".into()),
        Some(_) => match command(cache, &s.cursors, &name, &args[1..]).await {
            Ok(r) | Err(r) => r,
        },
    }
}

async fn command(cache: &Cache, cursors: &Cursors, name: &str, a: &[Bytes]) -> Res {
    let arity = |min: usize, max: Option<usize>| -> Result<(), Reply> {
        if a.len() < min || max.is_some_and(|m| a.len() > m) {
            return Err(Reply::err(format!("wrong number of arguments for '{}' command", name.to_ascii_lowercase())));
        }
        Ok(())
    };
    match name {
        "PING" => {
            arity(0, Some(1))?;
            Ok(a.first().map_or(Reply::Simple("PONG"), |m| Reply::Bulk(m.clone())))
        }
        "ECHO" => {
            arity(1, Some(1))?;
            Ok(Reply::Bulk(a[0].clone()))
        }
        "SELECT" => {
            arity(1, Some(1))?;
            if int(&a[0])? == 0 { Ok(Reply::OK) } else { Err(Reply::err("DB index is out of range")) }
        }
        "INFO" => info(cache).await,
        "COMMAND" => Ok(match a.first().map(|x| x.to_ascii_uppercase()) {
            Some(sub) if sub == b"COUNT" => Reply::Int((CONNECTION.len() + READS.len() + WRITES.len()) as i64),
            _ => Reply::Array(Vec::new()),
        }),
        "GET" => {
            arity(1, Some(1))?;
            Ok(bulk(cache.get(key(&a[0])?).await.map_err(failed)?))
        }
        "MGET" => {
            arity(1, None)?;
            let mut out = Vec::with_capacity(a.len());
            for k in a {
                out.push(bulk(cache.get(key(k)?).await.map_err(failed)?));
            }
            Ok(Reply::Array(out))
        }
        "SET" => {
            arity(2, None)?;
            set(cache, key(&a[0])?, a[1].clone(), &a[2..]).await
        }
        "SETNX" => {
            arity(2, Some(2))?;
            let v = a[1].clone();
            let ttl = default_ttl(cache);
            update(cache, key(&a[0])?, move |cur| match cur {
                Some(_) => Update::Keep(Reply::Int(0)),
                None => Update::Set { value: value(v.clone()), ttl: Some(ttl), tags: Some(vec![]), answer: Reply::Int(1) },
            })
            .await
        }
        "SETEX" | "PSETEX" => {
            arity(3, Some(3))?;
            let n = positive(&a[1], name)?;
            let ttl = if name == "SETEX" { Duration::from_secs(n) } else { Duration::from_millis(n) };
            cache.set(key(&a[0])?, value(a[2].clone()), Some(ttl), &[]).await.map_err(failed)?;
            Ok(Reply::OK)
        }
        "GETSET" => {
            arity(2, Some(2))?;
            set(cache, key(&a[0])?, a[1].clone(), &[Bytes::from_static(b"GET")]).await
        }
        "MSET" => {
            if a.is_empty() || a.len() % 2 != 0 {
                return Err(Reply::err("wrong number of arguments for 'mset' command"));
            }
            for kv in a.chunks(2) {
                cache.set(key(&kv[0])?, value(kv[1].clone()), None, &[]).await.map_err(failed)?;
            }
            Ok(Reply::OK)
        }
        "DEL" | "UNLINK" => {
            arity(1, None)?;
            let mut n = 0;
            for k in a {
                n += i64::from(cache.delete(key(k)?).await.map_err(failed)?);
            }
            Ok(Reply::Int(n))
        }
        "EXISTS" | "TOUCH" => {
            arity(1, None)?;
            let mut n = 0;
            for k in a {
                n += i64::from(cache.lookup(key(k)?).await.map_err(failed)?.is_some());
            }
            Ok(Reply::Int(n))
        }
        "TYPE" => {
            arity(1, Some(1))?;
            Ok(Reply::Simple(if cache.lookup(key(&a[0])?).await.map_err(failed)?.is_some() { "string" } else { "none" }))
        }
        "STRLEN" => {
            arity(1, Some(1))?;
            Ok(Reply::Int(cache.get(key(&a[0])?).await.map_err(failed)?.map_or(0, |v| v.len() as i64)))
        }
        "TTL" | "PTTL" => {
            arity(1, Some(1))?;
            let Some(hit) = cache.lookup(key(&a[0])?).await.map_err(failed)? else { return Ok(Reply::Int(-2)) };
            let left = (hit.expires_at - chrono::Utc::now()).num_milliseconds().max(0);
            Ok(Reply::Int(if name == "TTL" { (left + 500) / 1000 } else { left }))
        }
        "EXPIRE" | "PEXPIRE" | "EXPIREAT" | "PEXPIREAT" => {
            arity(2, Some(3))?;
            let n = int(&a[1])?;
            let now_ms = chrono::Utc::now().timestamp_millis();
            let ms = match name {
                "EXPIRE" => n.saturating_mul(1000),
                "PEXPIRE" => n,
                "EXPIREAT" => n.saturating_mul(1000).saturating_sub(now_ms),
                _ => n.saturating_sub(now_ms),
            };
            retime(cache, key(&a[0])?, (ms > 0).then(|| Duration::from_millis(ms as u64))).await
        }
        "PERSIST" => {
            arity(1, Some(1))?;
            let forever = Duration::from_secs(cache.config().max_ttl);
            retime(cache, key(&a[0])?, Some(forever)).await
        }
        "INCR" | "DECR" | "INCRBY" | "DECRBY" => {
            let by = match name {
                "INCR" | "DECR" => {
                    arity(1, Some(1))?;
                    1
                }
                _ => {
                    arity(2, Some(2))?;
                    int(&a[1])?
                }
            };
            let by = if name.starts_with("DECR") { by.checked_neg().ok_or_else(overflow)? } else { by };
            incr(cache, key(&a[0])?, by).await
        }
        "APPEND" => {
            arity(2, Some(2))?;
            let tail = a[1].clone();
            let ttl = default_ttl(cache);
            update(cache, key(&a[0])?, move |cur| {
                let mut v = cur.map_or(Vec::new(), |c| c.value.data().to_vec());
                v.extend_from_slice(&tail);
                let len = v.len() as i64;
                let ttl = cur.is_none().then_some(ttl);
                Update::Set { value: value(Bytes::from(v)), ttl, tags: None, answer: Reply::Int(len) }
            })
            .await
        }
        "GETDEL" => {
            arity(1, Some(1))?;
            update(cache, key(&a[0])?, |cur| match cur {
                Some(c) => Update::Delete(Reply::Bulk(c.value.data().clone())),
                None => Update::Keep(Reply::Nil),
            })
            .await
        }
        "GETEX" => {
            arity(1, Some(3))?;
            let ttl = match expiry_options(&a[1..], cache, false)? {
                Expiry::Unchanged => return Ok(bulk(cache.get(key(&a[0])?).await.map_err(failed)?)),
                Expiry::Keep => return Err(Reply::err("syntax error")),
                Expiry::For(d) => d,
            };
            update(cache, key(&a[0])?, move |cur| match cur {
                Some(c) => Update::Set { value: c.value.clone(), ttl: Some(ttl), tags: None, answer: Reply::Bulk(c.value.data().clone()) },
                None => Update::Keep(Reply::Nil),
            })
            .await
        }
        "DBSIZE" => Ok(Reply::Int(cache.get_stats().await.map_err(failed)?.entries as i64)),
        "FLUSHDB" | "FLUSHALL" => {
            cache.delete_pattern("*").await.map_err(failed)?;
            Ok(Reply::OK)
        }
        "HEARTH.CAD" => {
            arity(2, Some(2))?;
            let expected = a[1].clone();
            update(cache, key(&a[0])?, move |cur| match cur {
                Some(c) if c.value.data() == &expected => Update::Delete(Reply::Int(1)),
                _ => Update::Keep(Reply::Int(0)),
            })
            .await
        }
        "HEARTH.TAG" => {
            arity(2, None)?;
            let add: Vec<String> = a[1..].iter().map(|t| String::from_utf8_lossy(t).into_owned()).collect();
            update(cache, key(&a[0])?, move |cur| match cur {
                Some(c) => {
                    let mut tags = c.tags.clone();
                    tags.extend(add.iter().filter(|t| !c.tags.contains(t)).cloned());
                    Update::Set { value: c.value.clone(), ttl: None, tags: Some(tags), answer: Reply::Int(1) }
                }
                None => Update::Keep(Reply::Int(0)),
            })
            .await
        }
        "HEARTH.INVALIDATE" => {
            arity(1, None)?;
            let tags: Vec<String> = a.iter().map(|t| String::from_utf8_lossy(t).into_owned()).collect();
            Ok(Reply::Int(cache.invalidate(&tags).await.map_err(failed)? as i64))
        }
        "KEYS" => {
            arity(1, Some(1))?;
            let keys = cache.all_keys(&String::from_utf8_lossy(&a[0])).await.map_err(failed)?;
            Ok(Reply::Array(keys.into_iter().map(Reply::text).collect()))
        }
        "SCAN" => {
            arity(1, None)?;
            scan(cache, cursors, a).await
        }
        _ => Err(unknown(name, a)),
    }
}

/// `SCAN cursor [MATCH pattern] [COUNT n] [TYPE string]`: one page of
/// [`Cache::list_keys`] (pattern default `*`, count default 10, at most 1000); the cursor
/// is a number standing for the listing's own ([`Cursors`]), 0 to start and when done.
async fn scan(cache: &Cache, cursors: &Cursors, a: &[Bytes]) -> Res {
    let start = std::str::from_utf8(&a[0]).ok().and_then(|c| c.parse::<u64>().ok()).ok_or_else(|| Reply::err("invalid cursor"))?;
    let position = match start {
        0 => None,
        n => Some(cursors.get(n).ok_or_else(|| Reply::err("invalid cursor"))?),
    };
    let (mut pattern, mut count, mut strings) = ("*".to_string(), 10usize, true);
    let mut opts = a[1..].chunks(2);
    while let Some(pair) = opts.next() {
        let [name, v] = pair else { return Err(Reply::err("syntax error")) };
        match name.to_ascii_uppercase().as_slice() {
            b"MATCH" => pattern = String::from_utf8_lossy(v).into_owned(),
            b"COUNT" => {
                count = positive(v, "scan").map_err(|_| Reply::err("syntax error"))?.min(crate::cache::listing::MAX_PAGE as u64) as usize
            }
            // Every key is a string: another type lists nothing.
            b"TYPE" => strings = v.eq_ignore_ascii_case(b"string"),
            _ => return Err(Reply::err("syntax error")),
        }
    }
    let page = cache.list_keys(&pattern, position.as_deref(), count).await.map_err(failed)?;
    let next = page.cursor.map_or(0, |c| cursors.save(c));
    let keys = if strings { page.keys.into_iter().map(Reply::text).collect() } else { Vec::new() };
    Ok(Reply::Array(vec![Reply::text(next.to_string()), Reply::Array(keys)]))
}

/// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL]`.
async fn set(cache: &Cache, k: &str, v: Bytes, opts: &[Bytes]) -> Res {
    let (mut nx, mut xx, mut get) = (false, false, false);
    let mut rest = Vec::new();
    for o in opts {
        match o.to_ascii_uppercase().as_slice() {
            b"NX" => nx = true,
            b"XX" => xx = true,
            b"GET" => get = true,
            _ => rest.push(o.clone()),
        }
    }
    if nx && xx {
        return Err(Reply::err("syntax error"));
    }
    let expiry = expiry_options(&rest, cache, true)?;
    if !nx && !xx && !get && !matches!(expiry, Expiry::Keep) {
        let ttl = match expiry {
            Expiry::For(d) => Some(d),
            _ => None,
        };
        cache.set(k, value(v), ttl, &[]).await.map_err(failed)?;
        return Ok(Reply::OK);
    }
    let ttl = match expiry {
        Expiry::For(d) => Some(d),
        Expiry::Keep => None,
        Expiry::Unchanged => Some(default_ttl(cache)),
    };
    update(cache, k, move |cur| {
        let old = || cur.map_or(Reply::Nil, |c| Reply::Bulk(c.value.data().clone()));
        let refused = (nx && cur.is_some()) || (xx && cur.is_none());
        let answer = if get {
            old()
        } else if refused {
            Reply::Nil
        } else {
            Reply::OK
        };
        if refused {
            return Update::Keep(answer);
        }
        // KEEPTTL on a new key: the default TTL.
        let ttl = ttl.or_else(|| cur.is_none().then(|| default_ttl(cache)));
        Update::Set { value: value(v.clone()), ttl, tags: Some(vec![]), answer }
    })
    .await
}

/// What the expiry options of `SET` / `GETEX` ask for.
enum Expiry {
    /// None given.
    Unchanged,
    /// `KEEPTTL` (SET) or `PERSIST` is not this: keep the key's expiry.
    Keep,
    /// A new TTL.
    For(Duration),
}

fn expiry_options(opts: &[Bytes], cache: &Cache, for_set: bool) -> Result<Expiry, Reply> {
    let mut out = Expiry::Unchanged;
    let mut i = 0;
    let now_ms = chrono::Utc::now().timestamp_millis();
    while i < opts.len() {
        let o = opts[i].to_ascii_uppercase();
        let next = || opts.get(i + 1).ok_or_else(|| Reply::err("syntax error"));
        let given = match o.as_slice() {
            b"EX" => Expiry::For(Duration::from_secs(positive(next()?, "set")?)),
            b"PX" => Expiry::For(Duration::from_millis(positive(next()?, "set")?)),
            b"EXAT" => Expiry::For(Duration::from_millis(at_least_one(int(next()?)?.saturating_mul(1000) - now_ms))),
            b"PXAT" => Expiry::For(Duration::from_millis(at_least_one(int(next()?)? - now_ms))),
            b"KEEPTTL" if for_set => Expiry::Keep,
            b"PERSIST" if !for_set => Expiry::For(Duration::from_secs(cache.config().max_ttl)),
            _ => return Err(Reply::err("syntax error")),
        };
        i += if matches!(o.as_slice(), b"KEEPTTL" | b"PERSIST") { 1 } else { 2 };
        if !matches!(out, Expiry::Unchanged) {
            return Err(Reply::err("syntax error"));
        }
        out = given;
    }
    Ok(out)
}

fn at_least_one(ms: i64) -> u64 {
    ms.max(1) as u64
}

/// Sets a key's TTL (`None`: the key expires now, so it is deleted).
async fn retime(cache: &Cache, k: &str, ttl: Option<Duration>) -> Res {
    update(cache, k, move |cur| match (cur, ttl) {
        (None, _) => Update::Keep(Reply::Int(0)),
        (Some(_), None) => Update::Delete(Reply::Int(1)),
        (Some(c), Some(d)) => Update::Set { value: c.value.clone(), ttl: Some(d), tags: None, answer: Reply::Int(1) },
    })
    .await
}

async fn incr(cache: &Cache, k: &str, by: i64) -> Res {
    Ok(Reply::Int(cache.incr_by(k, by, None).await.map_err(failed)?))
}

/// Runs an atomic update whose decision cannot fail.
async fn update(cache: &Cache, k: &str, mut decide: impl FnMut(Option<&Current>) -> Update<Reply>) -> Res {
    cache.update(k, |cur| Ok(decide(cur))).await.map_err(failed)
}

fn overflow() -> Reply {
    Reply::err(crate::cache::OVERFLOW)
}

fn default_ttl(cache: &Cache) -> Duration {
    Duration::from_secs(cache.config().l2.default_ttl)
}

fn value(b: Bytes) -> CacheValue {
    CacheValue::new(b)
}

fn bulk(v: Option<CacheValue>) -> Reply {
    v.map_or(Reply::Nil, |v| Reply::Bulk(v.data().clone()))
}

/// A key argument: hearth's keys are UTF-8 strings, so other bytes are refused rather
/// than silently changed.
fn key(b: &Bytes) -> Result<&str, Reply> {
    std::str::from_utf8(b).map_err(|_| Reply::err("invalid key: hearth's cache keys are UTF-8 strings"))
}

fn int(b: &Bytes) -> Result<i64, Reply> {
    std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()).ok_or_else(|| Reply::err(crate::cache::NOT_AN_INTEGER))
}

fn positive(b: &Bytes, cmd: &str) -> Result<u64, Reply> {
    match int(b)? {
        n if n > 0 => Ok(n as u64),
        _ => Err(Reply::err(format!("invalid expire time in '{}' command", cmd.to_ascii_lowercase()))),
    }
}

/// A cache error as a reply (validation errors keep their message).
fn failed(e: crate::cache::CacheError) -> Reply {
    Reply::err(e)
}

/// Redis's own wording, which client libraries and people recognise.
fn unknown(name: &str, a: &[Bytes]) -> Reply {
    let args: String = a.iter().take(8).map(|x| format!("'{}' ", String::from_utf8_lossy(x))).collect();
    Reply::err(format!("unknown command '{}', with args beginning with: {args}", name.to_ascii_lowercase()))
}

async fn info(cache: &Cache) -> Res {
    let st = cache.get_stats().await.map_err(failed)?;
    Ok(Reply::text(format!(
        "# Server\r\nredis_version:{REDIS_VERSION}\r\nredis_mode:standalone\r\nhearth_version:{}\r\n\r\n\
         # Persistence\r\nloading:0\r\n\r\n\
         # Stats\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\n\r\n\
         # Keyspace\r\ndb0:keys={},expires={},avg_ttl=0\r\n",
        env!("CARGO_PKG_VERSION"),
        st.hits,
        st.misses,
        st.entries,
        st.entries
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_listed_command_is_served() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path()).unwrap();
        let cache = Cache::new(store, std::sync::Arc::new(crate::clock::SystemClock), Default::default());
        let cursors = Cursors::default();
        for name in READS.iter().chain(WRITES) {
            let reply = command(&cache, &cursors, name, &[]).await.unwrap_or_else(|e| e);
            assert!(!format!("{reply:?}").contains("unknown command"), "{name} is listed but not served");
        }
    }
}
