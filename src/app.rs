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
//!
//! Every backend seam (the tables in ARCHITECTURE.md) is chosen here: the configuration
//! selects a built-in backend by name (`embedded` by default), and [`AppBuilder`] takes any
//! other implementation of the seam's trait from Rust.

pub use crate::runtime::{Background, Readiness, ReadyState};
use crate::{
    cache::Cache,
    cache::CacheBackend,
    clock::{SharedClock, SystemClock},
    config::Config,
    events::{EventBus, EventTransport},
    export::ExportService,
    jobs::JobQueue,
    notify::Notifications,
    progress::{EventBusEmitter, ProgressStorage, ProgressTracker, RedbProgressStorage, config::ProgressStoreKind},
    search::SearchService,
    store::{Health, Store, StoreError, StoreOptions},
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

/// Builds an [`App`], optionally with backends other than those the configuration selects.
///
/// ```no_run
/// # async fn demo(my_storage: std::sync::Arc<dyn hearth::progress::ProgressStorage>) -> anyhow::Result<()> {
/// let config = hearth::Config::from_yaml("")?;
/// let app = hearth::App::builder(config).progress_storage(my_storage).build().await?;
/// # Ok(()) }
/// ```
pub struct AppBuilder {
    config: Config,
    clock: SharedClock,
    store: Option<Store>,
    events: Option<Arc<dyn EventTransport>>,
    progress: Option<Arc<dyn ProgressStorage>>,
    cache_l2: Option<Arc<dyn CacheBackend>>,
}

impl AppBuilder {
    /// The clock every module reads (tests advance a `ManualClock`).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// An already opened store (default: `<server.data_dir>/hearth.redb`), e.g. one on a
    /// custom redb storage backend.
    pub fn store(mut self, store: Store) -> Self {
        self.store = Some(store);
        self
    }

    /// The event transport (default: the in-process broadcast bus).
    pub fn event_transport(mut self, transport: Arc<dyn EventTransport>) -> Self {
        self.events = Some(transport);
        self
    }

    /// Where progress records live (default: `progress.store`).
    pub fn progress_storage(mut self, storage: Arc<dyn ProgressStorage>) -> Self {
        self.progress = Some(storage);
        self
    }

    /// The cache's L2 tier (default: `cache.l2.backend`; ignored when `cache.l2.enabled`
    /// is false).
    pub fn cache_backend(mut self, backend: Arc<dyn CacheBackend>) -> Self {
        self.cache_l2 = Some(backend);
        self
    }

    /// Opens the store in `config.server.data_dir`, builds every service and starts their
    /// background tasks (workers, sweepers, schedulers, webhook delivery).
    pub async fn build(self) -> Result<Arc<App>, AppError> {
        let AppBuilder { config, clock, store, events, progress, cache_l2 } = self;
        // The metrics recorder must exist before modules describe their metrics.
        let _ = crate::telemetry::recorder();
        let data_dir = config.server.data_dir.clone();
        let store = match store {
            Some(s) => s,
            None => {
                let dir = data_dir.clone();
                let options = StoreOptions { min_free_bytes: config.server.min_free_disk_bytes, ..StoreOptions::default() };
                tokio::task::spawn_blocking(move || Store::open_with(&dir, options))
                    .await
                    .map_err(|e| AppError::Module { module: "store", message: e.to_string() })??
            }
        };
        let events = match events {
            Some(t) => EventBus::with_transport(t),
            None => EventBus::default(),
        };
        let progress_storage = progress.unwrap_or_else(|| match config.progress.store {
            ProgressStoreKind::Embedded => Arc::new(RedbProgressStorage::new(store.clone())),
        });
        let progress = ProgressTracker::with_backends(
            progress_storage,
            Arc::new(EventBusEmitter::new(events.clone())),
            clock.clone(),
            config.progress.clone(),
        );
        progress.set_event_bus(events.clone());
        let jobs = JobQueue::new(store.clone(), events.clone(), clock.clone(), progress.clone(), config.job_queue.clone());
        let notify = Notifications::new(store.clone(), events.clone(), clock.clone(), jobs.clone(), config.notification.clone());
        let l2 = config.cache.l2.enabled.then(|| cache_l2.unwrap_or_else(|| Cache::configured_l2(store.clone(), &config.cache)));
        let cache = Cache::with_backend(clock.clone(), config.cache.clone(), l2);
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
}

impl App {
    /// A builder for an app on `config`, with the system clock and the backends the
    /// configuration selects until told otherwise.
    pub fn builder(config: Config) -> AppBuilder {
        AppBuilder { config, clock: Arc::new(SystemClock), store: None, events: None, progress: None, cache_l2: None }
    }

    /// Opens the store in `config.server.data_dir`, builds every service and starts their
    /// background tasks (workers, sweepers, schedulers, webhook delivery).
    pub async fn build(config: Config) -> Result<Arc<App>, AppError> {
        App::builder(config).build().await
    }

    /// As [`App::build`] with an explicit clock (tests advance a `ManualClock`).
    pub async fn build_with_clock(config: Config, clock: SharedClock) -> Result<Arc<App>, AppError> {
        App::builder(config).clock(clock).build().await
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
        r.insert(
            "store",
            match self.store.health() {
                Health::Ok => Readiness::ready(),
                Health::Full(why) => Readiness::degraded(format!("writes refused: {why}; reads work")),
                Health::Failing(why) => Readiness::degraded(format!("the last write failed: {why}; reads work")),
                Health::Unavailable(why) => Readiness::unavailable(why),
            },
        );
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
