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

/// Adds the security scheme once all routes are merged, and makes operation ids unique.
pub fn finish(mut api: OpenApi) -> OpenApi {
    unique_operation_ids(&mut api);
    let mut components = api.components.take().unwrap_or_else(|| ComponentsBuilder::new().build());
    components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
    api.components = Some(components);
    api.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
    api
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
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for op in ops.into_iter().flatten() {
            if let Some(id) = &op.operation_id
                && !area.is_empty()
                && !id.starts_with(&format!("{area}_"))
            {
                op.operation_id = Some(format!("{area}_{id}"));
            }
        }
    }
}
