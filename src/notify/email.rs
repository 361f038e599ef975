//! The email channel: lettre over SMTP, sent by the `notify.email` job.
//!
//! `SMTP_URL` (config `notification.channels.email.smtp_url`) selects the relay:
//! - `smtp://user:pass@host:587` — STARTTLS, required (the default for `smtp://`);
//! - `smtps://user:pass@host:465` — implicit TLS;
//! - `smtp://host:25?tls=opportunistic` — STARTTLS when the server offers it;
//! - `smtp://127.0.0.1:2525?tls=none` — plain SMTP, for local relays and tests only.
//!
//! `?timeout=SECONDS` sets the connection/command timeout (default 30);
//! `?ca_file=/path/ca.pem` trusts an extra root certificate (a private relay's own CA) on
//! top of the built-in web PKI roots. User and password are percent-decoded. SendGrid, SES and Mailgun all offer SMTP relays, so no vendor SDK
//! is needed (`provider: sendgrid` + `api_key` is a shortcut for SendGrid's relay).

use super::channel::{DeliveryError, DeliveryInput, DeliveryMode, NotificationChannel};
use super::config::EmailConfig;
use super::error::NotifyError;
use super::model::Preferences;
use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain text (local relays and tests).
    None,
    /// STARTTLS required.
    StartTls,
    /// STARTTLS when offered, plain otherwise.
    Opportunistic,
    /// TLS from the first byte (`smtps://`).
    Implicit,
}

/// A parsed `SMTP_URL`.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    /// Relay host.
    pub host: String,
    /// Relay port.
    pub port: u16,
    /// Transport security.
    pub tls: TlsMode,
    /// User and password, when the URL has them.
    pub credentials: Option<(String, String)>,
    /// Connection and command timeout.
    pub timeout: Duration,
    /// Extra trusted root certificate (PEM), for relays with a private CA.
    pub ca_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("user", &self.credentials.as_ref().map(|c| &c.0))
            .field("timeout", &self.timeout)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl SmtpSettings {
    /// Parses an `SMTP_URL` (see the module docs). The error never contains the password.
    pub fn parse(url: &str) -> Result<SmtpSettings, String> {
        let u = reqwest::Url::parse(url).map_err(|e| format!("SMTP_URL is not a URL: {e}"))?;
        let mut tls = match u.scheme() {
            "smtp" => TlsMode::StartTls,
            "smtps" => TlsMode::Implicit,
            other => return Err(format!("SMTP_URL scheme must be smtp or smtps, not '{other}'")),
        };
        let host = u.host_str().filter(|h| !h.is_empty()).ok_or("SMTP_URL has no host")?.trim_matches(['[', ']']).to_string();
        let mut timeout = Duration::from_secs(30);
        let mut ca_file = None;
        for (k, v) in u.query_pairs() {
            match (k.as_ref(), v.as_ref()) {
                ("tls", "none") if tls != TlsMode::Implicit => tls = TlsMode::None,
                ("tls", "starttls" | "required") if tls != TlsMode::Implicit => tls = TlsMode::StartTls,
                ("tls", "opportunistic") if tls != TlsMode::Implicit => tls = TlsMode::Opportunistic,
                ("tls", "implicit" | "wrapper") => tls = TlsMode::Implicit,
                ("tls", other) => {
                    return Err(format!("SMTP_URL: unknown or conflicting tls={other} (none, starttls, opportunistic, implicit)"));
                }
                ("timeout", s) => {
                    let secs: u64 = s.parse().map_err(|_| "SMTP_URL: timeout must be whole seconds".to_string())?;
                    timeout = Duration::from_secs(secs.max(1));
                }
                ("ca_file", p) if !p.is_empty() => ca_file = Some(std::path::PathBuf::from(p)),
                (other, _) => return Err(format!("SMTP_URL: unknown or empty parameter '{other}' (tls, timeout, ca_file)")),
            }
        }
        let port = u.port().unwrap_or(match tls {
            TlsMode::Implicit => 465,
            TlsMode::StartTls => 587,
            TlsMode::None | TlsMode::Opportunistic => 25,
        });
        let credentials =
            if u.username().is_empty() { None } else { Some((percent_decode(u.username()), percent_decode(u.password().unwrap_or("")))) };
        Ok(SmtpSettings { host, port, tls, credentials, timeout, ca_file })
    }

    /// Settings from the email config: `smtp_url`, or the SendGrid relay shortcut.
    pub fn from_config(cfg: &EmailConfig) -> Result<Option<SmtpSettings>, String> {
        if let Some(url) = cfg.smtp_url.as_deref().filter(|u| !u.trim().is_empty()) {
            return SmtpSettings::parse(url.trim()).map(Some);
        }
        match (cfg.provider.as_str(), &cfg.api_key) {
            ("sendgrid", Some(key)) => Ok(Some(SmtpSettings {
                host: "smtp.sendgrid.net".into(),
                port: 587,
                tls: TlsMode::StartTls,
                credentials: Some(("apikey".into(), key.clone())),
                timeout: Duration::from_secs(30),
                ca_file: None,
            })),
            ("sendgrid", None) => Err("provider sendgrid needs api_key (or set SMTP_URL)".into()),
            ("smtp", _) => Ok(None),
            (other, _) => {
                Err(format!("unknown email provider '{other}' (smtp or sendgrid; SES and Mailgun: use their SMTP relay in SMTP_URL)"))
            }
        }
    }

    fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let params = || -> Result<TlsParameters, String> {
            let mut b = TlsParameters::builder(self.host.clone());
            if let Some(path) = &self.ca_file {
                let pem = std::fs::read(path).map_err(|e| format!("SMTP_URL ca_file {}: {e}", path.display()))?;
                let cert = Certificate::from_pem(&pem).map_err(|e| format!("SMTP_URL ca_file {}: {e}", path.display()))?;
                b = b.add_root_certificate(cert);
            }
            b.build().map_err(|e| format!("TLS setup for {}: {e}", self.host))
        };
        let tls = match self.tls {
            TlsMode::None => Tls::None,
            TlsMode::StartTls => Tls::Required(params()?),
            TlsMode::Opportunistic => Tls::Opportunistic(params()?),
            TlsMode::Implicit => Tls::Wrapper(params()?),
        };
        let mut b =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.host.clone()).port(self.port).tls(tls).timeout(Some(self.timeout));
        if let Some((u, p)) = &self.credentials {
            b = b.credentials(Credentials::new(u.clone(), p.clone()));
        }
        Ok(b.build())
    }
}

/// The email channel. Unconfigured (no `SMTP_URL`) or misconfigured, it refuses sends
/// with 503 and the reason instead of accepting mail it cannot deliver.
pub struct EmailChannel {
    state: Result<(AsyncSmtpTransport<Tokio1Executor>, Mailbox), String>,
    max_attempts: u32,
    retry_base_ms: u64,
}

impl EmailChannel {
    /// Builds the channel from config; problems are kept and reported on use.
    pub fn new(cfg: &EmailConfig) -> EmailChannel {
        let state = (|| {
            let settings =
                SmtpSettings::from_config(cfg)?.ok_or_else(|| "the email channel is not configured: set SMTP_URL".to_string())?;
            let from: Mailbox = cfg.from.parse().map_err(|e| format!("EMAIL_FROM '{}' is not a valid address: {e}", cfg.from))?;
            Ok((settings.transport()?, from))
        })();
        if let Err(e) = &state
            && cfg.smtp_url.is_some()
        {
            tracing::error!(error = %e, "email channel disabled");
        }
        EmailChannel { state, max_attempts: cfg.max_attempts.max(1), retry_base_ms: cfg.retry_base_ms }
    }
}

/// True when `addr` is a syntactically valid email address.
pub fn valid_address(addr: &str) -> bool {
    addr.parse::<lettre::Address>().is_ok()
}

#[async_trait]
impl NotificationChannel for EmailChannel {
    fn name(&self) -> &str {
        super::model::EMAIL
    }

    fn mode(&self) -> DeliveryMode {
        DeliveryMode::Queued { max_attempts: self.max_attempts, retry_base_ms: self.retry_base_ms }
    }

    fn check(&self, prefs: &Preferences) -> Result<(), NotifyError> {
        if let Err(e) = &self.state {
            return Err(NotifyError::Unavailable(e.clone()));
        }
        if prefs.email.is_none() {
            return Err(NotifyError::invalid(
                "channels",
                format!("user '{}' has no email address: set it with PUT /api/notifications/preferences/{{user_id}}", prefs.user_id),
            ));
        }
        Ok(())
    }

    async fn deliver(&self, input: DeliveryInput<'_>) -> Result<(), DeliveryError> {
        let (transport, from) = self.state.as_ref().map_err(|e| DeliveryError::Fatal(e.clone()))?;
        let mail = input.email.ok_or_else(|| DeliveryError::Fatal("no rendered email stored for this notification".into()))?;
        let to: Mailbox = mail.to.parse().map_err(|e| DeliveryError::Fatal(format!("recipient '{}': {e}", mail.to)))?;
        let builder = Message::builder().from(from.clone()).to(to).subject(mail.subject.clone());
        let message = match &mail.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(mail.text.clone(), html.clone())),
            None => builder.header(ContentType::TEXT_PLAIN).body(mail.text.clone()),
        }
        .map_err(|e| DeliveryError::Fatal(format!("cannot build the message: {e}")))?;
        match transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(DeliveryError::Fatal(format!("SMTP rejected the message: {e}"))),
            Err(e) => Err(DeliveryError::Retry(format!("SMTP: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let s = SmtpSettings::parse("smtp://us%40er:p%3Ass@mail.example.com:587").unwrap();
        assert_eq!((s.host.as_str(), s.port, s.tls), ("mail.example.com", 587, TlsMode::StartTls));
        assert_eq!(s.credentials, Some(("us@er".into(), "p:ss".into())));
        let s = SmtpSettings::parse("smtps://mail.example.com").unwrap();
        assert_eq!((s.port, s.tls), (465, TlsMode::Implicit));
        let s = SmtpSettings::parse("smtp://127.0.0.1:2525?tls=none&timeout=5").unwrap();
        assert_eq!((s.port, s.tls, s.timeout), (2525, TlsMode::None, Duration::from_secs(5)));
        assert_eq!(s.credentials, None);
        assert_eq!(SmtpSettings::parse("smtp://h?tls=opportunistic").unwrap().tls, TlsMode::Opportunistic);
        assert!(SmtpSettings::parse("http://h").is_err());
        assert!(SmtpSettings::parse("smtp://h?tls=maybe").is_err());
        assert!(SmtpSettings::parse("smtp://h?foo=1").is_err());
        assert_eq!(SmtpSettings::parse("smtp://h?ca_file=/etc/ca.pem").unwrap().ca_file, Some("/etc/ca.pem".into()));
        assert!(SmtpSettings::parse("smtp://h?ca_file=").is_err());
        let e = SmtpSettings::parse("smtp://u:secret@h?tls=bad").unwrap_err();
        assert!(!e.contains("secret"));
        assert!(!format!("{:?}", SmtpSettings::parse("smtp://u:secret@h").unwrap()).contains("secret"));
    }

    #[test]
    fn validates_addresses() {
        assert!(valid_address("ann@example.com"));
        assert!(!valid_address("ann@"));
        assert!(!valid_address("not an address"));
    }
}
