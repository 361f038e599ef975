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
    cache::{Cache, CacheBackend, config::L2Backend},
    clock::{SharedClock, SystemClock},
    cluster::{Redis, RedisConfig, StoreKind},
    config::Config,
    events::{EventBus, EventTransport},
    events::{RedisTransport, TransportKind},
    export::{ExportBackends, ExportParts, ExportRecordStore, ExportService, SourceStore, redis::RedisExportStore, storage::ExportStorage},
    jobs::{Broker, JobQueue, RedisBroker},
    notify::{EmbeddedNotificationStore, NotificationStore, Notifications, redis::RedisNotificationStore},
    progress::{EventBusEmitter, ProgressStorage, ProgressTracker, RedbProgressStorage, RedisProgressStorage, config::ProgressStoreKind},
    search::{EmbeddedStore, Embedder, SearchService, StoreHandle},
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
    backends: Backends,
}

/// Backends given to the builder; each `None` is built from the configuration.
#[derive(Default)]
struct Backends {
    events: Option<Arc<dyn EventTransport>>,
    progress: Option<Arc<dyn ProgressStorage>>,
    jobs: Option<Broker>,
    notify: Option<Arc<dyn NotificationStore>>,
    cache_l2: Option<Arc<dyn CacheBackend>>,
    export_records: Option<Arc<dyn ExportRecordStore>>,
    export_sources: Option<Arc<dyn SourceStore>>,
    export_files: Option<Arc<dyn ExportStorage>>,
    search: Option<StoreHandle>,
    embedder: Option<Arc<dyn Embedder>>,
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
        self.backends.events = Some(transport);
        self
    }

    /// Where progress records live (default: `progress.store`).
    pub fn progress_storage(mut self, storage: Arc<dyn ProgressStorage>) -> Self {
        self.backends.progress = Some(storage);
        self
    }

    /// The job broker (default: `job_queue.broker.type`); see [`Broker::custom`].
    pub fn job_broker(mut self, broker: Broker) -> Self {
        self.backends.jobs = Some(broker);
        self
    }

    /// Where notifications, preferences and the outbox live (default: `notification.store`).
    pub fn notification_store(mut self, store: Arc<dyn NotificationStore>) -> Self {
        self.backends.notify = Some(store);
        self
    }

    /// The cache's L2 tier (default: `cache.l2.backend`; ignored when `cache.l2.enabled`
    /// is false).
    pub fn cache_backend(mut self, backend: Arc<dyn CacheBackend>) -> Self {
        self.backends.cache_l2 = Some(backend);
        self
    }

    /// Where export records live (default: `export.store`).
    pub fn export_records(mut self, records: Arc<dyn ExportRecordStore>) -> Self {
        self.backends.export_records = Some(records);
        self
    }

    /// Where stored transcripts and documents live (default: `export.store`).
    pub fn export_sources(mut self, sources: Arc<dyn SourceStore>) -> Self {
        self.backends.export_sources = Some(sources);
        self
    }

    /// Where export files go (default: `export.storage`).
    pub fn export_files(mut self, files: Arc<dyn ExportStorage>) -> Self {
        self.backends.export_files = Some(files);
        self
    }

    /// Where search documents, chunks, the keyword index and vectors live (default:
    /// `search.vector_db.type`).
    pub fn search_store(mut self, store: impl Into<StoreHandle>) -> Self {
        self.backends.search = Some(store.into());
        self
    }

    /// The embedder (default: `search.embeddings`).
    pub fn embedder(mut self, embedder: Arc<dyn Embedder>) -> Self {
        self.backends.embedder = Some(embedder);
        self
    }

    /// Opens the store in `config.server.data_dir`, builds every service and starts their
    /// background tasks (workers, sweepers, schedulers, webhook delivery).
    pub async fn build(self) -> Result<Arc<App>, AppError> {
        let AppBuilder { config, clock, store, backends: b } = self;
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
        let background = Background::default();
        let redis = match needs_redis(&config) {
            true => Some(Redis::connect(&config.redis).await.map_err(|e| AppError::Module { module: "redis", message: e.to_string() })?),
            false => None,
        };
        let events = match (b.events, config.events.transport, &redis) {
            (Some(t), ..) => EventBus::with_transport(t),
            (None, TransportKind::Redis, Some(r)) => {
                let t = RedisTransport::start(r.clone(), config.events.capacity, background.shutdown.clone())
                    .await
                    .map_err(|e| AppError::Module { module: "events", message: e.to_string() })?;
                EventBus::with_transport(Arc::new(t))
            }
            _ => EventBus::new(config.events.capacity),
        };
        let progress_storage: Arc<dyn ProgressStorage> = match (b.progress, config.progress.store, &redis) {
            (Some(s), ..) => s,
            (None, ProgressStoreKind::Redis, Some(r)) => Arc::new(RedisProgressStorage::new(r.clone())),
            _ => Arc::new(RedbProgressStorage::new(store.clone())),
        };
        let progress = ProgressTracker::with_backends(
            progress_storage,
            Arc::new(EventBusEmitter::new(events.clone())),
            clock.clone(),
            config.progress.clone(),
        );
        progress.set_event_bus(events.clone());
        let broker = match (b.jobs, config.job_queue.broker.kind.as_str(), &redis) {
            (Some(broker), ..) => Some(broker),
            (None, "redis", Some(r)) => Some(Broker::custom(RedisBroker::new(r.clone()))),
            _ => None,
        };
        let jobs = match broker {
            Some(broker) => JobQueue::with_broker(broker, events.clone(), clock.clone(), progress.clone(), config.job_queue.clone()),
            None => JobQueue::new(store.clone(), events.clone(), clock.clone(), progress.clone(), config.job_queue.clone()),
        };
        let notify_store: Arc<dyn NotificationStore> = match (b.notify, config.notification.store, &redis) {
            (Some(s), ..) => s,
            (None, StoreKind::Redis, Some(r)) => Arc::new(RedisNotificationStore::new(r.clone())),
            _ => Arc::new(EmbeddedNotificationStore::new(store.clone())),
        };
        let notify = Notifications::with_store(notify_store, events.clone(), clock.clone(), jobs.clone(), config.notification.clone());
        let l2 = match (config.cache.l2.enabled, b.cache_l2) {
            (false, _) => None,
            (true, Some(backend)) => Some(backend),
            (true, None) => {
                let redis = match config.cache.l2.backend {
                    L2Backend::Redis => Some(cache_redis(&config, redis.as_ref()).await?),
                    L2Backend::Embedded => None,
                };
                let backend = Cache::configured_l2(store.clone(), redis, &config.cache)
                    .map_err(|e| AppError::Module { module: "cache", message: e.to_string() })?;
                Some(backend)
            }
        };
        let cache = Cache::with_backend(clock.clone(), config.cache.clone(), l2);
        let embedded = ExportBackends::embedded(&store, data_dir.join(&config.export.storage.path));
        let (records, sources) = match (config.export.store, &redis) {
            (StoreKind::Redis, Some(r)) => {
                let shared = Arc::new(RedisExportStore::new(r.clone()));
                (shared.clone() as Arc<dyn ExportRecordStore>, shared as Arc<dyn SourceStore>)
            }
            _ => (embedded.records, embedded.sources),
        };
        let export_backends = ExportBackends {
            records: b.export_records.unwrap_or(records),
            sources: b.export_sources.unwrap_or(sources),
            files: match (b.export_files, config.export.storage.kind.as_str()) {
                (Some(f), _) => f,
                (None, "s3") => Arc::new(
                    crate::export::s3::S3Storage::new(&config.export.storage)
                        .map_err(|e| AppError::Module { module: "export", message: e.to_string() })?,
                ),
                (None, _) => embedded.files,
            },
        };
        let export_parts = ExportParts {
            store: store.clone(),
            events: events.clone(),
            clock: clock.clone(),
            jobs: jobs.clone(),
            progress: progress.clone(),
            notify: notify.clone(),
            config: config.export.clone(),
            outbound: config.outbound.clone(),
        };
        let export = ExportService::with_backends(export_parts, export_backends);
        let search_store =
            b.search.unwrap_or_else(|| EmbeddedStore::new(store.clone(), data_dir.clone(), config.search.vector_db.clone()).into());
        let search = SearchService::with_store(search_store, events.clone(), jobs.clone(), config.search.clone());
        if let Some(e) = b.embedder {
            search.set_embedder(e);
        }
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
            allow_private: app.config.outbound.allow_private,
        });
        app.jobs.start(bg);
        Ok(app)
    }
}

/// True when a part the configuration selects lives in Redis.
fn needs_redis(config: &Config) -> bool {
    config.cluster_redis_parts().iter().any(|(_, on)| *on)
}

/// The Redis of the cache's L2: the cluster's, unless `cache.l2.url` names another.
async fn cache_redis(config: &Config, cluster: Option<&Redis>) -> Result<Redis, AppError> {
    match (&config.cache.l2.url, cluster) {
        (Some(url), Some(r)) if Some(url) == config.redis.url.as_ref() => Ok(r.clone()),
        (None, Some(r)) => Ok(r.clone()),
        (url, _) => {
            let cfg = RedisConfig { url: url.clone().or_else(|| config.redis.url.clone()), ..config.redis.clone() };
            Redis::connect(&cfg).await.map_err(|e| AppError::Module { module: "cache", message: e.to_string() })
        }
    }
}

impl App {
    /// A builder for an app on `config`, with the system clock and the backends the
    /// configuration selects until told otherwise.
    pub fn builder(config: Config) -> AppBuilder {
        AppBuilder { config, clock: Arc::new(SystemClock), store: None, backends: Backends::default() }
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
        r.insert("job_queue", on(m.job_queue.enabled, &|| self.jobs.readiness()));
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
