//! The search filter parser (`filters` of `POST /api/search`) and its evaluation against
//! document metadata. Input: a JSON array `[filters, metadata]` (or a lone filters object,
//! matched against itself). Parsing must succeed or fail with a 400 naming a `filters.`
//! field; a parsed filter must evaluate against any metadata without panicking.

#![no_main]

use hearth::search::filter::{Filter, parse_date};
use hearth_fuzz::assert_client_error;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

/// Every string in `v`, for the date parser.
fn strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(m) => m.iter().for_each(|(k, x)| {
            out.push(k);
            strings(x, out)
        }),
        _ => {}
    }
}

fn check(filters: &Map<String, Value>, metadata: &Map<String, Value>) {
    match Filter::parse(filters) {
        Ok(filter) => {
            let _ = filter.matches(metadata);
            let _ = filter.matches(filters);
        }
        Err(e) => {
            let e: hearth::ApiError = e.into();
            assert!(e.field.as_deref().is_some_and(|f| f.starts_with("filters")), "filter error outside filters: {e:?}");
            assert_client_error(e);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<Value>(data) else { return };
    let mut all = Vec::new();
    strings(&v, &mut all);
    for s in all {
        let _ = parse_date(s);
    }
    match &v {
        Value::Array(pair) => {
            if let [Value::Object(f), Value::Object(m)] = pair.as_slice() {
                check(f, m);
            }
        }
        Value::Object(f) => check(f, f),
        _ => {}
    }
});
