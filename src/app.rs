//! Builds every service from a [`Config`] and wires them together.
//!
//! [`App`] is both what the HTTP server serves and the entry point for Rust programs that
//! link hearth as a library:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let config = hearth::Config::from_yaml("server: {data_dir: ./data}")?;
//! let app = hearth::App::build(config).await?;
//! // app.progress, app.jobs, app.notify, app.cache, app.export, app.search ...
//! app.shutdown().await;
//! # Ok(()) }
//! ```

pub use crate::runtime::{Background, Readiness, ReadyState};
use crate::{
    cache::Cache,
    clock::{SharedClock, SystemClock},
    config::Config,
    events::EventBus,
    export::ExportService,
    jobs::JobQueue,
    notify::Notifications,
    progress::ProgressTracker,
    search::SearchService,
    store::{Store, StoreError},
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Errors while building the app.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The data directory or database could not be opened.
    #[error("cannot open the data directory: {0}")]
    Store(#[from] StoreError),
    /// A module failed to start.
    #[error("{module}: {message}")]
    Module {
        /// Which module.
        module: &'static str,
        /// Why.
        message: String,
    },
}

/// Every service, built from one configuration.
pub struct App {
    /// The effective configuration.
    pub config: Arc<Config>,
    /// The storage core.
    pub store: Store,
    /// The event bus.
    pub events: EventBus,
    /// The clock every module uses.
    pub clock: SharedClock,
    /// Progress tracking.
    pub progress: ProgressTracker,
    /// Job queue.
    pub jobs: JobQueue,
    /// Notifications.
    pub notify: Notifications,
    /// Cache.
    pub cache: Cache,
    /// Export.
    pub export: ExportService,
    /// Search.
    pub search: SearchService,
    background: Background,
}

impl App {
    /// Opens the store in `config.server.data_dir`, builds every service and starts their
    /// background tasks (workers, sweepers, schedulers, webhook delivery).
    pub async fn build(config: Config) -> Result<Arc<App>, AppError> {
        App::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// As [`App::build`] with an explicit clock (tests advance a `ManualClock`).
    pub async fn build_with_clock(config: Config, clock: SharedClock) -> Result<Arc<App>, AppError> {
        // The metrics recorder must exist before modules describe their metrics.
        let _ = crate::telemetry::recorder();
        let data_dir = config.server.data_dir.clone();
        let store = {
            let dir = data_dir.clone();
            tokio::task::spawn_blocking(move || Store::open(&dir))
                .await
                .map_err(|e| AppError::Module { module: "store", message: e.to_string() })??
        };
        let events = EventBus::default();
        let progress = ProgressTracker::new(store.clone(), events.clone(), clock.clone(), config.progress.clone());
        let jobs = JobQueue::new(store.clone(), events.clone(), clock.clone(), progress.clone(), config.job_queue.clone());
        let notify = Notifications::new(store.clone(), events.clone(), clock.clone(), jobs.clone(), config.notification.clone());
        let cache = Cache::new(store.clone(), clock.clone(), config.cache.clone());
        let export = ExportService::new(
            store.clone(),
            events.clone(),
            clock.clone(),
            jobs.clone(),
            progress.clone(),
            notify.clone(),
            config.export.clone(),
            data_dir.clone(),
        );
        let search = SearchService::new(store.clone(), events.clone(), jobs.clone(), config.search.clone(), data_dir.clone());
        let background = Background::default();
        let app =
            Arc::new(App { config: Arc::new(config), store, events, clock, progress, jobs, notify, cache, export, search, background });
        // Handlers are registered during construction; only now do workers start claiming.
        let bg = &app.background;
        app.progress.start(bg);
        app.notify.start(bg);
        app.cache.start(bg);
        app.export.start(bg);
        app.search.start(bg);
        crate::webhooks::start(crate::webhooks::Parts {
            subscriptions: app.config.webhooks.clone(),
            jobs: &app.jobs,
            store: &app.store,
            events: &app.events,
            background: bg,
        });
        app.jobs.start(bg);
        Ok(app)
    }

    /// The background-task handles, for modules and plugins that spawn their own tasks.
    pub fn background(&self) -> &Background {
        &self.background
    }

    /// Per-module readiness, keyed by module name.
    pub fn readiness(&self) -> BTreeMap<&'static str, Readiness> {
        let mut r = BTreeMap::new();
        let m = &self.config.modules;
        let on = |enabled: bool, f: &dyn Fn() -> Readiness| if enabled { f() } else { Readiness::unavailable("disabled in configuration") };
        r.insert("store", Readiness::ready());
        r.insert("progress", on(m.progress.enabled, &Readiness::ready));
        r.insert("job_queue", on(m.job_queue.enabled, &Readiness::ready));
        r.insert("notification", on(m.notification.enabled, &Readiness::ready));
        r.insert("cache", on(m.cache.enabled, &Readiness::ready));
        r.insert("export", on(m.export.enabled, &Readiness::ready));
        r.insert("search", on(m.search.enabled, &|| self.search.readiness()));
        r
    }

    /// Stops background work (workers finish or hand back their jobs), waits for it up to
    /// the configured grace period, and lets the writer commit what is queued.
    pub async fn shutdown(&self) {
        self.background.shutdown.cancel();
        self.background.tasks.close();
        let grace = std::time::Duration::from_secs(self.config.server.shutdown_grace_seconds);
        if tokio::time::timeout(grace, self.background.tasks.wait()).await.is_err() {
            tracing::warn!("background tasks did not stop within {grace:?}");
        }
        self.jobs.release_plugins();
    }
}
