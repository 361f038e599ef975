//! Requests to URLs that callers chose (an export's `webhook_url`), made safe against
//! server-side request forgery.
//!
//! - A URL is `http` or `https`, has a host, and carries no `user:pass@` (it would be sent
//!   as Basic credentials). [`check_url`] says so when the URL is accepted, naming the
//!   problem.
//! - Its destination must not be an internal address — loopback, private, link-local (the
//!   cloud metadata service at 169.254.169.254 is one), carrier-grade NAT, unspecified,
//!   multicast, or their IPv6 forms — unless `outbound.allow_private` is set (local
//!   development). IP literals in any spelling (`0x7f.1`, `2130706433`, `[::ffff:7f00:1]`)
//!   are parsed as the URL standard does, then checked; host names are checked on every
//!   connection, after DNS resolution, by the [`client`]'s resolver, so a name that
//!   resolves (or later re-resolves) to an internal address is refused too.
//! - Redirects are not followed (a redirect could lead anywhere).
//! - A failure is recorded as a short category ([`failure_category`]), never as the raw
//!   error text, so the outcome of a request does not map a private network.

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// `outbound:` in the configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundConfig {
    /// Let caller-chosen URLs reach loopback, private and link-local addresses. Off by
    /// default; turn it on for local development (a webhook receiver on localhost).
    pub allow_private: bool,
}

/// Why a destination is refused (the category stored with a failed request).
pub const NOT_ALLOWED: &str = "destination not allowed (an internal address; see outbound.allow_private)";

/// Checks a caller-supplied URL: http(s), a host, no credentials, and no internal IP
/// literal unless `allow_private`. Returns the parsed URL, or why not.
pub fn check_url(raw: &str, allow_private: bool) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("not an absolute URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials (user:password@)".into());
    }
    let ip = match url.host() {
        None => return Err("must have a host".into()),
        Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        Some(url::Host::Domain(d)) if is_localhost(d) => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        Some(url::Host::Domain(_)) => None,
    };
    if let Some(ip) = ip
        && !allow_private
        && is_internal(ip)
    {
        return Err(NOT_ALLOWED.into());
    }
    Ok(url)
}

/// `localhost` and its subdomains (RFC 6761), with or without the root's trailing dot.
fn is_localhost(domain: &str) -> bool {
    let d = domain.strip_suffix('.').unwrap_or(domain).to_ascii_lowercase();
    d == "localhost" || d.ends_with(".localhost")
}

/// True for addresses a caller-chosen request must not reach.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => internal_v4(v4),
            None => internal_v6(v6),
        },
    }
}

fn internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT, 100.64.0.0/10
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || a >= 240 // reserved
}

fn internal_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local, fc00::/7
        || (first & 0xffc0) == 0xfe80 // link-local, fe80::/10
        || (first == 0x64 && ip.segments()[1] == 0xff9b) // NAT64 of any IPv4
        || (first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
}

/// Resolves host names and drops internal addresses (all of them refused: an error).
struct Guarded {
    allow_private: bool,
}

impl Resolve for Guarded {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found.into_iter().filter(|a| allow_private || !is_internal(a.ip())).collect();
            if allowed.is_empty() {
                return Err(Box::new(Refused) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The resolver's refusal, recognised by [`failure_category`].
#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(NOT_ALLOWED)
    }
}

impl std::error::Error for Refused {}

/// An HTTP client for caller-chosen URLs: every resolved address checked, no redirects,
/// `timeout` for the whole request.
pub fn client(allow_private: bool, timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(Guarded { allow_private }))
        .user_agent(concat!("hearth/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client builds with static settings")
}

/// A short, stable description of a failed request, safe to store and show.
pub fn failure_category(e: &reqwest::Error) -> &'static str {
    // The refusal travels up through hyper's and std's wrappers; `io::Error` hides its
    // inner error from `source()`, so look through it too.
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.downcast_ref::<Refused>().is_some() {
            return NOT_ALLOWED;
        }
        source = match s.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => s.source(),
        };
    }
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_redirect() {
        "redirect not followed"
    } else {
        "request failed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_destinations_in_any_spelling_are_refused() {
        for bad in [
            "http://127.0.0.1:8080/x",
            "http://localhost/x",
            "http://api.localhost/x",
            "http://LOCALHOST./x",
            "http://0x7f.1/",
            "http://2130706433/",
            "http://017700000001/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
        ] {
            assert_eq!(check_url(bad, false).unwrap_err(), NOT_ALLOWED, "{bad}");
            assert!(check_url(bad, true).is_ok(), "{bad} is allowed with allow_private");
        }
    }

    #[test]
    fn only_plain_public_http_urls_pass() {
        assert!(check_url("https://hooks.example.com/a?b=c", false).is_ok());
        assert!(check_url("http://93.184.216.34/", false).is_ok());
        assert!(check_url("https://user:pw@example.com/", false).unwrap_err().contains("credentials"));
        assert!(check_url("https://user@example.com/", true).unwrap_err().contains("credentials"));
        assert!(check_url("ftp://example.com/", false).unwrap_err().contains("http"));
        assert!(check_url("file:///etc/passwd", true).is_err());
        assert!(check_url("example.com/hook", false).unwrap_err().contains("absolute"));
    }

    #[tokio::test]
    async fn names_that_resolve_inside_are_refused_at_connect_time() {
        // `localhost` resolves to loopback: the resolver refuses it, whatever check_url
        // said earlier (DNS may change between the check and the request).
        let c = client(false, Duration::from_secs(5));
        let e = c.get("http://localhost:9/").send().await.unwrap_err();
        assert_eq!(failure_category(&e), NOT_ALLOWED);
        // With allow_private, the same request gets as far as the connection.
        let c = client(true, Duration::from_secs(5));
        let e = c.get("http://localhost:9/").send().await.unwrap_err();
        assert_eq!(failure_category(&e), "could not connect");
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:1/\r\nContent-Length: 0\r\n\r\n").await;
        });
        let r = client(true, Duration::from_secs(5)).get(format!("http://{addr}/")).send().await.unwrap();
        assert_eq!(r.status(), 307, "the redirect is returned, not followed");
    }
}
