//! The OpenAPI document's frame; paths and schemas come from the route files.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, InfoBuilder, OpenApi, OpenApiBuilder, SecurityRequirement};

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

/// Adds the security scheme and the shared error schema once all routes are merged.
pub fn finish(mut api: OpenApi) -> OpenApi {
    let mut components = api.components.take().unwrap_or_else(|| ComponentsBuilder::new().build());
    components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
    api.components = Some(components);
    api.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
    api
}
