//! The OpenAPI document's frame; paths and schemas come from the route files.
//!
//! Route files declare what their handler answers. What hearth's shared layers answer on
//! every route — the front door's 414/431, authentication's 401/403, the JSON body
//! extractor's 400/413/415, the stream cap's 429, a module's or backend's 503 — is added
//! here once by [`finish`], from the same facts the layers act on, so a generated client
//! knows every status a route can answer and no route file repeats them.

use crate::error::{ErrorBody, ErrorCode};
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, Content, InfoBuilder, OpenApi, OpenApiBuilder, Ref, RefOr, Response, SecurityRequirement};
use utoipa::{PartialSchema, ToSchema};

/// The document every router merges into.
pub fn base() -> OpenApi {
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("hearth")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some("Progress tracking, notifications, a durable job queue, a two-tier cache, document export and hybrid search in one binary."))
                .build(),
        )
        .build()
}

/// A string without control characters (what most of hearth's names and ids must be),
/// as a JSON Schema pattern.
pub const NO_CONTROL: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$";

/// A schema written as JSON (for `#[schema(schema_with = ...)]`, where the derive cannot
/// say it: constraints on the items of a list).
pub fn schema(json: serde_json::Value) -> RefOr<utoipa::openapi::Schema> {
    serde_json::from_value(json).expect("a valid schema")
}

/// Merges `with` (an object of schema keywords) into the schema at the JSON `pointer` of
/// the serialized document: how a constraint is stated that a route file cannot attach to
/// a type it does not own, or that depends on the configuration (limits). Panics when the
/// pointer names nothing, so a renamed type or field is caught by every test that starts
/// a server.
pub fn refine(doc: &mut serde_json::Value, pointer: &str, with: serde_json::Value) {
    let target = doc.pointer_mut(pointer).unwrap_or_else(|| panic!("openapi: nothing at {pointer} to refine"));
    let (Some(target), serde_json::Value::Object(with)) = (target.as_object_mut(), with) else {
        panic!("openapi: {pointer} is not a schema object")
    };
    target.extend(with);
}

/// Replaces the schema at `pointer` by `with` (e.g. `{}`: any JSON value).
pub fn replace(doc: &mut serde_json::Value, pointer: &str, with: serde_json::Value) {
    let target = doc.pointer_mut(pointer).unwrap_or_else(|| panic!("openapi: nothing at {pointer} to replace"));
    let description = target.get("description").cloned();
    *target = with;
    if let (Some(d), Some(t)) = (description, target.as_object_mut()) {
        t.entry("description").or_insert(d);
    }
}

/// As [`refine`], for the schema of the parameter `name` of the operation `method` `path`.
pub fn refine_param(doc: &mut serde_json::Value, path: &str, method: &str, name: &str, with: serde_json::Value) {
    let at = format!("/paths/{}/{method}/parameters", path.replace('~', "~0").replace('/', "~1"));
    let params = doc.pointer(&at).and_then(|p| p.as_array()).map(Vec::as_slice).unwrap_or_default();
    let i = params.iter().position(|p| p["name"] == name).unwrap_or_else(|| panic!("openapi: no parameter {name} in {method} {path}"));
    refine(doc, &format!("{at}/{i}/schema"), with);
}

/// Routes anyone may call, even when API keys are configured (see `http/mod.rs`).
const OPEN_PATHS: &[&str] = &["/healthz", "/readyz"];

/// A status a shared layer can answer, as a reusable response in `components/responses`.
struct Shared {
    status: &'static str,
    name: &'static str,
    description: &'static str,
}

const BAD_REQUEST: Shared = Shared {
    status: "400",
    name: "BadRequest",
    description: "Invalid request: a path or query parameter, or the body, fails validation (`invalid_field`, `invalid_query`, `malformed_json`, `bad_request`); `field` names the culprit",
};
const UNAUTHORIZED: Shared = Shared {
    status: "401",
    name: "Unauthorized",
    description: "No credential, or an unknown API key or invalid user token (`unauthorized`)",
};
const FORBIDDEN: Shared = Shared {
    status: "403",
    name: "Forbidden",
    description: "The credential does not allow this request: a read-only key writing, or a user token outside its own data (`forbidden`)",
};
const TOO_LARGE: Shared = Shared {
    status: "413",
    name: "PayloadTooLarge",
    description: "The body exceeds `server.body_limit` or an entity in it exceeds its configured limit (`payload_too_large`)",
};
const URI_TOO_LONG: Shared =
    Shared { status: "414", name: "UriTooLong", description: "Path and query exceed `server.max_uri_bytes` (`uri_too_long`)" };
const MEDIA_TYPE: Shared = Shared {
    status: "415",
    name: "UnsupportedMediaType",
    description: "The body is not sent as `Content-Type: application/json` (`unsupported_media_type`)",
};
const TOO_MANY_STREAMS: Shared = Shared {
    status: "429",
    name: "TooManyStreams",
    description: "The caller already holds `server.max_streams_per_caller` open streams (`too_many_streams`)",
};
const HEADERS_TOO_LARGE: Shared = Shared {
    status: "431",
    name: "HeadersTooLarge",
    description: "The request headers exceed `server.max_header_bytes` (`headers_too_large`)",
};
const UNAVAILABLE: Shared = Shared {
    status: "503",
    name: "Unavailable",
    description: "The module is disabled or not ready, or its storage or shared backend is unavailable; nothing was changed, retry later (`module_disabled`, `service_unavailable`, `storage_unavailable`, `backend_unavailable`)",
};

const ALL_SHARED: &[Shared] =
    &[BAD_REQUEST, UNAUTHORIZED, FORBIDDEN, TOO_LARGE, URI_TOO_LONG, MEDIA_TYPE, TOO_MANY_STREAMS, HEADERS_TOO_LARGE, UNAVAILABLE];

/// Completes the merged document: unique operation ids, the security scheme (required on
/// every route but the open ones when `auth_enabled`, i.e. API keys are configured; absent
/// otherwise, as the server then asks for nothing), the error body's code list, and on
/// each operation the statuses the shared layers can answer.
pub fn finish(mut api: OpenApi, auth_enabled: bool) -> OpenApi {
    unique_operation_ids(&mut api);
    let mut components = api.components.take().unwrap_or_else(|| ComponentsBuilder::new().build());
    components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
    components.schemas.insert(ErrorBody::name().into_owned(), error_body_schema());
    for s in ALL_SHARED {
        let content = Content::new(Some(Ref::from_schema_name(ErrorBody::name())));
        let mut response = Response::new(s.description);
        response.content.insert("application/json".into(), content);
        components.responses.insert(s.name.into(), RefOr::T(response));
    }
    api.components = Some(components);
    api.security = auth_enabled.then(|| vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
    for (path, item) in api.paths.paths.iter_mut() {
        for op in operations(item) {
            let open = OPEN_PATHS.contains(&path.as_str());
            if open && auth_enabled {
                // An empty list overrides the document's requirement: no credential needed.
                op.security = Some(Vec::new());
            }
            for shared in layer_responses(path, op, auth_enabled && !open) {
                op.responses.responses.entry(shared.status.into()).or_insert_with(|| RefOr::Ref(Ref::from_response_name(shared.name)));
            }
        }
    }
    api
}

/// The error body's schema, with `code` listed as the enum of every stable code.
fn error_body_schema() -> RefOr<utoipa::openapi::Schema> {
    let mut schema = serde_json::to_value(ErrorBody::schema()).expect("schema serializes");
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    schema["properties"]["error"]["properties"]["code"]["enum"] = serde_json::json!(codes);
    serde_json::from_value(schema).expect("schema deserializes")
}

/// What the layers in front of `op`'s handler can answer on `path`.
fn layer_responses(path: &str, op: &Operation, secured: bool) -> Vec<&'static Shared> {
    // The front door measures every request head (http/limits.rs).
    let mut out = vec![&URI_TOO_LONG, &HEADERS_TOO_LARGE];
    if secured {
        out.extend([&UNAUTHORIZED, &FORBIDDEN]);
    }
    let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
    if let Some(body) = &op.request_body {
        out.extend([&BAD_REQUEST, &TOO_LARGE]);
        if body.content.contains_key("application/json") {
            out.push(&MEDIA_TYPE);
        }
    } else if has_params {
        out.push(&BAD_REQUEST);
    }
    if super::auth::is_stream_route(path) {
        out.push(&TOO_MANY_STREAMS);
    }
    // Every module route answers 503 when its storage or shared backend is unavailable.
    if (path.starts_with("/api/") && !path.starts_with("/api/auth/")) || path.starts_with("/ws/") {
        out.push(&UNAVAILABLE);
    }
    out
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.options, &mut item.head, &mut item.patch, &mut item.trace]
        .into_iter()
        .flatten()
}

/// utoipa names an operation after its handler function, so two modules' `list` handlers
/// collide. Every operation id becomes `<segment>_<handler>`, the segment being the first
/// path segment after `/api` or `/ws` (`jobs_list`, `notifications_list`).
fn unique_operation_ids(api: &mut OpenApi) {
    for (path, item) in api.paths.paths.iter_mut() {
        let mut segs = path.trim_start_matches('/').split('/');
        let first = segs.next().unwrap_or("");
        let area = if first == "api" || first == "ws" { segs.next().unwrap_or(first) } else { first };
        let area = area.replace(['{', '}', '-', '.'], "");
        for op in operations(item) {
            if let Some(id) = &op.operation_id
                && !area.is_empty()
                && !id.starts_with(&format!("{area}_"))
            {
                op.operation_id = Some(format!("{area}_{id}"));
            }
        }
    }
}
