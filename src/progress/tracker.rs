//! [`ProgressTracker`]: the in-memory front of running progress records.
//!
//! Every progress in use has a *slot* in a map; operations on one id are serialised by
//! the slot's async mutex, so each change is validated against the latest state, stored
//! (when durable), applied, emitted and passed to plugins in one order.
//!
//! Durability: create, the first update, stage changes and terminal states are written
//! to storage before the call returns. Plain percent updates only mark the slot dirty;
//! the flusher (`flush.rs`) writes the latest snapshot at most once per id per
//! `flush_interval_ms`, and storage never lets an older version replace a newer one. So
//! storage is never behind an acknowledged transition and only ever holds states that
//! were reported.
//!
//! Invariant: a slot in the map is `Unloaded` (state in storage, not read yet) or `Live`.
//! A slot leaves the map by becoming `Detached` (deleted, evicted while clean, or never
//! existing) or, once terminal, by staying `Live` with its final state; an operation
//! that finds a `Detached` slot looks the id up again.

use super::config::ProgressConfig;
use super::emitter::ProgressEmitter;
use super::error::ProgressError;
use super::hub::Hub;
use super::machine::{self, Change, Finish};
use super::metrics as m;
use super::model::{NewProgress, Progress, ProgressRecord, ProgressStatus, ProgressUpdate, topics};
use super::plugin::ProgressPlugin;
use super::storage::{ListQuery, ProgressStorage};
use crate::clock::SharedClock;
use crate::events::EventBus;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use tokio::sync::OwnedMutexGuard;

/// The state behind one id.
pub(super) enum SlotState {
    /// Not read from storage yet.
    Unloaded,
    /// The current record and the highest version known to be in storage.
    Live { rec: ProgressRecord, persisted: u64 },
    /// Removed from the map; look the id up again.
    Detached,
}

/// One id's slot.
pub(super) struct Slot {
    pub(super) id: Arc<str>,
    pub(super) state: Arc<tokio::sync::Mutex<SlotState>>,
    /// True while the slot is in the dirty list.
    pub(super) queued: AtomicBool,
    /// Milliseconds since the tracker's epoch of the last operation.
    pub(super) touched_ms: AtomicU64,
}

pub(super) struct Inner {
    pub(super) storage: Arc<dyn ProgressStorage>,
    pub(super) emitter: Arc<dyn ProgressEmitter>,
    pub(super) clock: SharedClock,
    pub(super) config: ProgressConfig,
    pub(super) slots: RwLock<HashMap<Arc<str>, Arc<Slot>>>,
    pub(super) dirty: Mutex<Vec<Arc<Slot>>>,
    plugins: RwLock<Arc<[Arc<dyn ProgressPlugin>]>>,
    pub(super) epoch: Instant,
    /// The bus live feeds read (set by `new` or [`ProgressTracker::set_event_bus`]).
    bus: OnceLock<EventBus>,
    /// Routes bus events to live feeds; started with the first feed.
    hub: OnceLock<Hub>,
}

/// Tracks long-running operations: weighted stages, percent, ETA, status. Cheap to clone.
///
/// ```no_run
/// # async fn demo(tracker: hearth::progress::ProgressTracker) -> Result<(), hearth::progress::ProgressError> {
/// use hearth::progress::NewProgress;
/// tracker.create(NewProgress::with_stages(Some("file-1".into()), &["upload", "transcribe"])).await?;
/// tracker.update("file-1", 50.0, Some("upload")).await?;
/// tracker.advance_stage("file-1").await?;
/// tracker.complete("file-1", None).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ProgressTracker {
    pub(super) inner: Arc<Inner>,
}

type Guard = OwnedMutexGuard<SlotState>;

fn live(g: &mut Guard) -> &mut ProgressRecord {
    match &mut **g {
        SlotState::Live { rec, .. } => rec,
        _ => unreachable!("lock_live only returns live slots"),
    }
}

impl ProgressTracker {
    /// A tracker on custom backends. [`ProgressTracker::new`] uses the embedded ones.
    pub fn with_backends(
        storage: Arc<dyn ProgressStorage>,
        emitter: Arc<dyn ProgressEmitter>,
        clock: SharedClock,
        config: ProgressConfig,
    ) -> Self {
        m::describe();
        ProgressTracker {
            inner: Arc::new(Inner {
                storage,
                emitter,
                clock,
                config,
                slots: RwLock::new(HashMap::new()),
                dirty: Mutex::new(Vec::new()),
                plugins: RwLock::new(Arc::from(Vec::new())),
                epoch: Instant::now(),
                bus: OnceLock::new(),
                hub: OnceLock::new(),
            }),
        }
    }

    /// Sets the event bus that live feeds ([`super::live::Feed`]) follow; `new` does this.
    /// With a custom emitter that does not publish on this bus, feeds only see snapshots.
    /// Only the first call has an effect.
    pub fn set_event_bus(&self, bus: EventBus) {
        let _ = self.inner.bus.set(bus);
    }

    /// The feed router, started on first use (needs a Tokio runtime).
    pub(super) fn hub(&self) -> &Hub {
        self.inner.hub.get_or_init(|| {
            let bus = self.inner.bus.get_or_init(|| EventBus::new(16));
            Hub::start(bus)
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &ProgressConfig {
        &self.inner.config
    }

    /// Adds a plugin; it sees every change made from now on.
    pub fn register_plugin(&self, plugin: Arc<dyn ProgressPlugin>) {
        let mut p = self.inner.plugins.write();
        let mut v: Vec<_> = p.iter().cloned().collect();
        v.push(plugin);
        *p = Arc::from(v);
    }

    fn now_ms(&self) -> u64 {
        self.inner.epoch.elapsed().as_millis() as u64
    }

    /// The slot for `id`, inserting an `Unloaded` placeholder when there is none.
    fn slot(&self, id: &str) -> Arc<Slot> {
        if let Some(s) = self.inner.slots.read().get(id) {
            return s.clone();
        }
        let mut map = self.inner.slots.write();
        map.entry(Arc::from(id))
            .or_insert_with_key(|k| {
                Arc::new(Slot {
                    id: k.clone(),
                    state: Arc::new(tokio::sync::Mutex::new(SlotState::Unloaded)),
                    queued: AtomicBool::new(false),
                    touched_ms: AtomicU64::new(self.now_ms()),
                })
            })
            .clone()
    }

    /// Removes `slot` from the map if it is still the one there.
    pub(super) fn unmap(&self, slot: &Arc<Slot>) {
        let mut map = self.inner.slots.write();
        if map.get(&*slot.id).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            map.remove(&*slot.id);
        }
    }

    /// Locks the slot of `id` in the `Live` state, loading it from storage if needed.
    async fn lock_live(&self, id: &str) -> Result<(Arc<Slot>, Guard), ProgressError> {
        loop {
            let slot = self.slot(id);
            let mut g = slot.state.clone().lock_owned().await;
            slot.touched_ms.store(self.now_ms(), Ordering::Relaxed);
            match &*g {
                SlotState::Live { .. } => return Ok((slot, g)),
                SlotState::Detached => continue,
                SlotState::Unloaded => {}
            }
            match self.inner.storage.load(id).await {
                Ok(Some(rec)) => {
                    let terminal = rec.status.is_terminal();
                    let persisted = rec.version;
                    *g = SlotState::Live { rec, persisted };
                    if terminal {
                        // Finished records need no slot; this guard still answers the caller.
                        self.unmap(&slot);
                    }
                    return Ok((slot, g));
                }
                Ok(None) => {
                    *g = SlotState::Detached;
                    self.unmap(&slot);
                    return Err(ProgressError::NotFound(id.to_string()));
                }
                Err(e) => {
                    *g = SlotState::Detached;
                    self.unmap(&slot);
                    return Err(e);
                }
            }
        }
    }

    /// Queues the slot for the next coalesced flush.
    fn mark_dirty(&self, slot: &Arc<Slot>) {
        if !slot.queued.swap(true, Ordering::AcqRel) {
            self.inner.dirty.lock().push(slot.clone());
        }
    }

    /// Creates a progress; durable before it returns. An id in use is
    /// [`ProgressError::AlreadyExists`].
    pub async fn create(&self, req: NewProgress) -> Result<Progress, ProgressError> {
        let rec = machine::new_record(req, self.inner.clock.now())?;
        loop {
            let slot = self.slot(&rec.id);
            let mut g = slot.state.clone().lock_owned().await;
            match &*g {
                SlotState::Detached => continue,
                SlotState::Live { .. } => return Err(ProgressError::AlreadyExists(rec.id.clone())),
                SlotState::Unloaded => {}
            }
            return match self.inner.storage.insert(&rec).await {
                Ok(()) => {
                    let p = rec.to_progress();
                    *g = SlotState::Live { persisted: rec.version, rec };
                    ::metrics::counter!(m::CREATED).increment(1);
                    Ok(p)
                }
                Err(e) => {
                    // Existing or not, storage stays the source of truth for this id.
                    *g = SlotState::Detached;
                    self.unmap(&slot);
                    Err(e)
                }
            };
        }
    }

    /// Sets the percent (0–100) within `stage`, or within the current stage when `None`.
    /// Naming a later stage moves there; an earlier one is a conflict (see
    /// [`ProgressTracker::update_with`] to allow it).
    pub async fn update(&self, id: &str, percent: f64, stage: Option<&str>) -> Result<Progress, ProgressError> {
        self.update_with(id, ProgressUpdate { progress: Some(percent), stage: stage.map(str::to_string), allow_backwards: false }).await
    }

    /// Applies an update request; see [`ProgressUpdate`] for the rules.
    pub async fn update_with(&self, id: &str, u: ProgressUpdate) -> Result<Progress, ProgressError> {
        let (slot, mut g) = self.lock_live(id).await?;
        let (next, change) = machine::apply_update(live(&mut g), &u, self.inner.clock.now())?;
        if change == Change::Stage {
            self.validate_stage(live(&mut g), &next)?;
        }
        self.commit(&slot, &mut g, next, change).await
    }

    /// Moves to the next stage at 0 %; a conflict at the last stage.
    pub async fn advance_stage(&self, id: &str) -> Result<Progress, ProgressError> {
        let (slot, mut g) = self.lock_live(id).await?;
        let next = machine::advance(live(&mut g), self.inner.clock.now())?;
        self.validate_stage(live(&mut g), &next)?;
        self.commit(&slot, &mut g, next, Change::Stage).await
    }

    /// Completes the progress (overall 100 %) with an optional result.
    pub async fn complete(&self, id: &str, result: Option<serde_json::Value>) -> Result<Progress, ProgressError> {
        self.finish(id, Finish::Complete(result)).await
    }

    /// Fails the progress with an error message.
    pub async fn fail(&self, id: &str, error: &str) -> Result<Progress, ProgressError> {
        self.finish(id, Finish::Fail(error.to_string())).await
    }

    /// Cancels the progress.
    pub async fn cancel(&self, id: &str) -> Result<Progress, ProgressError> {
        self.finish(id, Finish::Cancel).await
    }

    async fn finish(&self, id: &str, how: Finish) -> Result<Progress, ProgressError> {
        let (slot, mut g) = self.lock_live(id).await?;
        let next = machine::finish(live(&mut g), how, self.inner.clock.now())?;
        self.commit(&slot, &mut g, next, Change::Finished).await
    }

    fn validate_stage(&self, current: &ProgressRecord, next: &ProgressRecord) -> Result<(), ProgressError> {
        let plugins = self.inner.plugins.read().clone();
        if plugins.is_empty() {
            return Ok(());
        }
        let cur = current.to_progress();
        let to = next.stage_name().unwrap_or_default();
        for p in plugins.iter() {
            p.validate_stage_change(&cur, to).map_err(ProgressError::Conflict)?;
        }
        Ok(())
    }

    /// Stores (when durable), applies, emits and announces one change.
    async fn commit(&self, slot: &Arc<Slot>, g: &mut Guard, next: ProgressRecord, change: Change) -> Result<Progress, ProgressError> {
        if change != Change::Percent {
            self.inner.storage.save(&next).await?;
        }
        let SlotState::Live { rec, persisted } = &mut **g else { unreachable!("commit runs on a live slot") };
        if change != Change::Percent {
            *persisted = next.version;
        }
        *rec = next;
        let p = rec.to_progress();
        match change {
            Change::Percent => self.mark_dirty(slot),
            Change::Finished => self.unmap(slot),
            Change::Started | Change::Stage => {}
        }
        let topic = match change {
            Change::Percent | Change::Started => topics::UPDATE,
            Change::Stage => topics::STAGE,
            Change::Finished => p.status.topic(),
        };
        self.inner.emitter.emit(topic, &p);
        match change {
            Change::Finished => {
                ::metrics::counter!(m::FINISHED, "status" => p.status.as_str()).increment(1);
            }
            Change::Stage => {
                ::metrics::counter!(m::UPDATES).increment(1);
                ::metrics::counter!(m::STAGE_CHANGES).increment(1);
            }
            _ => ::metrics::counter!(m::UPDATES).increment(1),
        }
        let plugins = self.inner.plugins.read().clone();
        for plugin in plugins.iter() {
            match (change, p.status) {
                (Change::Percent | Change::Started, _) => plugin.on_update(&p).await,
                (Change::Stage, _) => plugin.on_stage_change(&p).await,
                (Change::Finished, ProgressStatus::Completed) => plugin.on_complete(&p).await,
                (Change::Finished, ProgressStatus::Failed) => plugin.on_fail(&p).await,
                (Change::Finished, _) => plugin.on_cancel(&p).await,
            }
        }
        Ok(p)
    }

    /// The current state (including percents not yet flushed to storage).
    pub async fn get(&self, id: &str) -> Result<Progress, ProgressError> {
        let slot = self.inner.slots.read().get(id).cloned();
        if let Some(slot) = slot
            && let SlotState::Live { rec, .. } = &*slot.state.lock().await
        {
            return Ok(rec.to_progress());
        }
        match self.inner.storage.load(id).await? {
            Some(rec) => Ok(rec.to_progress()),
            None => Err(ProgressError::NotFound(id.to_string())),
        }
    }

    /// Progress records ordered by id (see [`ListQuery`]), with in-memory percents.
    pub async fn list(&self, query: ListQuery) -> Result<Vec<Progress>, ProgressError> {
        let recs = self.inner.storage.list(query).await?;
        let mut out = Vec::with_capacity(recs.len());
        for rec in recs {
            let slot = self.inner.slots.read().get(rec.id.as_str()).cloned();
            let mut p = None;
            if let Some(slot) = slot
                && let SlotState::Live { rec: mem, .. } = &*slot.state.lock().await
                && mem.version > rec.version
            {
                p = Some(mem.to_progress());
            }
            out.push(p.unwrap_or_else(|| rec.to_progress()));
        }
        Ok(out)
    }

    /// Removes a progress in any state.
    pub async fn delete(&self, id: &str) -> Result<(), ProgressError> {
        loop {
            let slot = self.slot(id);
            let mut g = slot.state.clone().lock_owned().await;
            if let SlotState::Detached = &*g {
                continue;
            }
            let existed = self.inner.storage.delete(id).await?;
            *g = SlotState::Detached;
            self.unmap(&slot);
            return if existed { Ok(()) } else { Err(ProgressError::NotFound(id.to_string())) };
        }
    }

    /// Ids of the running progress records held in memory (for `*` subscribers).
    pub fn live_ids(&self) -> Vec<String> {
        self.inner.slots.read().keys().map(|k| k.to_string()).collect()
    }
}
