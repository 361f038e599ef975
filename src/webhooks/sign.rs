//! Signing and sending one webhook request: the headers every hearth webhook carries and
//! the classification of its answer (see the module doc of [`super`]).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The signature header value for `body` sent at `timestamp`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Why a signed POST did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostError {
    /// Network error, timeout, 408, 429 or 5xx: try again later.
    Retry(String),
    /// Any other non-2xx answer: the receiver refused it for good.
    Rejected(String),
}

/// Sends one signed webhook request (the headers and retry classification described in
/// the module doc) and returns the 2xx status. Every hearth webhook goes through here.
pub async fn post_signed(
    client: &reqwest::Client,
    url: &str,
    event: &str,
    delivery_id: &str,
    secret: Option<&str>,
    body: Vec<u8>,
) -> Result<u16, PostError> {
    let ts = chrono::Utc::now().timestamp();
    let mut req = client
        .post(url)
        .header("content-type", "application/json")
        .header("x-hearth-event", event)
        .header("x-hearth-delivery", delivery_id)
        .header("x-hearth-timestamp", ts.to_string());
    if let Some(s) = secret.filter(|s| !s.is_empty()) {
        req = req.header("x-hearth-signature", signature(s, ts, &body));
    }
    match req.body(body).send().await {
        Ok(r) if r.status().is_success() => Ok(r.status().as_u16()),
        Ok(r) => {
            let st = r.status().as_u16();
            if r.status().is_redirection() {
                Err(PostError::Rejected(format!("receiver answered {st}; redirects are not followed")))
            } else if st == 408 || st == 429 || st >= 500 {
                Err(PostError::Retry(format!("receiver answered {st}")))
            } else {
                Err(PostError::Rejected(format!("receiver rejected the delivery with {st}")))
            }
        }
        // A category, not the error's text: it is stored in the delivery's record.
        Err(e) if crate::outbound::failure_category(&e) == crate::outbound::NOT_ALLOWED => {
            Err(PostError::Rejected(crate::outbound::NOT_ALLOWED.into()))
        }
        Err(e) => Err(PostError::Retry(crate::outbound::failure_category(&e).into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_of_timestamp_and_body() {
        // Reference computed independently with Python's hmac module.
        let sig = signature("s3cret", 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(sig, "sha256=1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940");
        assert_ne!(sig, signature("other", 1_700_000_000, br#"{"a":1}"#));
        assert_ne!(sig, signature("s3cret", 1_700_000_001, br#"{"a":1}"#));
    }
}
