//! The payload of an event, built only when someone reads it as JSON.
//!
//! A module publishes either JSON ([`EventData::from`] a `Value`) or the typed value it
//! already holds ([`EventData::of`], e.g. a `Job`). Subscribers that know the type read it
//! directly with [`EventData::detail`] — the job event stream builds its small summary
//! from the `Job` without any JSON — and every other subscriber reads the JSON through
//! [`EventData::json`] (or `Deref`), which serialises the value once, on first read, and
//! shares it between all subscribers of the event. So a busy queue watched only by the
//! job event stream never serialises whole jobs (payloads, results, error lists).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::any::Any;
use std::fmt;
use std::sync::{Arc, OnceLock};

/// A typed event payload that can be turned into JSON.
trait Detail: Any + Send + Sync {
    fn to_json(&self) -> Value;
    fn as_any(&self) -> &dyn Any;
}

impl<T: Serialize + Any + Send + Sync> Detail for T {
    fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// An event's payload: JSON, or a typed value whose JSON is built on first read.
#[derive(Clone, Default)]
pub struct EventData {
    json: OnceLock<Value>,
    detail: Option<Arc<dyn Detail>>,
}

impl EventData {
    /// A payload carrying `value` itself; its JSON (`serde::Serialize`) is built when a
    /// subscriber first asks for it.
    pub fn of<T: Serialize + Any + Send + Sync>(value: T) -> EventData {
        EventData { json: OnceLock::new(), detail: Some(Arc::new(value)) }
    }

    /// The typed value, when the publisher gave one of type `T` (never for events relayed
    /// from another node, which arrive as JSON).
    pub fn detail<T: Any>(&self) -> Option<&T> {
        self.detail.as_deref()?.as_any().downcast_ref()
    }

    /// The payload as JSON (built once, on the first call, when published typed).
    pub fn json(&self) -> &Value {
        self.json.get_or_init(|| self.detail.as_deref().map(|d| d.to_json()).unwrap_or_default())
    }
}

impl From<Value> for EventData {
    fn from(v: Value) -> EventData {
        EventData { json: OnceLock::from(v), detail: None }
    }
}

/// Read as JSON: `event.data["name"]`, `event.data.get("version")`.
impl std::ops::Deref for EventData {
    type Target = Value;
    fn deref(&self) -> &Value {
        self.json()
    }
}

impl fmt::Debug for EventData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.json(), f)
    }
}

impl Serialize for EventData {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for EventData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(EventData::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Thing {
        n: u32,
    }

    #[test]
    fn a_typed_payload_is_read_typed_or_as_json() {
        let d = EventData::of(Thing { n: 7 });
        assert_eq!(d.detail::<Thing>().map(|t| t.n), Some(7));
        assert!(d.detail::<String>().is_none(), "another type is not found");
        assert_eq!(d["n"], 7);
        let copy = d.clone();
        assert_eq!(serde_json::to_string(&copy).unwrap(), r#"{"n":7}"#);
        let back: EventData = serde_json::from_str(r#"{"n":7}"#).unwrap();
        assert_eq!(back.json(), d.json());
        assert!(back.detail::<Thing>().is_none(), "relayed events carry JSON only");
    }
}
