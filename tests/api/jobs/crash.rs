//! SIGKILL crash test: the real binary, external workers over HTTP, killed at random
//! points over many rounds, against a ledger of what was acknowledged.
//!
//! Checked: every acknowledged enqueue ends completed (nothing lost); a job whose
//! completion was acknowledged is never handed out again (duplicates only for jobs
//! that were in flight when the process died).

use crate::common::Child;
use parking_lot::Mutex;
use rand::Rng;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

#[derive(Default)]
struct Ledger {
    enqueued: HashSet<String>,
    completed: HashSet<String>,
    claims: HashMap<String, u32>,
    violations: Vec<String>,
}

const ENV: &[(&str, &str)] = &[("HEARTH__MODULES__SEARCH__ENABLED", "false")];

async fn round(base: String, ledger: Arc<Mutex<Ledger>>, stop: tokio_util::sync::CancellationToken) {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let mut tasks = Vec::new();
    // Two enqueuers: single jobs and small batches.
    for e in 0..2 {
        let (client, base, ledger, stop) = (client.clone(), base.clone(), ledger.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.is_cancelled() {
                n += 1;
                let body: Value = if e == 0 {
                    json!({"name": "crash", "payload": {"n": n}})
                } else {
                    json!([{"name": "crash"}, {"name": "crash"}, {"name": "crash"}])
                };
                let path = if e == 0 { "/api/jobs" } else { "/api/jobs/batch" };
                let Ok(r) = client.post(format!("{base}{path}")).json(&body).send().await else { break };
                if r.status().as_u16() != 201 {
                    break;
                }
                let Ok(v) = r.json::<Value>().await else { break };
                let ids: Vec<String> = match v.as_array() {
                    Some(a) => a.iter().map(|x| x["job_id"].as_str().unwrap().to_string()).collect(),
                    None => vec![v["job_id"].as_str().unwrap().to_string()],
                };
                ledger.lock().enqueued.extend(ids);
            }
        }));
    }
    for w in 0..3 {
        let (client, base, ledger, stop) = (client.clone(), base.clone(), ledger.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let worker = format!("w{w}");
            while !stop.is_cancelled() {
                let Ok(r) = client
                    .post(format!("{base}/api/jobs/claim"))
                    .json(&json!({"worker_id": worker, "max": 10, "wait_ms": 200}))
                    .send()
                    .await
                else {
                    break;
                };
                let Ok(jobs) = r.json::<Vec<Value>>().await else { break };
                let ids: Vec<String> = jobs.iter().map(|j| j["id"].as_str().unwrap().to_string()).collect();
                for id in &ids {
                    let mut l = ledger.lock();
                    *l.claims.entry(id.clone()).or_default() += 1;
                    if l.completed.contains(id) {
                        l.violations.push(format!("{id} handed out again after its completion was acknowledged"));
                    }
                }
                if w == 2 && !ids.is_empty() {
                    // This worker acknowledges its claims with one batch complete.
                    let items: Vec<Value> = ids.iter().map(|id| json!({"id": id})).collect();
                    let body = json!({"worker_id": worker, "jobs": items});
                    let Ok(r) = client.post(format!("{base}/api/jobs/complete")).json(&body).send().await else { return };
                    let Ok(v) = r.json::<Value>().await else { return };
                    for res in v["results"].as_array().into_iter().flatten() {
                        if res["status"] == "completed" {
                            ledger.lock().completed.insert(res["id"].as_str().unwrap().to_string());
                        }
                    }
                    continue;
                }
                for id in ids {
                    let Ok(r) = client.post(format!("{base}/api/jobs/{id}/complete")).json(&json!({"worker_id": worker})).send().await
                    else {
                        return;
                    };
                    if r.status().as_u16() == 200 {
                        ledger.lock().completed.insert(id);
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_loses_no_acknowledged_job() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let rounds = 12;
    for _ in 0..rounds {
        let mut child = Child::spawn(&data, ENV).await;
        let stop = tokio_util::sync::CancellationToken::new();
        let driver = tokio::spawn(round(child.base.clone(), ledger.clone(), stop.clone()));
        let ms = rand::rng().random_range(150..600);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        child.kill();
        stop.cancel();
        let _ = driver.await;
    }
    // Final run: drain everything and check the ledger.
    let child = Child::spawn(&data, ENV).await;
    let client = reqwest::Client::new();
    loop {
        let jobs: Vec<Value> = client
            .post(format!("{}/api/jobs/claim", child.base))
            .json(&json!({"worker_id": "final", "max": 500}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if jobs.is_empty() {
            break;
        }
        for j in jobs {
            let id = j["id"].as_str().unwrap().to_string();
            let mut l = ledger.lock();
            if l.completed.contains(&id) {
                l.violations.push(format!("{id} handed out again after its completion was acknowledged"));
            }
            drop(l);
            let r = client.post(format!("{}/api/jobs/{id}/complete", child.base)).json(&json!({})).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 200);
            ledger.lock().completed.insert(id);
        }
    }
    let l = ledger.lock();
    assert!(l.violations.is_empty(), "{:?}", &l.violations[..l.violations.len().min(5)]);
    assert!(l.enqueued.len() > 50, "the test drove too little work: {}", l.enqueued.len());
    let ids: Vec<String> = l.enqueued.iter().cloned().collect();
    drop(l);
    for chunk in ids.chunks(64) {
        let futs = chunk.iter().map(|id| {
            let c = client.clone();
            let url = format!("{}/api/jobs/{id}", child.base);
            async move { (id.clone(), c.get(url).send().await.unwrap().json::<Value>().await.unwrap()) }
        });
        for (id, j) in futures::future::join_all(futs).await {
            assert_eq!(j["status"], "completed", "acknowledged job {id} lost or unfinished: {j}");
        }
    }
    let l = ledger.lock();
    let dup = l.claims.values().filter(|&&n| n > 1).count();
    eprintln!(
        "crash test: {rounds} rounds, {} jobs acknowledged, {} completed, {dup} ran more than once (in flight at a kill)",
        l.enqueued.len(),
        l.completed.len()
    );
}
