//! A job hash as the scripts return it ([`Row`]), and a decided state as `APPLY` takes it
//! ([`apply_args`]).

use crate::jobs::error::JobError;
use crate::jobs::model::{Job, JobStatus};
use chrono::{DateTime, Utc};

/// One job as stored: the record with the fields scripts change applied, and what the
/// broker needs besides.
#[derive(Debug, Clone)]
pub(super) struct Row {
    pub job: Job,
    /// A cancel was requested while it runs.
    pub cancel_requested: bool,
    /// The revision the state was read at (`APPLY` writes only if it is unchanged).
    pub rev: String,
}

/// The fields of a row, in the order of `ROW` in the scripts.
pub(super) type RawRow = Vec<Option<String>>;

pub(super) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn time(v: &Option<String>) -> Option<DateTime<Utc>> {
    v.as_deref().filter(|s| !s.is_empty()).and_then(|s| s.parse::<f64>().ok()).and_then(|m| DateTime::from_timestamp_millis(m as i64))
}

fn text(v: &Option<String>) -> Option<String> {
    v.clone().filter(|s| !s.is_empty())
}

fn corrupt(id: &str, what: &str) -> JobError {
    JobError::Store(crate::store::StoreError::Corrupt(format!("job {id} in redis: {what}")))
}

impl Row {
    /// Decodes a row; `None` for an empty one (no such job).
    pub fn decode(raw: RawRow) -> Result<Option<Row>, JobError> {
        let [j, st, a, w, lu, sa, fa, rsn, cr, pid, sq, rev, _inp] = match <[Option<String>; 13]>::try_from(raw) {
            Ok(r) => r,
            Err(r) if r.is_empty() => return Ok(None),
            Err(r) => return Err(corrupt("?", &format!("a row of {} fields", r.len()))),
        };
        let json = j.ok_or_else(|| corrupt("?", "no record"))?;
        let mut job: Job = serde_json::from_str(&json).map_err(|e| corrupt("?", &e.to_string()))?;
        let id = job.id.clone();
        job.status = st.as_deref().and_then(JobStatus::parse).ok_or_else(|| corrupt(&id, "unknown status"))?;
        job.attempts = a.as_deref().and_then(|s| s.parse::<f64>().ok()).map(|f| f as u32).unwrap_or(job.attempts);
        job.worker_id = text(&w);
        job.lease_until = time(&lu);
        job.started_at = time(&sa);
        job.finished_at = time(&fa);
        job.reason = text(&rsn);
        job.progress_id = text(&pid).or(job.progress_id);
        job.seq = sq.as_deref().and_then(|s| s.parse::<f64>().ok()).map(|f| f as u64).unwrap_or(job.seq);
        Ok(Some(Row { job, cancel_requested: cr.as_deref() == Some("1"), rev: rev.unwrap_or_default() }))
    }
}

/// A decided state for `APPLY`.
pub(super) struct Write<'a> {
    pub next: &'a Job,
    pub rev: &'a str,
    /// `-`, `expired` or `revive` (see the script).
    pub guard: &'static str,
}

fn opt_ms(t: Option<DateTime<Utc>>) -> Vec<u8> {
    t.map(|t| ms(t).to_string()).unwrap_or_default().into_bytes()
}

/// Appends the arguments of `w` to `args`.
pub(super) fn apply_args(w: &Write<'_>, args: &mut Vec<Vec<u8>>) -> Result<(), JobError> {
    let j = w.next;
    let json = serde_json::to_vec(j).map_err(|e| JobError::Store(crate::store::StoreError::Codec(e.to_string())))?;
    args.extend([
        j.id.as_bytes().to_vec(),
        w.rev.as_bytes().to_vec(),
        w.guard.as_bytes().to_vec(),
        json,
        j.status.as_str().as_bytes().to_vec(),
        j.attempts.to_string().into_bytes(),
        j.worker_id.clone().unwrap_or_default().into_bytes(),
        opt_ms(j.lease_until),
        opt_ms(j.started_at),
        opt_ms(j.finished_at),
        j.reason.clone().unwrap_or_default().into_bytes(),
        ms(j.run_at).to_string().into_bytes(),
    ]);
    Ok(())
}
