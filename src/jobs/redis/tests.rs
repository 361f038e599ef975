//! The Redis broker against the conformance suite and redis-server crashes, on a private
//! redis-server (append-only, `appendfsync always`) per test.

use super::*;
use crate::cluster::RedisConfig;
use crate::cluster::test_server::RedisServer;
use crate::jobs::broker::{JobBroker, RunEnd};
use crate::jobs::conformance::{self, Harness, at, job, t0};

/// Brokers on one private server; each fresh one under a key prefix of its own, a re-open
/// reconnects under the same prefix (as a restarted node does).
struct OnServer {
    server: RedisServer,
    made: usize,
}

impl OnServer {
    fn new() -> OnServer {
        OnServer { server: RedisServer::start(), made: 0 }
    }

    async fn open(&self) -> RedisBroker {
        let cfg = RedisConfig { url: Some(self.server.url()), key_prefix: format!("t{}:", self.made), ..Default::default() };
        RedisBroker::new(Redis::connect(&cfg).await.expect("connects to the test redis-server"))
    }
}

impl Harness<RedisBroker> for OnServer {
    async fn fresh(&mut self, _now: DateTime<Utc>) -> RedisBroker {
        self.made += 1;
        self.open().await
    }

    async fn reopen(&mut self, broker: RedisBroker, _now: DateTime<Utc>) -> RedisBroker {
        drop(broker);
        self.open().await
    }
}

#[tokio::test]
async fn the_redis_broker_passes_the_conformance_suite() {
    conformance::run(OnServer::new()).await;
}

fn nobody() -> impl Fn(&Job) + Send + Sync {
    |_: &Job| {}
}

#[tokio::test]
async fn acknowledged_enqueues_and_completes_survive_a_crash_of_redis_server() {
    let mut h = OnServer::new();
    let b = h.fresh(t0()).await;
    let jobs = (0..20).map(|i| NewJob { job: job(&format!("j{i}")), chosen_id: true }).collect();
    b.enqueue(jobs, t0(), &nobody()).await.expect("enqueue");
    let holder = Holder::Worker { id: "w", lease_ms: 60_000 };
    let claimed = b.claim(&["default".to_string()], Names::Except(&[]), holder, 5, t0()).await.expect("claim").jobs;
    let ends = claimed
        .iter()
        .map(|j| RunEnd { id: j.id.clone(), worker_id: Some("w".into()), outcome: crate::jobs::broker::RunOutcome::Complete(None) })
        .collect();
    assert!(b.finish(ends, at(1)).await.results.iter().all(Result::is_ok));
    h.server.crash_and_restart();
    let b = h.reopen(b, at(2)).await;
    let stats = b.queue_stats(at(2)).await.expect("stats");
    let q = stats.iter().find(|s| s.name == "default").expect("the queue survived");
    assert_eq!(
        (q.count(JobStatus::Completed), q.count(JobStatus::Pending)),
        (5, 15),
        "every acknowledged change survived kill -9 of redis-server"
    );
}

#[tokio::test]
async fn two_nodes_share_one_queue_and_each_job_runs_once() {
    let mut h = OnServer::new();
    let a = h.fresh(t0()).await;
    let b = h.open().await;
    let jobs = (0..200).map(|i| NewJob { job: job(&format!("j{i}")), chosen_id: true }).collect();
    a.enqueue(jobs, t0(), &nobody()).await.expect("enqueue");
    let q = ["default".to_string()];
    let mut taken = std::collections::HashSet::new();
    let mut per_node = [0usize; 2];
    loop {
        let (ca, cb) = tokio::join!(
            a.claim(&q, Names::Except(&[]), Holder::Worker { id: "wa", lease_ms: 60_000 }, 7, at(1)),
            b.claim(&q, Names::Except(&[]), Holder::Worker { id: "wb", lease_ms: 60_000 }, 7, at(1))
        );
        let (ca, cb) = (ca.expect("claim on a").jobs, cb.expect("claim on b").jobs);
        if ca.is_empty() && cb.is_empty() {
            break;
        }
        per_node[0] += ca.len();
        per_node[1] += cb.len();
        for j in ca.iter().chain(&cb) {
            assert!(taken.insert(j.id.clone()), "job {} was claimed twice", j.id);
        }
    }
    assert_eq!(taken.len(), 200, "every job was claimed");
    assert!(per_node[0] > 0 && per_node[1] > 0, "both nodes took jobs: {per_node:?}");
}

#[tokio::test]
async fn a_purge_deletes_only_final_jobs_of_its_queue_and_status() {
    let mut h = OnServer::new();
    let b = h.fresh(t0()).await;
    let jobs = (0..6).map(|i| NewJob { job: job(&format!("j{i}")), chosen_id: true }).collect();
    b.enqueue(jobs, t0(), &nobody()).await.expect("enqueue");
    let holder = Holder::Worker { id: "w", lease_ms: 60_000 };
    let claimed = b.claim(&["default".to_string()], Names::Except(&[]), holder, 4, t0()).await.expect("claim").jobs;
    let ends = claimed
        .iter()
        .map(|j| RunEnd { id: j.id.clone(), worker_id: Some("w".into()), outcome: crate::jobs::broker::RunOutcome::Complete(None) })
        .collect();
    assert!(b.finish(ends, at(1)).await.results.iter().all(Result::is_ok));
    assert_eq!(b.delete_queue_jobs("default", JobStatus::Pending, 10).await.unwrap(), 0, "a live status deletes nothing");
    assert_eq!(b.delete_queue_jobs("other", JobStatus::Completed, 10).await.unwrap(), 0);
    assert_eq!(b.delete_queue_jobs("default", JobStatus::Completed, 3).await.unwrap(), 3, "bounded by the limit");
    assert_eq!(b.delete_queue_jobs("default", JobStatus::Completed, 3).await.unwrap(), 1);
    let q = b.queue_stats(at(2)).await.unwrap().into_iter().find(|s| s.name == "default").unwrap();
    assert_eq!((q.count(JobStatus::Completed), q.count(JobStatus::Pending)), (0, 2));
    assert_eq!(
        b.list(ListFilter { limit: 50, ..Default::default() }).await.unwrap().jobs.len(),
        2,
        "purged jobs are gone from the listing"
    );
}
