//! HTTP routes of the notify module. SKELETON: filled in by the module's issue.

use super::AppState;
use utoipa_axum::router::OpenApiRouter;

/// Routes of the notify module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}
