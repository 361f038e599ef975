//! A seeded, deterministic simulation of the job queue under storage faults, clock jumps
//! and restarts, checked against the model (`model.rs`) after every step.
//!
//! The queue runs on a real redb store opened through [`FaultyFile`], whose switch makes
//! every write fail as a full disk or a broken one would; the clock is a [`ManualClock`]
//! that jumps forward (past leases, too) and back; restarts drop the queue and the store
//! and open them again on the same file. One random generator, seeded from
//! `HEARTH_SIM_SEED` (a fixed default otherwise), chooses every step, so a failure
//! replays exactly: the seed is printed when a run fails.
//!
//! Checked after every step while the storage works: every acknowledged job exists with
//! the model's status and attempts (nothing acknowledged is lost, and an answer that was
//! an error changed nothing), each job shows in exactly one status listing, the queue's
//! counts add up, claims follow the model (most urgent first, never a job whose lease
//! runs), and a worker that does not hold a lease cannot end the run.

use super::model::{LEASE_MS, M, Model};
use super::*;
use crate::store::fault::{Fault, FaultSwitch, FaultyFile};
use crate::store::{StoreError, StoreOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The seed when `HEARTH_SIM_SEED` is not set.
const DEFAULT_SEED: u64 = 0x4EA2_7019;
/// Runs (seed, seed + 1, ...) and steps per run.
const RUNS: u64 = 4;
const STEPS: usize = 300;
const MAX_ATTEMPTS: u32 = 3;

/// The queue on a faulty store, and what a restart needs.
struct Sim {
    dir: tempfile::TempDir,
    switch: FaultSwitch,
    clock: ManualClock,
    store: Store,
    q: JobQueue,
}

fn sim_config() -> JobQueueConfig {
    let mut c = JobQueueConfig::default();
    c.workers.clear();
    // Nothing final is deleted during a run: the model keeps every job.
    c.retention.completed_hours = 10 * 365 * 24;
    c.retention.dead_days = 10 * 365;
    c
}

impl Sim {
    fn open(dir: tempfile::TempDir, switch: FaultSwitch, clock: ManualClock) -> Sim {
        let options = StoreOptions { min_free_bytes: 0, ..StoreOptions::default() };
        let store = Store::open_with_backend(dir.path(), options, FaultyFile::maker(dir.path(), switch.clone())).expect("open the store");
        let q = build(&store, &clock, sim_config());
        Sim { dir, switch, clock, store, q }
    }

    fn now(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    /// Clears the fault and waits until the store takes writes again (it re-opens the
    /// database after an I/O error, and retries a full one, on its own).
    async fn heal(&self) {
        self.switch.set(Fault::None);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while self.store.write(|_txn| Ok::<(), StoreError>(())).await.is_err() {
            assert!(std::time::Instant::now() < deadline, "the store must heal once the fault clears");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Stops the process and starts it again on the same file (the fault cleared first:
    /// opening redb writes).
    async fn restart(self) -> Sim {
        self.heal().await;
        let Sim { dir, switch, clock, store, q } = self;
        drop(q);
        drop(store);
        Sim::open(dir, switch, clock)
    }
}

/// Prints the seed of a run that panics.
struct SeedGuard(u64);

impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("job queue simulation failed with seed {0}; replay with HEARTH_SIM_SEED={0}", self.0);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_survives_faults_clock_jumps_and_restarts_like_its_model() {
    let base = std::env::var("HEARTH_SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_SEED);
    for seed in base..base + RUNS {
        let _guard = SeedGuard(seed);
        simulate(seed).await;
    }
}

async fn simulate(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let start = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    let mut sim = Sim::open(tempfile::tempdir().unwrap(), FaultSwitch::default(), ManualClock::new(start));
    let mut m = Model::new(MAX_ATTEMPTS);
    let mut faulty = false;
    let mut stats = Stats::default();
    for step in 0..STEPS {
        stats.steps_on_faulty_storage += usize::from(faulty);
        let context = format!("seed {seed}, step {step}");
        let pick = rng.random_range(0..100);
        let any = |rng: &mut StdRng, m: &Model| (!m.jobs.is_empty()).then(|| rng.random_range(0..m.jobs.len()));
        // Mostly a running job (ends of other jobs are conflicts, tried less often).
        let running = |rng: &mut StdRng, m: &Model| {
            let live: Vec<usize> = (0..m.jobs.len()).filter(|&i| matches!(m.jobs[i].state, M::Running { .. })).collect();
            if !live.is_empty() && rng.random_bool(0.8) { Some(live[rng.random_range(0..live.len())]) } else { any(rng, m) }
        };
        match pick {
            0..=19 => {
                let n = rng.random_range(1..=4);
                let reqs: Vec<(u8, u64)> =
                    (0..n).map(|_| (rng.random_range(0..10), if rng.random_bool(0.25) { rng.random_range(1..120) } else { 0 })).collect();
                let batch = reqs
                    .iter()
                    .map(|&(p, delay)| EnqueueRequest {
                        max_attempts: Some(MAX_ATTEMPTS),
                        delay: (delay > 0).then_some(delay as f64),
                        ..req(p)
                    })
                    .collect();
                let now = sim.now();
                match sim.q.enqueue_batch(batch).await {
                    Ok(answers) => {
                        for (a, (p, delay)) in answers.into_iter().zip(reqs) {
                            m.enqueued(a.job_id, p, now + delay as i64 * 1000, now);
                        }
                    }
                    Err(JobError::Store(_)) if faulty => stats.refused += 1,
                    Err(e) => panic!("{context}: enqueue failed on working storage: {e}"),
                }
            }
            20..=34 => {
                let n = rng.random_range(1..=3);
                let expect = m.claim(n, sim.now());
                let got = sim
                    .q
                    .claim(ClaimRequest {
                        queues: vec!["default".into()],
                        worker_id: "w".into(),
                        names: None,
                        max: Some(n),
                        lease_seconds: Some((LEASE_MS / 1000) as u64),
                        wait_ms: None,
                    })
                    .await
                    .unwrap_or_else(|e| panic!("{context}: claims live in memory and cannot fail: {e}"));
                let got: Vec<String> = got.into_iter().map(|j| j.id).collect();
                if got != expect {
                    let show: Vec<_> = got.iter().chain(&expect).filter_map(|id| m.jobs.iter().find(|j| &j.id == id)).collect();
                    panic!("{context}: claim order: got {got:?}, the model expects {expect:?}; now {}: {show:#?}", sim.now());
                }
            }
            35..=46 => {
                if let Some(i) = running(&mut rng, &m) {
                    let r = sim.q.complete(&m.jobs[i].id, Some("w"), Some(json!({"step": step}))).await;
                    stats.count(&r);
                    m.end(i, None, sim.now(), &r, faulty);
                }
            }
            47..=56 => {
                if let Some(i) = running(&mut rng, &m) {
                    let retry = rng.random_bool(0.7);
                    let r = sim.q.fail(&m.jobs[i].id, Some("w"), "simulated failure", retry).await;
                    stats.count(&r);
                    m.end(i, Some(retry), sim.now(), &r, faulty);
                }
            }
            57..=61 => {
                if let Some(i) = any(&mut rng, &m) {
                    let r = sim.q.cancel(&m.jobs[i].id).await;
                    stats.count(&r);
                    m.cancel(i, sim.now(), &r, faulty);
                }
            }
            62..=65 => {
                if let Some(i) = running(&mut rng, &m) {
                    let r = sim.q.heartbeat(&m.jobs[i].id, Some("w"), None, None).await;
                    m.heartbeat(i, sim.now(), r.is_ok());
                }
            }
            66..=69 => {
                // A worker that holds no lease cannot end a run, whatever its state.
                if let Some(i) = running(&mut rng, &m) {
                    let r = sim.q.complete(&m.jobs[i].id, Some("thief"), None).await;
                    assert!(
                        matches!(r, Err(JobError::Conflict(_))) || (faulty && matches!(r, Err(JobError::Store(_)))),
                        "{context}: an end by a worker without the lease must be refused, got {r:?}"
                    );
                }
            }
            70..=81 => {
                let jump = match rng.random_range(0..3) {
                    0 => Duration::seconds(rng.random_range(1..30)),
                    1 => Duration::seconds(rng.random_range(61..300)),
                    _ => -Duration::seconds(rng.random_range(1..30)),
                };
                sim.clock.advance(jump);
                stats.clock_jumps += 1;
                tick(&sim, &mut m, faulty).await;
            }
            82..=87 => tick(&sim, &mut m, faulty).await,
            88..=93 => {
                if faulty {
                    sim.heal().await;
                    faulty = false;
                } else {
                    sim.switch.set(if rng.random_bool(0.5) { Fault::DiskFull } else { Fault::IoError });
                    faulty = true;
                }
            }
            _ => {
                stats.restarts += 1;
                sim = sim.restart().await;
                faulty = false;
                m.restart(sim.now());
            }
        }
        if !faulty {
            check(&sim, &m, &context).await;
        }
    }
    sim.heal().await;
    check(&sim, &m, &format!("seed {seed}, end")).await;
    let finals = m.jobs.iter().filter(|j| Model::status(j).is_final()).count();
    eprintln!("seed {seed}: {} jobs ({finals} final), {stats:?}", m.jobs.len());
}

/// What a run did, printed at its end (`--nocapture`) to show the faults bit.
#[derive(Debug, Default)]
struct Stats {
    steps_on_faulty_storage: usize,
    /// Writes answered with a storage error (and, per the model, not applied).
    refused: usize,
    /// Ends and cancels acknowledged.
    acknowledged: usize,
    clock_jumps: usize,
    restarts: usize,
}

impl Stats {
    fn count(&mut self, r: &Result<Job, JobError>) {
        match r {
            Ok(_) => self.acknowledged += 1,
            Err(JobError::Store(_)) => self.refused += 1,
            Err(_) => {}
        }
    }
}

/// A maintenance pass; the model expires what it expects, reading the queue only to learn
/// which expiries a faulty store did not record.
async fn tick(sim: &Sim, m: &mut Model, faulty: bool) {
    sim.q.tick().await;
    let mut observed = HashMap::new();
    if faulty {
        for j in &m.jobs {
            if let Ok(got) = sim.q.get_status(&j.id).await {
                observed.insert(j.id.clone(), got.status);
            }
        }
    }
    m.tick(sim.now(), faulty, &|id| observed.get(id).copied());
}

/// The model's checks, plus: every job shows in exactly one status listing, and the
/// queue's counts add up to the model's jobs.
async fn check(sim: &Sim, m: &Model, context: &str) {
    m.check(&sim.q, context).await;
    let mut seen: HashMap<String, JobStatus> = HashMap::new();
    for status in JobStatus::ALL {
        let mut cursor = None;
        loop {
            let q = ListQuery { status: Some(status.as_str().into()), limit: Some(1000), cursor, ..ListQuery::default() };
            let page = sim.q.list(q).await.unwrap_or_else(|e| panic!("{context}: list: {e}"));
            for j in page.jobs {
                assert_eq!(j.status, status, "{context}: a listing by status shows only that status");
                if let Some(other) = seen.insert(j.id.clone(), status) {
                    panic!("{context}: job {} is listed as both {other:?} and {status:?}", j.id);
                }
            }
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
    }
    assert_eq!(seen.len(), m.jobs.len(), "{context}: every job, and only the model's jobs, is listed");
    for j in &m.jobs {
        assert_eq!(seen.get(&j.id), Some(&Model::status(j)), "{context}: listing of {}", j.id);
    }
    let queues = sim.q.queues().await.unwrap_or_else(|e| panic!("{context}: queues: {e}"));
    let total: u64 = queues.iter().flat_map(|q| q.counts.values()).sum();
    assert_eq!(total, m.jobs.len() as u64, "{context}: the queue's counts add up: {queues:?}");
}
