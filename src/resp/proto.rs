//! The Redis serialization protocol: parsing requests (arrays of bulk strings, and the
//! inline form `redis-cli` and `telnet` users type) and encoding replies in RESP2 or
//! RESP3 (after `HELLO 3`).

use bytes::{Buf, Bytes, BytesMut};

/// Most arguments in one request (Redis allows more; a cache command never needs them).
pub const MAX_ARGS: usize = 1024 * 1024;
/// Longest inline request line.
const MAX_INLINE: usize = 64 * 1024;

/// Why a request could not be parsed; the connection is closed after the error reply,
/// as Redis does.
#[derive(Debug, PartialEq, Eq)]
pub struct ProtocolError(pub String);

/// Takes one complete request off the front of `buf`: `Ok(None)` when more bytes are
/// needed. `max_bulk` caps one argument's length.
pub fn parse(buf: &mut BytesMut, max_bulk: usize) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    if buf.is_empty() {
        return Ok(None);
    }
    if buf[0] != b'*' {
        return parse_inline(buf);
    }
    let mut at = 0;
    let Some((n, next)) = number_line(buf, at + 1)? else { return Ok(None) };
    at = next;
    if n <= 0 {
        buf.advance(at);
        return Ok(Some(Vec::new()));
    }
    let n = n as usize;
    if n > MAX_ARGS {
        return Err(ProtocolError(format!("invalid multibulk length {n}")));
    }
    let mut spans = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        if at >= buf.len() {
            return Ok(None);
        }
        if buf[at] != b'$' {
            return Err(ProtocolError(format!("expected '$', got '{}'", buf[at] as char)));
        }
        let Some((len, next)) = number_line(buf, at + 1)? else { return Ok(None) };
        if len < 0 || len as usize > max_bulk {
            return Err(ProtocolError("invalid bulk length".into()));
        }
        let len = len as usize;
        if buf.len() < next + len + 2 {
            return Ok(None);
        }
        if &buf[next + len..next + len + 2] != b"\r\n" {
            return Err(ProtocolError("a bulk string must end with CRLF".into()));
        }
        spans.push((next, len));
        at = next + len + 2;
    }
    let frame = buf.split_to(at).freeze();
    Ok(Some(spans.into_iter().map(|(start, len)| frame.slice(start..start + len)).collect()))
}

/// The integer on the line starting at `from`, and where the next line starts.
fn number_line(buf: &[u8], from: usize) -> Result<Option<(i64, usize)>, ProtocolError> {
    let Some(end) = buf[from.min(buf.len())..].iter().position(|b| *b == b'\r').map(|p| from + p) else {
        if buf.len() - from.min(buf.len()) > 32 {
            return Err(ProtocolError("a length line is too long".into()));
        }
        return Ok(None);
    };
    if end + 1 >= buf.len() {
        return Ok(None);
    }
    if buf[end + 1] != b'\n' {
        return Err(ProtocolError("expected LF after CR".into()));
    }
    let n = std::str::from_utf8(&buf[from..end])
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| ProtocolError("invalid length".into()))?;
    Ok(Some((n, end + 2)))
}

/// An inline request: one line, words separated by spaces, `"..."` and `'...'` quoting.
fn parse_inline(buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let Some(nl) = buf.iter().position(|b| *b == b'\n') else {
        if buf.len() > MAX_INLINE {
            return Err(ProtocolError("too big inline request".into()));
        }
        return Ok(None);
    };
    let line = buf.split_to(nl + 1);
    let text = line.strip_suffix(b"\n").unwrap_or(&line);
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    let mut words = Vec::new();
    let mut cur = Vec::new();
    let (mut quote, mut in_word) = (None, false);
    for &b in text {
        match (quote, b) {
            (Some(q), b) if b == q => quote = None,
            (Some(_), b) => cur.push(b),
            (None, b'"' | b'\'') => {
                quote = Some(b);
                in_word = true;
            }
            (None, b' ' | b'\t') => {
                if in_word {
                    words.push(Bytes::from(std::mem::take(&mut cur)));
                    in_word = false;
                }
            }
            (None, b) => {
                cur.push(b);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(ProtocolError("unbalanced quotes in request".into()));
    }
    if in_word {
        words.push(Bytes::from(cur));
    }
    Ok(Some(words))
}

/// A reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`.
    Simple(&'static str),
    /// `-ERR ...` (the text includes the error's code word).
    Error(String),
    /// `:n`.
    Int(i64),
    /// `$n` bytes.
    Bulk(Bytes),
    /// The null reply (`$-1` / `_`).
    Nil,
    /// `*n` items.
    Array(Vec<Reply>),
    /// A map (`%n` in RESP3; a flat array in RESP2).
    Map(Vec<(Reply, Reply)>),
}

impl Reply {
    /// `+OK`.
    pub const OK: Reply = Reply::Simple("OK");

    /// An error reply `ERR <msg>`.
    pub fn err(msg: impl std::fmt::Display) -> Reply {
        Reply::Error(format!("ERR {msg}"))
    }

    /// A bulk string of `s`.
    pub fn text(s: impl Into<String>) -> Reply {
        Reply::Bulk(Bytes::from(s.into()))
    }

    /// Appends the reply's bytes for protocol version `resp3` to `out`.
    pub fn encode(&self, resp3: bool, out: &mut Vec<u8>) {
        match self {
            Reply::Simple(s) => line(out, b'+', s.as_bytes()),
            Reply::Error(e) => line(out, b'-', e.replace(['\r', '\n'], " ").as_bytes()),
            Reply::Int(n) => line(out, b':', n.to_string().as_bytes()),
            Reply::Bulk(b) => {
                line(out, b'$', b.len().to_string().as_bytes());
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Nil if resp3 => out.extend_from_slice(b"_\r\n"),
            Reply::Nil => out.extend_from_slice(b"$-1\r\n"),
            Reply::Array(items) => {
                line(out, b'*', items.len().to_string().as_bytes());
                for i in items {
                    i.encode(resp3, out);
                }
            }
            Reply::Map(pairs) => {
                if resp3 {
                    line(out, b'%', pairs.len().to_string().as_bytes());
                } else {
                    line(out, b'*', (pairs.len() * 2).to_string().as_bytes());
                }
                for (k, v) in pairs {
                    k.encode(resp3, out);
                    v.encode(resp3, out);
                }
            }
        }
    }
}

fn line(out: &mut Vec<u8>, kind: u8, body: &[u8]) {
    out.push(kind);
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Vec<Vec<Vec<u8>>> {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(req) = parse(&mut buf, 1 << 20).unwrap() {
            out.push(req.into_iter().map(|b| b.to_vec()).collect());
        }
        assert!(buf.is_empty(), "left over: {buf:?}");
        out
    }

    #[test]
    fn pipelined_arrays_and_inline_requests() {
        let got = parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\nPING\r\nset \"a b\" 'c'\n");
        assert_eq!(got[0], [b"GET".to_vec(), b"k".to_vec()]);
        assert_eq!(got[1], [b"SET".to_vec(), b"k".to_vec(), b"a\r\nb".to_vec()], "binary-safe values");
        assert_eq!(got[2], [b"PING".to_vec()]);
        assert_eq!(got[3], [b"set".to_vec(), b"a b".to_vec(), b"c".to_vec()]);
    }

    #[test]
    fn partial_input_waits_and_bad_input_is_an_error() {
        let full = b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n";
        for cut in 1..full.len() {
            let mut buf = BytesMut::from(&full[..cut]);
            assert_eq!(parse(&mut buf, 1024).unwrap(), None, "cut at {cut}");
        }
        for bad in [&b"*1\r\n:3\r\n"[..], b"*1\r\n$-5\r\n", b"*x\r\n", b"*1\r\n$3\r\nabcd\r\n", b"*1\r\n$2000\r\n"] {
            assert!(parse(&mut BytesMut::from(bad), 1024).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn replies_in_both_versions() {
        let r = Reply::Array(vec![Reply::Nil, Reply::Int(3), Reply::Map(vec![(Reply::text("k"), Reply::OK)])]);
        let (mut two, mut three) = (Vec::new(), Vec::new());
        r.encode(false, &mut two);
        r.encode(true, &mut three);
        assert_eq!(two, b"*3\r\n$-1\r\n:3\r\n*2\r\n$1\r\nk\r\n+OK\r\n");
        assert_eq!(three, b"*3\r\n_\r\n:3\r\n%1\r\n$1\r\nk\r\n+OK\r\n");
    }
}
