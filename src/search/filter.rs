//! Metadata filters: parsed once per request, evaluated against a document's metadata
//! inside both retrievers (so filtering never empties a list that has matches).
//!
//! Syntax (`filters` object; every entry must hold):
//! - `"author": "John"` — equality (against an array value: any element equals);
//! - `"tag": ["a", "b"]` or `{"in": ["a", "b"]}` — one of;
//! - `{"eq": v}`, `{"ne": v}` — explicit equality / inequality;
//! - `{"gt"|"gte"|"lt"|"lte": bound}` — numeric range when the bounds are numbers, date
//!   range when they are dates (`2024-01-01` or RFC 3339); combinable.
//!
//! Keys may be dotted paths into nested metadata (`"author.name"`).

use super::error::SearchError;
use serde_json::{Map, Value};

/// A parsed filter: all clauses must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    clauses: Vec<(Vec<String>, Cond)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Cond {
    Eq(Value),
    Ne(Value),
    In(Vec<Value>),
    Num { lo: Option<(f64, bool)>, hi: Option<(f64, bool)> },
    Date { lo: Option<(i64, bool)>, hi: Option<(i64, bool)> },
}

impl Filter {
    /// Parses the `filters` object; errors name the field (`filters.<key>[.<op>]`).
    pub fn parse(filters: &Map<String, Value>) -> Result<Filter, SearchError> {
        let mut clauses = Vec::new();
        for (key, v) in filters {
            let field = format!("filters.{key}");
            if key.is_empty() || key.split('.').any(str::is_empty) {
                return Err(SearchError::invalid(field, "filter keys must be non-empty (dotted) metadata paths"));
            }
            let path: Vec<String> = key.split('.').map(String::from).collect();
            for c in parse_cond(&field, v)? {
                clauses.push((path.clone(), c));
            }
        }
        Ok(Filter { clauses })
    }

    /// True when there is nothing to check.
    pub fn is_empty(&self) -> bool {
        self.clauses.is_empty()
    }

    /// Whether `metadata` satisfies every clause.
    pub fn matches(&self, metadata: &Map<String, Value>) -> bool {
        self.clauses.iter().all(|(path, cond)| {
            let v = lookup(metadata, path);
            cond.matches(v)
        })
    }
}

fn lookup<'a>(m: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let mut cur = m.get(&path[0])?;
    for p in &path[1..] {
        cur = cur.as_object()?.get(p)?;
    }
    Some(cur)
}

fn parse_cond(field: &str, v: &Value) -> Result<Vec<Cond>, SearchError> {
    match v {
        Value::Array(items) => Ok(vec![Cond::In(scalars(field, items)?)]),
        Value::Object(ops) => {
            if ops.is_empty() {
                return Err(SearchError::invalid(field, "empty condition; use eq, ne, in, gt, gte, lt or lte"));
            }
            let mut out = Vec::new();
            let mut range: Vec<(&str, &Value)> = Vec::new();
            for (op, arg) in ops {
                let f = format!("{field}.{op}");
                match op.as_str() {
                    "eq" => out.push(Cond::Eq(scalar(&f, arg)?)),
                    "ne" => out.push(Cond::Ne(scalar(&f, arg)?)),
                    "in" => match arg {
                        Value::Array(items) => out.push(Cond::In(scalars(&f, items)?)),
                        _ => return Err(SearchError::invalid(f, "expected an array of values")),
                    },
                    "gt" | "gte" | "lt" | "lte" => range.push((op.as_str(), arg)),
                    _ => return Err(SearchError::invalid(f, "unknown operator; use eq, ne, in, gt, gte, lt or lte")),
                }
            }
            if !range.is_empty() {
                out.push(parse_range(field, &range)?);
            }
            Ok(out)
        }
        other => Ok(vec![Cond::Eq(scalar(field, other)?)]),
    }
}

fn scalar(field: &str, v: &Value) -> Result<Value, SearchError> {
    match v {
        Value::Array(_) | Value::Object(_) => Err(SearchError::invalid(field, "expected a string, number, boolean or null")),
        other => Ok(other.clone()),
    }
}

fn scalars(field: &str, items: &[Value]) -> Result<Vec<Value>, SearchError> {
    if items.is_empty() {
        return Err(SearchError::invalid(field, "one-of list must not be empty"));
    }
    items.iter().enumerate().map(|(i, v)| scalar(&format!("{field}[{i}]"), v)).collect()
}

fn parse_range(field: &str, ops: &[(&str, &Value)]) -> Result<Cond, SearchError> {
    let numeric = ops.iter().all(|(_, v)| v.is_number());
    if numeric {
        let (mut lo, mut hi) = (None, None);
        for (op, v) in ops {
            let x = v.as_f64().unwrap_or(f64::NAN);
            match *op {
                "gt" => lo = Some((x, false)),
                "gte" => lo = Some((x, true)),
                "lt" => hi = Some((x, false)),
                _ => hi = Some((x, true)),
            }
        }
        return Ok(Cond::Num { lo, hi });
    }
    let (mut lo, mut hi) = (None, None);
    for (op, v) in ops {
        let f = format!("{field}.{op}");
        let t = v
            .as_str()
            .and_then(parse_date)
            .ok_or_else(|| SearchError::invalid(&f, "range bounds must all be numbers or all be dates (YYYY-MM-DD or RFC 3339)"))?;
        match *op {
            "gt" => lo = Some((t, false)),
            "gte" => lo = Some((t, true)),
            "lt" => hi = Some((t, false)),
            _ => hi = Some((t, true)),
        }
    }
    Ok(Cond::Date { lo, hi })
}

/// Parses `YYYY-MM-DD` (midnight UTC) or an RFC 3339 timestamp to epoch milliseconds.
pub fn parse_date(s: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc().timestamp_millis())
}

fn in_range<T: PartialOrd + Copy>(x: T, lo: Option<(T, bool)>, hi: Option<(T, bool)>) -> bool {
    let lo_ok = lo.is_none_or(|(b, incl)| if incl { x >= b } else { x > b });
    let hi_ok = hi.is_none_or(|(b, incl)| if incl { x <= b } else { x < b });
    lo_ok && hi_ok
}

fn scalar_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

impl Cond {
    fn matches(&self, v: Option<&Value>) -> bool {
        // An array value matches when any element does (Qdrant's semantics).
        let values: Vec<&Value> = match v {
            Some(Value::Array(a)) => a.iter().collect(),
            Some(x) => vec![x],
            None => vec![],
        };
        match self {
            Cond::Eq(Value::Null) => values.is_empty() || values.iter().any(|x| x.is_null()),
            Cond::Eq(want) => values.iter().any(|x| scalar_eq(x, want)),
            Cond::Ne(want) => !values.iter().any(|x| scalar_eq(x, want)),
            Cond::In(set) => values.iter().any(|x| set.iter().any(|w| scalar_eq(x, w))),
            Cond::Num { lo, hi } => values.iter().any(|x| x.as_f64().is_some_and(|n| in_range(n, *lo, *hi))),
            Cond::Date { lo, hi } => values.iter().any(|x| x.as_str().and_then(parse_date).is_some_and(|t| in_range(t, *lo, *hi))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(v: Value) -> Result<Filter, SearchError> {
        Filter::parse(v.as_object().unwrap())
    }
    fn m(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn equality_one_of_ranges_and_dates() {
        let doc = m(json!({"author": "John", "tags": ["a", "b"], "year": 2021, "date": "2024-03-05", "x": {"y": 1}}));
        assert!(f(json!({"author": "John"})).unwrap().matches(&doc));
        assert!(!f(json!({"author": "Jane"})).unwrap().matches(&doc));
        assert!(f(json!({"tags": "b"})).unwrap().matches(&doc));
        assert!(f(json!({"author": ["Jane", "John"]})).unwrap().matches(&doc));
        assert!(f(json!({"tags": {"in": ["z", "a"]}})).unwrap().matches(&doc));
        assert!(f(json!({"year": {"gte": 2021, "lt": 2022}})).unwrap().matches(&doc));
        assert!(!f(json!({"year": {"gt": 2021}})).unwrap().matches(&doc));
        assert!(f(json!({"year": 2021.0})).unwrap().matches(&doc));
        assert!(f(json!({"date": {"gte": "2024-01-01", "lte": "2024-12-31T23:59:59Z"}})).unwrap().matches(&doc));
        assert!(!f(json!({"date": {"lt": "2024-03-05"}})).unwrap().matches(&doc));
        assert!(f(json!({"x.y": 1})).unwrap().matches(&doc));
        assert!(f(json!({"missing": null})).unwrap().matches(&doc));
        assert!(f(json!({"author": {"ne": "Jane"}})).unwrap().matches(&doc));
        assert!(!f(json!({"author": "John", "year": 1999})).unwrap().matches(&doc));
    }

    #[test]
    fn malformed_filters_name_the_field() {
        let field = |v: Value| match f(v) {
            Err(SearchError::Invalid { field, .. }) => field,
            other => panic!("expected invalid, got {other:?}"),
        };
        assert_eq!(field(json!({"year": {"between": [1, 2]}})), "filters.year.between");
        assert_eq!(field(json!({"year": {"gte": "yesterday"}})), "filters.year.gte");
        assert_eq!(field(json!({"tags": []})), "filters.tags");
        assert_eq!(field(json!({"tags": {"in": "a"}})), "filters.tags.in");
        assert_eq!(field(json!({"a": {}})), "filters.a");
        assert_eq!(field(json!({"a": [{"b": 1}]})), "filters.a[0]");
        assert_eq!(field(json!({"": 1})), "filters.");
    }
}
