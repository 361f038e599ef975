//! Crash and storage-fault loops over progress, notifications and the cache (the jobs
//! loop is `jobs/crash.rs`), against a ledger of what the API acknowledged:
//!
//! - SIGKILL of the real binary at random points, over several rounds, while clients
//!   write; after the last restart everything acknowledged is there.
//! - Injected write faults (`store::fault`): while the store cannot write, every write
//!   answers 507 `storage_full` or 503 `storage_unavailable` (never 500); once the fault
//!   clears, writes succeed again without a restart; after a restart nothing acknowledged
//!   (before, during or after the faults) is lost.

use crate::common::{Child, TestServer};
use parking_lot::Mutex;
use rand::Rng;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the API acknowledged.
#[derive(Default, Debug)]
struct Ledger {
    /// Progress id → completed (true) or only created.
    progress: BTreeMap<String, bool>,
    /// Notification id → read.
    notifications: BTreeMap<String, bool>,
    /// Notifications whose delete was acknowledged.
    deleted_notifications: BTreeSet<String>,
    /// Cache key → value.
    cache: BTreeMap<String, String>,
    /// Cache keys whose delete was acknowledged.
    deleted_keys: BTreeSet<String>,
    /// Writes refused with one of the driver's `refusals` statuses.
    refused: usize,
    /// Answers that break the rules (a 500, or a fault answered other than 503/507).
    violations: Vec<String>,
}

/// One client's view of a server: base URL, HTTP client, the ledger.
#[derive(Clone)]
struct Driver {
    base: String,
    client: reqwest::Client,
    ledger: Arc<Mutex<Ledger>>,
    /// Refused writes may answer these statuses (besides success); anything else is a
    /// violation. A dead process (SIGKILL) gives no answer, which is not recorded.
    refusals: &'static [u16],
}

impl Driver {
    /// Sends a request; `None` when the process gave no answer (killed).
    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> Option<(u16, Value)> {
        let mut r = self.client.request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.ok()?;
        let status = resp.status().as_u16();
        let text = resp.text().await.ok()?;
        let v = serde_json::from_str(&text).unwrap_or(Value::Null);
        self.judge(&format!("{method} {path}"), status, &text);
        Some((status, v))
    }

    /// Records a refusal, or a violation when `status` is neither success nor an allowed
    /// refusal.
    fn judge(&self, what: &str, status: u16, body: &str) {
        if self.refusals.contains(&status) {
            self.ledger.lock().refused += 1;
        } else if !(200..300).contains(&status) {
            self.ledger.lock().violations.push(format!("{what}: {status} {body}"));
        }
    }

    /// One step of each kind of write, numbered `n` by writer `w`; records what was
    /// acknowledged. Returns false once the server stops answering.
    async fn step(&self, w: usize, n: usize) -> bool {
        let id = format!("w{w}-{n}");
        // Progress: create, then complete.
        let Some((st, _)) = self.send("POST", "/api/progress", Some(json!({"id": id, "stages": ["a", "b"]}))).await else { return false };
        if st == 201 {
            self.ledger.lock().progress.insert(id.clone(), false);
            let Some((st, _)) = self.send("POST", &format!("/api/progress/{id}/complete"), Some(json!({}))).await else { return false };
            if st == 200 {
                self.ledger.lock().progress.insert(id.clone(), true);
            }
        }
        // Notifications: send, then read every other one and delete every third.
        let body = json!({"type": "info", "title": id, "user_id": format!("crash{w}")});
        let Some((st, v)) = self.send("POST", "/api/notifications", Some(body)).await else { return false };
        if st == 200 {
            let nid = v["notification_id"].as_str().unwrap().to_string();
            self.ledger.lock().notifications.insert(nid.clone(), false);
            if n % 2 == 0 {
                let Some((st, _)) = self.send("POST", &format!("/api/notifications/{nid}/read"), Some(json!({}))).await else {
                    return false;
                };
                if st == 200 {
                    self.ledger.lock().notifications.insert(nid.clone(), true);
                }
            }
            if n % 3 == 0 {
                // While the delete is in flight the notification may or may not exist.
                let read = self.ledger.lock().notifications.remove(&nid).unwrap_or(false);
                let Some((st, _)) = self.send("DELETE", &format!("/api/notifications/{nid}"), None).await else { return false };
                let mut l = self.ledger.lock();
                if st == 200 {
                    l.deleted_notifications.insert(nid);
                } else {
                    l.notifications.insert(nid, read);
                }
            }
        }
        // Cache: a value under a fresh key (acknowledged = durable in L2); delete every fourth.
        let value = format!("value of {id}");
        let r = self.client.put(format!("{}/api/cache/{id}?ttl=86400", self.base)).body(value.clone()).send().await;
        let Ok(r) = r else { return false };
        let st = r.status().as_u16();
        let Ok(text) = r.text().await else { return false };
        self.judge(&format!("PUT /api/cache/{id}"), st, &text);
        if (200..300).contains(&st) {
            self.ledger.lock().cache.insert(id.clone(), value);
            if n % 4 == 0 {
                // While the delete is in flight the key may or may not exist.
                let value = self.ledger.lock().cache.remove(&id);
                let Some((st, _)) = self.send("DELETE", &format!("/api/cache/{id}"), None).await else { return false };
                let mut l = self.ledger.lock();
                if st == 200 {
                    l.deleted_keys.insert(id);
                } else if let Some(v) = value {
                    l.cache.insert(id, v);
                }
            }
        }
        true
    }
}

/// Checks every acknowledged write against a server (after a restart).
async fn verify(base: &str, ledger: &Ledger) {
    let c = reqwest::Client::new();
    let get = |path: String| {
        let c = c.clone();
        async move {
            let r = c.get(path).send().await.unwrap();
            let st = r.status().as_u16();
            (st, r.text().await.unwrap())
        }
    };
    let mut lost = Vec::new();
    for (id, completed) in &ledger.progress {
        let (st, body) = get(format!("{base}/api/progress/{id}")).await;
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if st != 200 || (*completed && v["status"] != "completed") {
            lost.push(format!("progress {id} (completed: {completed}): {st} {body}"));
        }
    }
    for (id, read) in &ledger.notifications {
        let (st, body) = get(format!("{base}/api/notifications/{id}")).await;
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if st != 200 || (*read && v["read"] != true) {
            lost.push(format!("notification {id} (read: {read}): {st} {body}"));
        }
    }
    for id in &ledger.deleted_notifications {
        let (st, _) = get(format!("{base}/api/notifications/{id}")).await;
        if st != 404 {
            lost.push(format!("deleted notification {id} is back ({st})"));
        }
    }
    for (key, value) in &ledger.cache {
        let (st, body) = get(format!("{base}/api/cache/{key}")).await;
        if st != 200 || &body != value {
            lost.push(format!("cache {key}: {st} {body}"));
        }
    }
    for key in &ledger.deleted_keys {
        let (st, _) = get(format!("{base}/api/cache/{key}")).await;
        if st != 404 {
            lost.push(format!("deleted cache key {key} is back ({st})"));
        }
    }
    assert!(lost.is_empty(), "{} acknowledged writes lost:\n{}", lost.len(), lost[..lost.len().min(10)].join("\n"));
}

const ENV: &[(&str, &str)] = &[("HEARTH__MODULES__SEARCH__ENABLED", "false")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_loses_no_acknowledged_progress_notification_or_cache_write() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let rounds = 8;
    for round in 0..rounds {
        let mut child = Child::spawn(&data, ENV).await;
        let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
        // A killed process gives no answer; a 500 or a 5xx refusal is a violation here.
        let driver = Driver { base: child.base.clone(), client, ledger: ledger.clone(), refusals: &[] };
        let writers: Vec<_> = (0..3)
            .map(|w| {
                let d = driver.clone();
                tokio::spawn(async move {
                    let mut n = 0;
                    while d.step(w + 3 * round, n).await {
                        n += 1;
                    }
                })
            })
            .collect();
        let ms = rand::rng().random_range(200..700);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        child.kill();
        for w in writers {
            let _ = w.await;
        }
    }
    let child = Child::spawn(&data, ENV).await;
    let l = ledger.lock();
    assert!(l.violations.is_empty(), "{:?}", &l.violations[..l.violations.len().min(5)]);
    assert!(l.progress.len() > 20 && l.notifications.len() > 20 && l.cache.len() > 20, "the test drove too little work: {l:?}");
    verify(&child.base, &l).await;
    eprintln!(
        "crash loop: {rounds} SIGKILLs; acknowledged {} progress records, {} notifications (+{} deletes), {} cache values (+{} deletes)",
        l.progress.len(),
        l.notifications.len(),
        l.deleted_notifications.len(),
        l.cache.len(),
        l.deleted_keys.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_faults_are_507_or_503_never_500_and_heal_without_losing_acknowledged_writes() {
    use hearth::store::fault::{Fault, FaultSwitch, FaultyFile};
    use hearth::store::{Store, StoreOptions};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let switch = FaultSwitch::default();
    let tweak = |c: &mut hearth::Config| {
        c.server.min_free_disk_bytes = 0;
        c.modules.search.enabled = false;
    };
    let opts = StoreOptions { min_free_bytes: 0, ..StoreOptions::default() };
    let store = Store::open_with_backend(&data, opts, FaultyFile::maker(&data, switch.clone())).unwrap();
    let s = TestServer::start_built(&data, tweak, |b| b.store(store)).await;
    eprintln!("fault loop: started");
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let driver = Driver { base: format!("http://{}", s.addr), client, ledger: ledger.clone(), refusals: &[503, 507] };
    let mut n = 0;
    for (round, fault) in [Fault::DiskFull, Fault::IoError, Fault::DiskFull, Fault::IoError].into_iter().enumerate() {
        // Healthy: writes are acknowledged.
        for _ in 0..3 {
            assert!(driver.step(round, n).await);
            n += 1;
        }
        eprintln!("fault loop: round {round}, {fault:?} on");
        switch.set(fault);
        let (before, refused_before) = {
            let l = ledger.lock();
            (l.violations.len(), l.refused)
        };
        for _ in 0..3 {
            assert!(driver.step(round, n).await);
            n += 1;
        }
        {
            let l = ledger.lock();
            assert_eq!(l.violations.len(), before, "{fault:?}: {:?}", l.violations);
            assert!(l.refused > refused_before, "the {fault:?} refused no write: nothing was injected");
        }
        eprintln!("fault loop: round {round}, {fault:?} off");
        switch.set(Fault::None);
        // Healed without a restart: writes work again.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = driver.client.put(format!("{}/api/cache/heal-{round}", driver.base)).body("ok").send().await.unwrap();
            if r.status() == 200 {
                ledger.lock().cache.insert(format!("heal-{round}"), "ok".into());
                break;
            }
            assert!(Instant::now() < deadline, "writes must resume once the {fault:?} clears, got {}", r.status());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for _ in 0..3 {
            assert!(driver.step(round, n).await);
            n += 1;
        }
    }
    let l = ledger.lock();
    assert!(l.violations.is_empty(), "{:?}", l.violations);
    s.stop().await;
    // A restart on a plain store: everything acknowledged is there.
    let s = TestServer::start_in(&data, tweak).await;
    verify(&format!("http://{}", s.addr), &l).await;
    eprintln!(
        "fault loop: 4 faults, {} writes refused with 507/503; acknowledged {} progress records, {} notifications, {} cache values",
        l.refused,
        l.progress.len(),
        l.notifications.len(),
        l.cache.len()
    );
}
