//! What every fuzz target checks, in one place: bad input must come back as an error a
//! caller may receive (a 4xx naming the field), never as a panic or a 5xx.

use hearth::http::error::parse_json;
use hearth::{ApiError, ErrorCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Panics unless `e` is an answer to bad input: a 4xx, and for a validation error
/// (`invalid_field`) one that names a non-empty field.
pub fn assert_client_error(e: impl Into<ApiError>) {
    let e = e.into();
    let status = e.status();
    assert!((400..500).contains(&status), "bad input answered {status}: {e:?}");
    if e.code == ErrorCode::InvalidField {
        assert!(e.field.as_deref().is_some_and(|f| !f.is_empty()), "a validation error names no field: {e:?}");
    }
}

/// Parses a request body exactly as the HTTP layer does (`hearth::http::error::parse_json`);
/// a body that does not parse must be rejected with a client error.
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    match parse_json(bytes) {
        Ok(v) => Some(v),
        Err(e) => {
            assert_client_error(e);
            None
        }
    }
}

/// Checks that what a store decoded encodes again, and that encoding is stable from then
/// on: `encode(decode(encode(v))) == encode(v)`.
pub fn assert_stable_encoding<T: Serialize + DeserializeOwned>(v: &T) {
    use hearth::store::codec::{decode, encode};
    let once = encode(v).expect("a decoded value encodes again");
    let back: T = decode(&once).expect("what hearth encodes, it decodes");
    assert_eq!(encode(&back).expect("encodes"), once, "the encoding of a decoded value is not stable");
}
