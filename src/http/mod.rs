//! The HTTP adapter: the only place that knows axum.
//!
//! Each module contributes its routes from a file here (`http/jobs.rs`, ...) as a
//! `utoipa_axum` router, so the OpenAPI document is generated from the same code that
//! serves. This file assembles them with the cross-cutting layers: authentication,
//! request ids, tracing, metrics, the body limit and JSON 404/405 fallbacks.

pub mod auth;
pub mod browser;
pub mod error;
pub mod limits;
pub mod metrics;
pub mod openapi;
mod serve;
pub mod stream;
mod system;
mod trace;
pub mod ui;

pub mod cache;
mod cache_ops;
pub mod embeddings;
pub mod export;
pub mod job_events;
pub mod jobs;
pub mod notify;
pub mod progress;
pub mod search;
pub mod worker;

use crate::App;
use crate::error::{ApiError, ErrorCode};
use auth::{Authenticator, Principal};
use axum::{
    Router,
    extract::{DefaultBodyLimit, MatchedPath, Request, State},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::any,
};
use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use utoipa_axum::router::OpenApiRouter;

pub use serve::serve;

/// What every handler receives: the app, the authenticator and the stream slots.
pub struct ServerState {
    /// Every service.
    pub app: Arc<App>,
    /// Credential checks.
    pub auth: Authenticator,
    /// Open WebSocket/SSE streams per caller.
    pub streams: limits::StreamSlots,
}

impl Deref for ServerState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.app
    }
}

/// Shared handler state.
pub type AppState = Arc<ServerState>;

/// URL prefixes each module serves, used to answer 503 `module_disabled` when it is off.
const MODULE_PREFIXES: &[(&str, &[&str])] = &[
    ("progress", &["/api/progress", "/ws/progress"]),
    ("notification", &["/api/notifications", "/ws/notifications"]),
    ("job_queue", &["/api/jobs", "/api/queues", "/api/schedules", "/ws/jobs", "/ws/worker"]),
    ("cache", &["/api/cache"]),
    ("export", &["/api/exports", "/api/transcripts", "/api/documents"]),
    ("search", &["/api/search", "/v1/embeddings"]),
];

/// The full router with its OpenAPI document.
pub fn router(app: Arc<App>) -> Router {
    let server = &app.config.server;
    let head = limits::HeadLimits { max_uri_bytes: server.max_uri_bytes, max_header_bytes: server.max_header_bytes };
    let door = FrontDoor { head, browser: browser::BrowserPolicy::new(&app.config) };
    let cors = browser::cors_layer(&app.config);
    let streams = limits::StreamSlots::new(server.max_streams_per_caller);
    let state: AppState = Arc::new(ServerState { auth: Authenticator::new(&app.config), streams, app });
    let (router, api) = api_router(&state).split_for_parts();
    let mut doc = serde_json::to_value(openapi::finish(api, state.auth.enabled())).expect("openapi serializes");
    refine(&mut doc, &state.app);
    let spec = Arc::new(serde_json::to_vec_pretty(&doc).expect("openapi serializes"));
    let router = router
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let spec = spec.clone();
                async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], spec.as_ref().clone()) }
            }),
        )
        .merge(ui::routes())
        .fallback(error::route_not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(DefaultBodyLimit::max(state.config.server.body_limit))
        .layer(middleware::from_fn_with_state(door, front_door))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(trace::layer())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid));
    // CORS answers preflights before anything else sees them (they carry no credentials).
    let router = match cors {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router.with_state(state)
}

/// Every enabled module's routes plus the system routes, as an OpenAPI router.
pub fn api_router(state: &AppState) -> OpenApiRouter<AppState> {
    let m = &state.config.modules;
    let mut r = OpenApiRouter::with_openapi(openapi::base()).merge(system::routes());
    let modules: [(&str, bool, fn() -> OpenApiRouter<AppState>); 6] = [
        ("progress", m.progress.enabled, progress::routes),
        ("notification", m.notification.enabled, notify::routes),
        ("job_queue", m.job_queue.enabled, jobs::routes),
        ("cache", m.cache.enabled, cache::routes),
        ("export", m.export.enabled, export::routes),
        ("search", m.search.enabled, || search::routes().merge(embeddings::routes())),
    ];
    for (name, enabled, routes) in modules {
        if enabled {
            r = r.merge(routes());
        } else {
            let prefixes = MODULE_PREFIXES.iter().find(|(n, _)| *n == name).map(|(_, p)| *p).unwrap_or(&[]);
            let mut off = Router::new();
            for p in prefixes {
                off = off.route(p, any(move || module_disabled(name))).route(&format!("{p}/{{*rest}}"), any(move || module_disabled(name)));
            }
            r = r.merge(OpenApiRouter::from(off));
        }
    }
    r
}

/// The constraints route files state on the serialized OpenAPI document
/// ([`openapi::refine`]): limits taken from the configuration, and rules of types the
/// route file does not own.
fn refine(doc: &mut serde_json::Value, app: &App) {
    let config = &app.config;
    system::refine(doc, config);
    if config.modules.notification.enabled {
        notify::refine(doc, app);
    }
    if config.modules.progress.enabled {
        progress::refine(doc);
    }
    if config.modules.cache.enabled {
        cache::refine(doc, config);
    }
    if config.modules.job_queue.enabled {
        jobs::refine(doc, config);
    }
    if config.modules.search.enabled {
        search::refine(doc, config);
    }
    if config.modules.export.enabled {
        export::refine(doc, app);
    }
}

async fn module_disabled(name: &'static str) -> ApiError {
    ApiError::new(ErrorCode::ModuleDisabled, format!("the {name} module is disabled in the configuration (modules.{name}.enabled)"))
}

/// Resolves the caller, checks the coarse permission, and stores the [`Principal`] in the
/// request extensions for handlers that need finer checks.
async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if matches!(path, "/healthz" | "/readyz" | "/openapi.json") || ui::is_ui_path(path) {
        req.extensions_mut().insert(Principal::Open);
        return next.run(req).await;
    }
    let credential = auth::credential_of(req.headers(), req.uri().query(), path);
    let ticket = if credential.is_none() { auth::ticket_of(req.uri().query(), path) } else { None };
    let found = match ticket {
        Some(t) => state.auth.redeem_ticket(&t, state.clock.now().timestamp()).map(|(p, caller)| {
            req.extensions_mut().insert(caller);
            p
        }),
        None => state.auth.authenticate(credential.as_deref()),
    };
    let principal = match found {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let path = req.uri().path();
    if let Err(e) = auth::authorize(&principal, req.method(), path) {
        return e.into_response();
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

/// What the first middleware checks.
#[derive(Clone)]
struct FrontDoor {
    head: limits::HeadLimits,
    browser: browser::BrowserPolicy,
}

/// The first of hearth's layers, in one middleware (each layer costs on every request):
/// refuses oversized request heads (`limits.rs`) and what a browser must not do
/// (`browser.rs`), records the request's metrics, and marks every response `nosniff`.
async fn front_door(State(door): State<FrontDoor>, req: Request, next: Next) -> Response {
    if let Err(e) = door.head.check(&req).and_then(|()| door.browser.check(&req)) {
        return limits::nosniff(e.into_response());
    }
    let start = Instant::now();
    let method = req.method().to_string();
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    ::metrics::counter!("hearth_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    ::metrics::histogram!("hearth_http_request_duration_seconds", "method" => method, "route" => route)
        .record(start.elapsed().as_secs_f64());
    limits::nosniff(resp)
}
