//! Which links a notification may carry. A notification's `action_url` becomes a link in
//! feeds and emails, and template data is rendered into email HTML, so a `javascript:`,
//! `data:` or `vbscript:` URL there would be a script on the reader's side. Allowed:
//! `http`, `https`, `mailto` and relative URLs (no scheme).
//!
//! Checked when a notification is sent (400 naming the field):
//! - `action_url`;
//! - every string in `data` under a link-like key (`url`, `link`, `href` or a key ending
//!   in `_url`, `_link` or `href`, any case, at any depth, also inside arrays);
//! - every value that a template rendered into a link attribute of the HTML part (`href`,
//!   `src`, `action`, `formaction`, `xlink:href`), whatever its key.
//!
//! The scheme is read as a browser reads it (WHATWG URL parsing): leading and trailing
//! spaces and control characters are dropped, tabs and newlines anywhere are dropped, case
//! is ignored; in HTML, character references are decoded first. So `" JaVaScRiPt:"`,
//! `"java\tscript:"` and `javascript&colon;` are all `javascript:`. Anything before the
//! first `:` that is not an allowed scheme is refused, even if it is not a valid scheme.

use super::error::NotifyError;

/// The schemes a link may have (relative URLs have none and are allowed too).
pub const ALLOWED_SCHEMES: &[&str] = &["http", "https", "mailto"];

/// The scheme of `url` as a browser would parse it, lowercased; `None` for a relative URL.
pub fn scheme_of(url: &str) -> Option<String> {
    let cleaned: String = url.trim_matches(|c: char| c <= ' ').chars().filter(|c| !matches!(c, '\t' | '\n' | '\r')).collect();
    let end = cleaned.find([':', '/', '?', '#'])?;
    cleaned[end..].starts_with(':').then(|| cleaned[..end].to_lowercase())
}

/// Checks one link; 400 naming `field` when its scheme is not allowed.
pub fn check_link(field: &str, url: &str) -> Result<(), NotifyError> {
    match scheme_of(url) {
        Some(s) if !ALLOWED_SCHEMES.contains(&s.as_str()) => Err(NotifyError::invalid(
            field,
            format!("links may only be http, https, mailto or relative URLs, not '{}:'", s.escape_default()),
        )),
        _ => Ok(()),
    }
}

/// True for a key whose value is a link (`url`, `link`, `href`, `*_url`, `*_link`, `*href`).
pub fn link_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k == "url" || k == "link" || k.ends_with("_url") || k.ends_with("_link") || k.ends_with("href")
}

/// Checks every string under a link-like key of `data` (named `data.<path>`).
pub fn check_data(data: &serde_json::Value) -> Result<(), NotifyError> {
    walk(data, "data", false, &mut |path, s| check_link(path, s))
}

/// Calls `f(path, string)` for the strings of `v` that sit under a link-like key (`link`),
/// depth first.
fn walk(
    v: &serde_json::Value,
    path: &str,
    link: bool,
    f: &mut impl FnMut(&str, &str) -> Result<(), NotifyError>,
) -> Result<(), NotifyError> {
    match v {
        serde_json::Value::String(s) if link => f(path, s),
        serde_json::Value::Object(map) => map.iter().try_for_each(|(k, v)| walk(v, &format!("{path}.{k}"), link || link_key(k), f)),
        serde_json::Value::Array(items) => items.iter().enumerate().try_for_each(|(i, v)| walk(v, &format!("{path}[{i}]"), link, f)),
        _ => Ok(()),
    }
}

/// Attributes whose value a browser follows or loads.
const LINK_ATTRIBUTES: &[&str] = &["href", "src", "action", "formaction", "xlink:href"];

/// Checks the link attributes of rendered email HTML. A bad link is blamed on the `data`
/// string it came from when one matches (any key), else on `template`.
pub fn check_rendered_html(html: &str, data: Option<&serde_json::Value>) -> Result<(), NotifyError> {
    for value in link_attributes(html) {
        let url = decode_entities(&value);
        if check_link("", &url).is_ok() {
            continue;
        }
        let mut field = String::from("template");
        if let Some(d) = data {
            let _ = walk(d, "data", true, &mut |path, s| {
                if url.contains(s.trim()) && !s.trim().is_empty() && check_link("", s).is_err() {
                    field = path.to_string();
                }
                Ok(())
            });
        }
        return check_link(&field, &url);
    }
    Ok(())
}

/// The values of the link attributes in `html` (quoted or not), raw.
fn link_attributes(html: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let mut out = Vec::new();
    for attr in LINK_ATTRIBUTES {
        let mut from = 0;
        while let Some(pos) = lower[from..].find(attr) {
            let start = from + pos;
            from = start + attr.len();
            // A whole attribute name: preceded by whitespace, followed by `=`.
            if start == 0 || !bytes[start - 1].is_ascii_whitespace() {
                continue;
            }
            let rest = lower[from..].trim_start();
            let Some(after_eq) = rest.strip_prefix('=') else { continue };
            let value_start = lower.len() - after_eq.trim_start().len();
            let raw = &html[value_start..];
            let value = match raw.chars().next() {
                Some(q @ ('"' | '\'')) => raw[1..].split(q).next().unwrap_or(""),
                _ => raw.split(|c: char| c.is_ascii_whitespace() || c == '>').next().unwrap_or(""),
            };
            out.push(value.to_string());
        }
    }
    out
}

/// Decodes HTML character references as a browser does in an attribute value: numeric
/// ones and the named ones that can spell a scheme (`&colon;`, `&Tab;`, `&NewLine;`,
/// `&amp;`...).
fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let end = rest[1..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '#')).map(|e| e + 1).unwrap_or(rest.len());
        let name = &rest[1..end];
        let decoded = if let Some(num) = name.strip_prefix('#') {
            let n = match num.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => num.parse().ok(),
            };
            n.and_then(char::from_u32)
        } else {
            match name {
                "colon" => Some(':'),
                "Tab" => Some('\t'),
                "NewLine" => Some('\n'),
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "sol" => Some('/'),
                _ => None,
            }
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = rest[end..].strip_prefix(';').unwrap_or(&rest[end..]);
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_http_https_mailto_and_relative_links_pass() {
        for ok in
            ["https://x.test/a", "http://x", "mailto:a@b.c", "/api/exports/1/download", "page?a=b:c", "#top", "//cdn.test/x", "HTTPS://X"]
        {
            assert!(check_link("f", ok).is_ok(), "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            " JaVaScRiPt:alert(1)",
            "java\tscript:alert(1)",
            "java\nscript:x",
            "\u{1}javascript:x",
            "data:text/html,<script>",
            "vbscript:msgbox",
            "file:///etc/passwd",
            "java\u{0}script:x",
        ] {
            let e = check_link("action_url", bad).unwrap_err();
            assert!(matches!(&e, NotifyError::Invalid { field, .. } if field == "action_url"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn link_like_data_keys_are_checked_at_any_depth() {
        assert!(check_data(&json!({"download_url": "https://x", "note": "javascript:is just text here"})).is_ok());
        let e = check_data(&json!({"order": {"items": [{"Details_Link": "vbscript:x"}]}})).unwrap_err();
        assert!(matches!(&e, NotifyError::Invalid { field, .. } if field == "data.order.items[0].Details_Link"), "{e}");
        let e = check_data(&json!({"links": {"href": ["https://ok", "data:x"]}})).unwrap_err();
        assert!(matches!(&e, NotifyError::Invalid { field, .. } if field == "data.links.href[1]"), "{e}");
    }

    #[test]
    fn rendered_links_are_checked_whatever_their_key() {
        let data = json!({"target": "javascript:alert(1)"});
        let e = check_rendered_html(r#"<p><a class="x" href="javascript:alert(1)">go</a></p>"#, Some(&data)).unwrap_err();
        assert!(matches!(&e, NotifyError::Invalid { field, .. } if field == "data.target"), "{e}");
        let e = check_rendered_html("<a HREF = 'java&#x73;cript&colon;x'>go</a>", None).unwrap_err();
        assert!(matches!(&e, NotifyError::Invalid { field, .. } if field == "template"), "{e}");
        assert!(check_rendered_html("<img src=https://x/y.png><a href=\"/rel\">r</a> data-href=javascript:", None).is_ok());
    }
}
