//! Email templates: `templates/notifications/<name>/subject.txt`, `body.txt` and optional
//! `body.html`, rendered with minijinja in strict mode (an undefined variable is an error,
//! never an empty string) and HTML auto-escaping for `body.html`.
//!
//! Rendering happens at send time so that a missing template or variable is a 400 to the
//! sender, not a broken email found later by a job.

use super::error::NotifyError;
use super::model::SendRequest;
use minijinja::{Environment, ErrorKind, UndefinedBehavior, Value};
use std::path::{Path, PathBuf};

/// A rendered email body: subject, text part and optional HTML part.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedParts {
    /// One-line subject.
    pub subject: String,
    /// Plain-text part.
    pub text: String,
    /// HTML part.
    pub html: Option<String>,
}

/// Loads and renders templates from one directory.
pub struct Templates {
    env: Environment<'static>,
    dir: PathBuf,
}

/// True for a safe template name: 1 to 64 of `[A-Za-z0-9_-]` (no path separators).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Templates {
    /// Templates under `dir` (loaded lazily, then cached).
    pub fn new(dir: &Path) -> Templates {
        let mut env = Environment::new();
        env.set_loader(minijinja::path_loader(dir));
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        Templates { env, dir: dir.to_path_buf() }
    }

    /// Renders the email for `req`: from its template when it names one, otherwise the
    /// title as subject and the message plus the action link as text.
    pub fn render(&self, req: &SendRequest) -> Result<RenderedParts, NotifyError> {
        let Some(name) = req.template.as_deref() else {
            let mut text = req.message.clone();
            if let Some(url) = &req.action_url {
                if !text.is_empty() {
                    text.push_str("\n\n");
                }
                match &req.action_label {
                    Some(label) => text.push_str(&format!("{label}: {url}")),
                    None => text.push_str(url),
                }
                text.push('\n');
            }
            return Ok(RenderedParts { subject: one_line(&req.title), text, html: None });
        };
        if !valid_name(name) {
            return Err(NotifyError::invalid("template", "must be 1 to 64 letters, digits, '_' or '-'"));
        }
        let ctx = context(req)?;
        let subject = self.render_file(name, "subject.txt", &ctx, true)?.unwrap_or_default();
        let text = self.render_file(name, "body.txt", &ctx, true)?.unwrap_or_default();
        let html = self.render_file(name, "body.html", &ctx, false)?;
        if let Some(h) = &html {
            // Whatever the key, a value rendered into a link must be a safe link.
            super::links::check_rendered_html(h, req.data.as_ref())?;
        }
        Ok(RenderedParts { subject: one_line(&subject), text, html })
    }

    fn render_file(&self, name: &str, file: &str, ctx: &Value, required: bool) -> Result<Option<String>, NotifyError> {
        let path = format!("{name}/{file}");
        let tmpl = match self.env.get_template(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::TemplateNotFound => {
                if required {
                    return Err(NotifyError::invalid(
                        "template",
                        format!("no template '{name}': {} does not exist", self.dir.join(&path).display()),
                    ));
                }
                return Ok(None);
            }
            Err(e) => return Err(NotifyError::invalid("template", format!("template {path} is invalid: {e}"))),
        };
        match tmpl.render(ctx) {
            Ok(out) => Ok(Some(out)),
            Err(e) => {
                let line = e.line().map(|l| format!(" line {l}")).unwrap_or_default();
                let detail = e.detail().map(|d| format!(": {d}")).unwrap_or_default();
                // Name the variable when a top-level one is missing (guarded optional
                // variables such as `{% if x is defined %}` render fine and never get here).
                let mut missing: Vec<String> = tmpl
                    .undeclared_variables(false)
                    .into_iter()
                    .filter(|v| ctx.get_attr(v).map(|x| x.is_undefined()).unwrap_or(true) && !self.env.globals().any(|(g, _)| g == v))
                    .collect();
                missing.sort();
                let field = match (e.kind(), missing.first()) {
                    (ErrorKind::UndefinedError, Some(m)) => format!("data.{m}"),
                    _ => "data".to_string(),
                };
                Err(NotifyError::invalid(field, format!("template {path}{line} failed: {}{detail}", e.kind())))
            }
        }
    }
}

/// The template context: the notification's own fields, overridden by `data`'s keys.
fn context(req: &SendRequest) -> Result<Value, NotifyError> {
    let mut map = serde_json::Map::new();
    map.insert("title".into(), req.title.clone().into());
    map.insert("message".into(), req.message.clone().into());
    map.insert("user_id".into(), req.user_id.clone().into());
    map.insert("type".into(), req.kind.as_str().into());
    map.insert("action_url".into(), req.action_url.clone().into());
    map.insert("action_label".into(), req.action_label.clone().into());
    match &req.data {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::Object(data)) => {
            for (k, v) in data {
                map.insert(k.clone(), v.clone());
            }
        }
        Some(_) => return Err(NotifyError::invalid("data", "must be a JSON object")),
    }
    Ok(Value::from_serialize(&map))
}

/// Collapses a rendered subject to one trimmed line (no header injection via newlines).
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::model::NotificationKind;

    fn templates() -> (tempfile::TempDir, Templates) {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("hello");
        std::fs::create_dir_all(&t).unwrap();
        std::fs::write(t.join("subject.txt"), "Hi {{ name }}\n").unwrap();
        std::fs::write(t.join("body.txt"), "Hello {{ name }}, {{ message }}").unwrap();
        std::fs::write(t.join("body.html"), "<p>Hello {{ name }}</p>").unwrap();
        let tpl = Templates::new(dir.path());
        (dir, tpl)
    }

    fn req(template: Option<&str>, data: serde_json::Value) -> SendRequest {
        let mut r = SendRequest::new(NotificationKind::Info, "T", "msg", "u1");
        r.template = template.map(str::to_string);
        r.data = Some(data);
        r
    }

    #[test]
    fn renders_with_escaping() {
        let (_d, t) = templates();
        let r = t.render(&req(Some("hello"), serde_json::json!({"name": "<b>Ann</b>"}))).unwrap();
        assert_eq!(r.subject, "Hi <b>Ann</b>");
        assert_eq!(r.text, "Hello <b>Ann</b>, msg");
        assert_eq!(r.html.as_deref(), Some("<p>Hello &lt;b&gt;Ann&lt;&#x2f;b&gt;</p>"));
    }

    #[test]
    fn missing_variable_and_template_are_named() {
        let (_d, t) = templates();
        let e = t.render(&req(Some("hello"), serde_json::json!({}))).unwrap_err();
        assert!(matches!(&e, NotifyError::Invalid { field, .. } if field == "data.name"), "{e}");
        let e = t.render(&req(Some("nope"), serde_json::json!({}))).unwrap_err();
        assert!(matches!(&e, NotifyError::Invalid { field, .. } if field == "template"), "{e}");
        let e = t.render(&req(Some("../etc"), serde_json::json!({}))).unwrap_err();
        assert!(matches!(&e, NotifyError::Invalid { field, .. } if field == "template"), "{e}");
    }

    #[test]
    fn nested_undefined_fails_in_strict_mode() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("deep");
        std::fs::create_dir_all(&t).unwrap();
        std::fs::write(t.join("subject.txt"), "S").unwrap();
        std::fs::write(t.join("body.txt"), "{{ order.total }}").unwrap();
        let tpl = Templates::new(dir.path());
        let e = tpl.render(&req(Some("deep"), serde_json::json!({"order": {}}))).unwrap_err();
        assert!(matches!(&e, NotifyError::Invalid { field, .. } if field == "data"), "{e}");
        let ok = tpl.render(&req(Some("deep"), serde_json::json!({"order": {"total": 5}}))).unwrap();
        assert_eq!(ok.text, "5");
        assert_eq!(ok.html, None);
    }

    #[test]
    fn shipped_export_ready_template_renders_and_guards_optional_variables() {
        let t = Templates::new(&Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/notifications"));
        let data = serde_json::json!({"filename": "a&b.pdf", "format": "pdf", "download_url": "https://h/d/1"});
        let r = t.render(&req(Some("export_ready"), data)).unwrap();
        assert_eq!(r.subject, "Your export a&b.pdf is ready");
        assert!(r.text.contains("PDF export \"a&b.pdf\"") && r.text.contains("https://h/d/1") && !r.text.contains("expires"), "{}", r.text);
        let html = r.html.unwrap();
        assert!(html.contains("<strong>a&amp;b.pdf</strong>") && !html.contains("expires"), "{html}");
        let e = t.render(&req(Some("export_ready"), serde_json::json!({"filename": "x", "format": "pdf"}))).unwrap_err();
        assert!(matches!(&e, NotifyError::Invalid { field, .. } if field == "data.download_url"), "{e}");
    }

    #[test]
    fn without_template_uses_title_message_and_link() {
        let (_d, t) = templates();
        let mut r = SendRequest::new(NotificationKind::Info, "Done\nnow", "Your file", "u1");
        r.action_url = Some("https://x/f/1".into());
        r.action_label = Some("View".into());
        let out = t.render(&r).unwrap();
        assert_eq!(out.subject, "Done now");
        assert_eq!(out.text, "Your file\n\nView: https://x/f/1\n");
    }
}
