//! The export job: accepting a request, running it on the queue, finishing it, and
//! cancelling or deleting it.

use super::batch::StagedZip;
use super::caps::SourceBudget;
use super::record::{ExportJob, ExportStatus, Work, WorkItem};
use super::record_store::update;
use super::request::{self, ExportCreated, ExportRequest};
use super::{ExportError, ExportService, JOB, Source, batch};
use crate::jobs::{EnqueueRequest, JobContext, JobFailure, JobStatus};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// Seconds the queue's own timeout exceeds ours, so the handler records a timeout itself.
const QUEUE_TIMEOUT_SLACK: u64 = 30;

pub(super) fn register(svc: &ExportService) {
    let me = svc.clone();
    svc.inner.parts.jobs.handler(JOB, move |ctx: JobContext, payload| {
        let me = me.clone();
        async move {
            let id = payload.get("export_id").and_then(|v| v.as_str()).unwrap_or(ctx.job_id()).to_string();
            run(&me, &ctx, &id).await
        }
    });
}

pub(super) async fn create(svc: &ExportService, req: ExportRequest, owner: Option<String>) -> Result<ExportCreated, ExportError> {
    let inner = &svc.inner;
    let spec = inner.renderer.format(&req.format)?;
    let template = req.template.clone().unwrap_or_else(|| "default".into());
    inner.renderer.check_template(spec.name, &template)?;
    req.options.validate()?;
    request::check_webhook(req.webhook_url.as_deref(), req.webhook_secret.as_deref(), inner.parts.outbound.allow_private)?;
    if let Some(u) = &req.notify_user_id
        && u.trim().is_empty()
    {
        return Err(ExportError::invalid("notify_user_id", "must not be empty"));
    }

    let is_batch = !req.batch.is_empty();
    let (items, source_type, source_id, filename, content_type) = if is_batch {
        if req.source_id.is_some() || req.source.is_some() || req.source_type.is_some() {
            return Err(ExportError::invalid("batch", "use either batch or source_type with source_id/source"));
        }
        if req.batch.len() > inner.parts.config.jobs.max_batch {
            return Err(ExportError::invalid("batch", format!("at most {} sources per batch", inner.parts.config.jobs.max_batch)));
        }
        let mut items = Vec::with_capacity(req.batch.len());
        let mut budget = SourceBudget::new(&inner.parts.config.jobs, true);
        let mut taken = std::collections::HashSet::new();
        for (i, b) in req.batch.iter().enumerate() {
            let prefix = format!("batch[{i}].");
            let (source, mut item) =
                request::resolve(&inner.sources, &spec, &prefix, &b.source_type, b.source_id.as_deref(), b.source.clone()).await?;
            budget.take(&source_field(&prefix, &item), &source)?;
            let default = [b.source_type.as_str(), if source.id().is_empty() { "item" } else { source.id() }];
            let name = request::file_name(&format!("{prefix}filename"), b.filename.as_deref(), &default, spec.extension)?;
            item.filename = batch::unique_name(&name, &mut taken);
            items.push(item);
        }
        let filename = request::file_name("filename", req.filename.as_deref(), &["batch", spec.name], "zip")?;
        (items, "batch".to_string(), None, filename, "application/zip".to_string())
    } else {
        let st = req.source_type.as_deref().ok_or_else(|| ExportError::invalid("source_type", "source_type is required"))?;
        let (source, item) = request::resolve(&inner.sources, &spec, "", st, req.source_id.as_deref(), req.source.clone()).await?;
        SourceBudget::new(&inner.parts.config.jobs, false).take(&source_field("", &item), &source)?;
        let default = [st, if source.id().is_empty() { "inline" } else { source.id() }];
        let filename = request::file_name("filename", req.filename.as_deref(), &default, spec.extension)?;
        (vec![item], st.to_string(), req.source_id.clone(), filename, spec.content_type.to_string())
    };

    let id = uuid::Uuid::now_v7().to_string();
    let rec = ExportJob {
        id: id.clone(),
        source_type,
        source_id,
        format: spec.name.to_string(),
        batch: is_batch,
        template,
        filename,
        content_type,
        options: req.options.clone(),
        status: ExportStatus::Pending,
        progress: 0.0,
        size: None,
        etag: None,
        error: None,
        user_id: owner,
        notify_user_id: req.notify_user_id.clone(),
        webhook_url: req.webhook_url.clone(),
        created_at: inner.parts.clock.now(),
        started_at: None,
        finished_at: None,
    };
    let work = Work { items, webhook_secret: req.webhook_secret.clone() };
    inner.records.insert(&rec, &work).await?;

    let enqueue = EnqueueRequest {
        id: Some(id.clone()),
        timeout: Some(inner.parts.config.jobs.timeout + QUEUE_TIMEOUT_SLACK),
        max_attempts: Some(1),
        ..EnqueueRequest::new(JOB, json!({ "export_id": id }))
    };
    if let Err(e) = inner.parts.jobs.enqueue(enqueue).await {
        let msg = format!("could not enqueue: {e}");
        let _ = update(inner.records.as_ref(), &id, |mut r| {
            r.status = ExportStatus::Failed;
            r.error = Some(msg.clone());
            Some(r)
        })
        .await;
        return Err(ExportError::Io(e.to_string()));
    }
    svc.run_hooks(|h| h.on_create(&rec));
    inner.parts.events.emit(
        "export.created",
        &id,
        rec.user_id.as_deref(),
        json!({ "id": id, "format": rec.format, "source_type": rec.source_type }),
    );
    Ok(ExportCreated { job_id: id, status: "pending".into() })
}

/// The request field that named a work item's source (`batch[3].source_id`, `source`...).
fn source_field(prefix: &str, item: &WorkItem) -> String {
    format!("{prefix}{}", if item.source_id.is_some() { "source_id" } else { "source" })
}

/// Loads the source of one work item.
async fn load_source(svc: &ExportService, item: &WorkItem) -> Result<Source, ExportError> {
    let src = svc
        .inner
        .sources
        .get(&item.source_type)
        .ok_or_else(|| ExportError::invalid("source_type", format!("source type '{}' is no longer registered", item.source_type)))?;
    match (&item.source_id, &item.inline) {
        (Some(id), _) => src.load(id).await,
        (None, Some(json)) => {
            src.from_inline(serde_json::from_str(json).map_err(|e| ExportError::Io(format!("stored inline source unreadable: {e}")))?)
        }
        (None, None) => Err(ExportError::Io("work item without source".into())),
    }
}

async fn set_progress(svc: &ExportService, ctx: &JobContext, id: &str, pct: f64, stage: &str) {
    ctx.progress(pct, Some(stage)).await;
    let _ = update(svc.inner.records.as_ref(), id, move |mut r| {
        if r.status.is_final() {
            return None;
        }
        r.progress = pct;
        Some(r)
    })
    .await;
}

/// What rendering needs besides the source: the renderer, format, template and options.
#[derive(Clone)]
struct RenderJob {
    renderer: super::Renderer,
    format: String,
    template: String,
    options: super::formats::RenderOptions,
}

impl RenderJob {
    /// Renders `source` on a blocking thread.
    async fn render(&self, source: Source) -> Result<Vec<u8>, ExportError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.renderer.render(&source, &me.format, &me.template, &me.options))
            .await
            .map_err(|e| ExportError::Render(format!("render task failed: {e}")))?
    }
}

/// Renders, size-checks and stores the export; returns (size, etag). Sources are loaded
/// one at a time and counted against the export's [`SourceBudget`] before each is
/// rendered; a batch is zipped entry by entry into a staging file.
async fn produce(svc: &ExportService, ctx: &JobContext, rec: &ExportJob, work: Work) -> Result<(u64, String), ExportError> {
    let config = &svc.inner.parts.config.jobs;
    let (max, mut budget) = (config.max_size, SourceBudget::new(config, rec.batch));
    let job = RenderJob {
        renderer: svc.inner.renderer.clone(),
        format: rec.format.clone(),
        template: rec.template.clone(),
        options: rec.options.clone(),
    };
    let storage = svc.storage();
    if !rec.batch {
        let item = work.items.first().ok_or_else(|| ExportError::Io("export work without items".into()))?;
        let source = load_source(svc, item).await?;
        budget.take(&source_field("", item), &source)?;
        set_progress(svc, ctx, &rec.id, 10.0, "rendering").await;
        let bytes = job.render(source).await?;
        if bytes.len() as u64 > max {
            return Err(ExportError::TooLarge { size: bytes.len() as u64, max });
        }
        set_progress(svc, ctx, &rec.id, 90.0, "storing").await;
        let (size, etag) = (bytes.len() as u64, batch::etag_of(&Sha256::digest(&bytes)));
        storage.put(&rec.storage_key(), bytes).await?;
        return Ok((size, etag));
    }
    let dir = storage.staging_dir().unwrap_or_else(std::env::temp_dir);
    let mut zip = blocking(move || StagedZip::create(&dir)).await?;
    let (count, mut rendered) = (work.items.len().max(1), 0u64);
    for (i, item) in work.items.iter().enumerate() {
        let source = load_source(svc, item).await?;
        budget.take(&source_field(&format!("batch[{i}]."), item), &source)?;
        let bytes = job.render(source).await?;
        rendered += bytes.len() as u64;
        if rendered > max {
            return Err(ExportError::TooLarge { size: rendered, max });
        }
        let name = item.filename.clone();
        zip = blocking(move || zip.add(&name, &bytes).map(|()| zip)).await?;
        set_progress(svc, ctx, &rec.id, 10.0 + 80.0 * (i + 1) as f64 / count as f64, "rendering").await;
    }
    let staged = blocking(move || zip.finish()).await?;
    if staged.size > max {
        return Err(ExportError::TooLarge { size: staged.size, max });
    }
    set_progress(svc, ctx, &rec.id, 90.0, "storing").await;
    storage.put_file(&rec.storage_key(), &staged.path).await?;
    Ok((staged.size, staged.etag.clone()))
}

/// Runs blocking file work off the executor.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, ExportError> + Send + 'static) -> Result<T, ExportError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ExportError::Io(format!("file task failed: {e}")))?
}

async fn run(svc: &ExportService, ctx: &JobContext, id: &str) -> Result<serde_json::Value, JobFailure> {
    let inner = &svc.inner;
    let now = inner.parts.clock.now();
    let Some(rec) = update(inner.records.as_ref(), id, move |mut r| {
        if r.status.is_final() {
            return None;
        }
        r.status = ExportStatus::Running;
        r.started_at = Some(now);
        Some(r)
    })
    .await
    .map_err(|e| JobFailure::retry(e.to_string()))?
    else {
        return Ok(json!({ "skipped": "export deleted" }));
    };
    if rec.status.is_final() {
        return Ok(json!({ "skipped": format!("export already {}", rec.status.as_str()) }));
    }
    let Some(work) = inner.records.work(id).await.map_err(|e| JobFailure::retry(e.to_string()))? else {
        return Err(JobFailure::fatal("export work missing"));
    };
    ctx.progress(0.0, Some("loading")).await;
    let timeout = Duration::from_secs(inner.parts.config.jobs.timeout.max(1));
    let outcome = tokio::select! {
        r = tokio::time::timeout(timeout, produce(svc, ctx, &rec, work.clone())) => match r {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("timed out after {} s", timeout.as_secs())),
        },
        _ = ctx.cancelled() => Err("cancelled".to_string()),
    };
    let cancelled = ctx.is_cancelled();
    let finished = inner.parts.clock.now();
    let final_rec = {
        update(inner.records.as_ref(), id, |mut r| {
            if r.status.is_final() {
                return None;
            }
            r.finished_at = Some(finished);
            match outcome.clone() {
                Ok((size, etag)) if !cancelled => {
                    r.status = ExportStatus::Completed;
                    r.progress = 100.0;
                    r.size = Some(size);
                    r.etag = Some(etag);
                }
                Ok(_) => {
                    r.status = ExportStatus::Cancelled;
                    r.error = Some("cancelled".into());
                }
                Err(e) => {
                    r.status = if cancelled { ExportStatus::Cancelled } else { ExportStatus::Failed };
                    r.error = Some(e);
                }
            }
            Some(r)
        })
        .await
        .map_err(|e| JobFailure::retry(e.to_string()))?
    };
    let Some(final_rec) = final_rec else { return Ok(json!({ "skipped": "export deleted" })) };
    if final_rec.status != ExportStatus::Completed && outcome.is_ok() {
        // Cancelled or deleted while the file was being written: remove it.
        let _ = svc.storage().delete(&rec.storage_key()).await;
    }
    finish(svc, &final_rec, work.webhook_secret).await;
    match final_rec.status {
        ExportStatus::Completed => {
            ctx.progress(100.0, Some("done")).await;
            Ok(json!({ "size": final_rec.size, "filename": final_rec.filename }))
        }
        _ => Err(JobFailure::fatal(final_rec.error.clone().unwrap_or_else(|| final_rec.status.as_str().into()))),
    }
}

/// Side effects of a final state: hooks, event, notification, webhook.
async fn finish(svc: &ExportService, rec: &ExportJob, secret: Option<String>) {
    let inner = &svc.inner;
    if !matches!(rec.status, ExportStatus::Completed | ExportStatus::Failed) {
        return;
    }
    svc.run_hooks(|h| h.on_complete(rec));
    let event = if rec.status == ExportStatus::Completed { "export.completed" } else { "export.failed" };
    let data = serde_json::to_value(rec).unwrap_or_default();
    inner.parts.events.emit(event, &rec.id, rec.user_id.as_deref(), data.clone());
    if let Some(user) = &rec.notify_user_id {
        use crate::notify::model::{NotificationKind, SendRequest};
        let (kind, title, message) = if rec.status == ExportStatus::Completed {
            (NotificationKind::Success, "Export ready", format!("{} is ready to download.", rec.filename))
        } else {
            (
                NotificationKind::Error,
                "Export failed",
                format!("{} failed: {}", rec.filename, rec.error.as_deref().unwrap_or("unknown error")),
            )
        };
        let mut req = SendRequest::new(kind, title, message, user.clone());
        req.channels = vec!["in-app".into()];
        req.action_url = (rec.status == ExportStatus::Completed).then(|| format!("/api/exports/{}/download", rec.id));
        req.data = Some(json!({ "export_id": rec.id }));
        if let Err(e) = inner.parts.notify.send(req).await {
            tracing::warn!(export = %rec.id, error = %e, "export notification failed");
        }
    }
    if let Some(url) = &rec.webhook_url {
        let target = crate::webhooks::WebhookTarget { url: url.clone(), secret: secret.unwrap_or_default() };
        if let Err(e) = crate::webhooks::enqueue_delivery(&inner.parts.jobs, &inner.parts.store, target, event, data).await {
            tracing::warn!(export = %rec.id, error = %e, "export webhook could not be enqueued");
        }
    }
}

/// Brings a non-final record in line with a job that ended without the handler
/// recording it (forced timeout, crash before the run started and the job was cancelled).
pub(super) async fn reconcile(svc: &ExportService, rec: ExportJob) -> Result<ExportJob, ExportError> {
    if rec.status.is_final() {
        return Ok(rec);
    }
    let Ok(job) = svc.inner.parts.jobs.get_status(&rec.id).await else { return Ok(rec) };
    let (status, error) = match job.status {
        JobStatus::Dead => (ExportStatus::Failed, job.errors.last().map(|e| e.error.clone()).or(job.reason.clone())),
        JobStatus::Cancelled => (ExportStatus::Cancelled, job.reason.clone()),
        _ => return Ok(rec),
    };
    let now = svc.inner.parts.clock.now();
    let updated = update(svc.inner.records.as_ref(), &rec.id, move |mut r| {
        if r.status.is_final() {
            return None;
        }
        r.status = status;
        r.error = error.clone().or(Some("job ended".into()));
        r.finished_at = Some(now);
        Some(r)
    })
    .await?;
    Ok(updated.unwrap_or(rec))
}

pub(super) async fn delete(svc: &ExportService, id: &str) -> Result<ExportStatus, ExportError> {
    let inner = &svc.inner;
    let rec = inner.records.get(id).await?.ok_or_else(|| ExportError::NotFound { kind: "export", id: id.into() })?;
    if !rec.status.is_final() {
        let now = inner.parts.clock.now();
        let updated = update(inner.records.as_ref(), id, move |mut r| {
            if r.status.is_final() {
                return None;
            }
            r.status = ExportStatus::Cancelled;
            r.error = Some("cancelled by request".into());
            r.finished_at = Some(now);
            Some(r)
        })
        .await?;
        if let Err(e) = inner.parts.jobs.cancel(id).await {
            tracing::debug!(export = %id, error = %e, "cancel of export job");
        }
        let status = updated.map(|r| r.status).unwrap_or(ExportStatus::Cancelled);
        if status == ExportStatus::Cancelled {
            inner.parts.events.emit("export.cancelled", id, rec.user_id.as_deref(), json!({ "id": id }));
            return Ok(status);
        }
    }
    svc.storage().delete(&rec.storage_key()).await?;
    inner.records.delete(id).await?;
    inner.parts.events.emit("export.deleted", id, rec.user_id.as_deref(), json!({ "id": id }));
    Ok(rec.status)
}
