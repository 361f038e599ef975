//! HTTP routes of the search module. SKELETON: filled in by the module's issue.

use super::AppState;
use utoipa_axum::router::OpenApiRouter;

/// Routes of the search module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}
