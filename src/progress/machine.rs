//! The progress state machine: validation and transitions as pure functions on
//! [`ProgressRecord`]s. Nothing here touches storage or the clock; the tracker decides
//! durability from the returned [`Change`].

use super::error::ProgressError;
use super::model::{NewProgress, ProgressRecord, ProgressStatus, ProgressUpdate};
use chrono::{DateTime, Utc};

/// Longest accepted progress id.
pub const MAX_ID_LEN: usize = 200;
/// Most stages a progress may have.
pub const MAX_STAGES: usize = 100;
/// Longest stage name.
pub const MAX_STAGE_NAME: usize = 200;
/// Longest failure message.
pub const MAX_ERROR_LEN: usize = 10_000;
/// Largest metadata (or result) object, as JSON text.
pub const MAX_JSON_BYTES: usize = 64 * 1024;

/// What a transition changed. Everything except [`Change::Percent`] is written to storage
/// before it is acknowledged; `Percent` is broadcast at once and persisted coalesced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Only the percent within the current stage moved.
    Percent,
    /// The first update: `pending` became `processing`.
    Started,
    /// The current stage changed.
    Stage,
    /// A terminal state was reached.
    Finished,
}

/// Checks an id: 1 to 200 characters from `A-Z a-z 0-9 - _ . : @`.
pub fn validate_id(id: &str) -> Result<(), ProgressError> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(ProgressError::invalid("id", format!("must be 1 to {MAX_ID_LEN} characters")));
    }
    if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:@".contains(&b)) {
        return Err(ProgressError::invalid("id", "may only contain letters, digits and - _ . : @"));
    }
    Ok(())
}

fn check_json_size(field: &str, v: &serde_json::Value) -> Result<(), ProgressError> {
    let len = serde_json::to_string(v).map(|s| s.len()).unwrap_or(usize::MAX);
    if len > MAX_JSON_BYTES {
        return Err(ProgressError::invalid(field, format!("must be at most {MAX_JSON_BYTES} bytes of JSON")));
    }
    Ok(())
}

/// Validates a creation request and builds the initial (`pending`, version 1) record.
pub fn new_record(req: NewProgress, now: DateTime<Utc>) -> Result<ProgressRecord, ProgressError> {
    let id = match req.id {
        Some(id) => {
            validate_id(&id)?;
            id
        }
        None => uuid::Uuid::now_v7().to_string(),
    };
    if req.stages.len() > MAX_STAGES {
        return Err(ProgressError::invalid("stages", format!("at most {MAX_STAGES} stages")));
    }
    for (i, s) in req.stages.iter().enumerate() {
        if s.name.trim().is_empty() || s.name.len() > MAX_STAGE_NAME {
            return Err(ProgressError::invalid(format!("stages[{i}].name"), format!("must be 1 to {MAX_STAGE_NAME} characters")));
        }
        if !s.weight.is_finite() || s.weight <= 0.0 || s.weight > 1e9 {
            return Err(ProgressError::invalid(format!("stages[{i}].weight"), "must be a positive number up to 1e9"));
        }
        if req.stages[..i].iter().any(|p| p.name == s.name) {
            return Err(ProgressError::invalid(format!("stages[{i}].name"), format!("duplicate stage '{}'", s.name)));
        }
    }
    let metadata = match req.metadata {
        serde_json::Value::Null => serde_json::Value::Object(Default::default()),
        v @ serde_json::Value::Object(_) => v,
        _ => return Err(ProgressError::invalid("metadata", "must be a JSON object")),
    };
    check_json_size("metadata", &metadata)?;
    Ok(ProgressRecord {
        id,
        stages: req.stages,
        stage_index: 0,
        progress: 0.0,
        status: ProgressStatus::Pending,
        metadata,
        result: None,
        error: None,
        eta_seconds: None,
        created_at: now,
        updated_at: now,
        started_at: None,
        finished_at: None,
        version: 1,
        rate_since: None,
        rate_base: 0.0,
    })
}

fn check_open(rec: &ProgressRecord) -> Result<(), ProgressError> {
    if rec.status.is_terminal() {
        return Err(ProgressError::Conflict(format!("progress '{}' is {}; it can no longer change", rec.id, rec.status.as_str())));
    }
    Ok(())
}

/// Marks the record started (if it was pending) and bumps version and timestamp.
fn touch(rec: &mut ProgressRecord, now: DateTime<Utc>) {
    if rec.status == ProgressStatus::Pending {
        rec.status = ProgressStatus::Processing;
        rec.started_at = Some(now);
    }
    rec.updated_at = now;
    rec.version += 1;
}

/// Re-estimates the ETA from the overall rate observed since the rate window opened (the
/// first update). Moving backwards (below `previous` overall) reopens the window.
fn refresh_eta(rec: &mut ProgressRecord, previous: f64, now: DateTime<Utc>) {
    let overall = rec.overall();
    let Some(since) = rec.rate_since else {
        rec.rate_since = Some(now);
        rec.rate_base = overall;
        rec.eta_seconds = None;
        return;
    };
    if overall < previous {
        rec.rate_since = Some(now);
        rec.rate_base = overall;
        rec.eta_seconds = None;
        return;
    }
    let secs = (now - since).num_milliseconds() as f64 / 1000.0;
    let gained = overall - rec.rate_base;
    if secs > 0.0 && gained > 0.0 {
        let eta = (100.0 - overall) / (gained / secs);
        rec.eta_seconds = Some(eta.ceil().clamp(0.0, u64::MAX as f64 / 2.0) as u64);
    }
}

/// Applies a percent/stage update. See [`ProgressUpdate`] for the rules.
pub fn apply_update(rec: &ProgressRecord, u: &ProgressUpdate, now: DateTime<Utc>) -> Result<(ProgressRecord, Change), ProgressError> {
    check_open(rec)?;
    if let Some(p) = u.progress
        && (!p.is_finite() || !(0.0..=100.0).contains(&p))
    {
        return Err(ProgressError::invalid("progress", "must be a number between 0 and 100"));
    }
    let current = rec.stage_index as usize;
    let target = match &u.stage {
        None => current,
        Some(_) if rec.stages.is_empty() => return Err(ProgressError::invalid("stage", "this progress has no stages")),
        Some(name) => match rec.stages.iter().position(|s| &s.name == name) {
            Some(i) => i,
            None => {
                let known: Vec<&str> = rec.stages.iter().map(|s| s.name.as_str()).collect();
                return Err(ProgressError::invalid("stage", format!("unknown stage '{name}'; stages are {known:?}")));
            }
        },
    };
    if target < current && !u.allow_backwards {
        return Err(ProgressError::Conflict(format!(
            "stage '{}' comes before the current stage '{}'; send \"allow_backwards\": true to go back",
            rec.stages[target].name, rec.stages[current].name
        )));
    }
    let stage_changed = target != current;
    let percent = match (u.progress, stage_changed) {
        (Some(p), _) => p,
        (None, true) => 0.0,
        (None, false) => return Err(ProgressError::invalid("progress", "required unless the stage changes")),
    };
    let was_pending = rec.status == ProgressStatus::Pending;
    let mut next = rec.clone();
    next.stage_index = target as u32;
    next.progress = percent;
    touch(&mut next, now);
    refresh_eta(&mut next, rec.overall(), now);
    let change = if stage_changed {
        Change::Stage
    } else if was_pending {
        Change::Started
    } else {
        Change::Percent
    };
    Ok((next, change))
}

/// Moves to the next stage at 0 %. A conflict at the last stage (or with no stages).
pub fn advance(rec: &ProgressRecord, now: DateTime<Utc>) -> Result<ProgressRecord, ProgressError> {
    check_open(rec)?;
    let next_index = rec.stage_index as usize + 1;
    if next_index >= rec.stages.len() {
        return Err(ProgressError::Conflict(format!("progress '{}' is already at its last stage", rec.id)));
    }
    let mut next = rec.clone();
    next.stage_index = next_index as u32;
    next.progress = 0.0;
    touch(&mut next, now);
    refresh_eta(&mut next, rec.overall(), now);
    Ok(next)
}

/// How a progress finishes.
#[derive(Debug, Clone)]
pub enum Finish {
    /// Completed with an optional result.
    Complete(Option<serde_json::Value>),
    /// Failed with a message.
    Fail(String),
    /// Cancelled.
    Cancel,
}

/// Moves an open progress to its terminal state.
pub fn finish(rec: &ProgressRecord, how: Finish, now: DateTime<Utc>) -> Result<ProgressRecord, ProgressError> {
    check_open(rec)?;
    let mut next = rec.clone();
    match how {
        Finish::Complete(result) => {
            if let Some(r) = &result {
                check_json_size("result", r)?;
            }
            next.status = ProgressStatus::Completed;
            next.progress = 100.0;
            next.stage_index = rec.stages.len().saturating_sub(1) as u32;
            next.eta_seconds = Some(0);
            next.result = result;
        }
        Finish::Fail(error) => {
            if error.trim().is_empty() || error.len() > MAX_ERROR_LEN {
                return Err(ProgressError::invalid("error", format!("must be 1 to {MAX_ERROR_LEN} characters")));
            }
            next.status = ProgressStatus::Failed;
            next.eta_seconds = None;
            next.error = Some(error);
        }
        Finish::Cancel => {
            next.status = ProgressStatus::Cancelled;
            next.eta_seconds = None;
        }
    }
    next.updated_at = now;
    next.finished_at = Some(now);
    next.version += 1;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::model::StageSpec;
    use chrono::Duration;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    fn rec(stages: &[&str]) -> ProgressRecord {
        new_record(NewProgress::with_stages(Some("p1".into()), stages), t(0)).unwrap()
    }

    fn upd(p: Option<f64>, stage: Option<&str>) -> ProgressUpdate {
        ProgressUpdate { progress: p, stage: stage.map(str::to_string), allow_backwards: false }
    }

    #[test]
    fn creation_validates_every_field() {
        let bad = |req: NewProgress| match new_record(req, t(0)) {
            Err(ProgressError::Invalid { field, .. }) => field,
            other => panic!("expected invalid, got {other:?}"),
        };
        assert_eq!(bad(NewProgress::with_stages(Some("".into()), &[])), "id");
        assert_eq!(bad(NewProgress::with_stages(Some("a/b".into()), &[])), "id");
        assert_eq!(bad(NewProgress::with_stages(None, &["a", "a"])), "stages[1].name");
        assert_eq!(bad(NewProgress::with_stages(None, &["a", " "])), "stages[1].name");
        let mut w = NewProgress::with_stages(None, &["a"]);
        w.stages.push(StageSpec { name: "b".into(), weight: 0.0 });
        assert_eq!(bad(w), "stages[1].weight");
        assert_eq!(bad(NewProgress::with_stages(None, &[]).metadata(serde_json::json!([1]))), "metadata");
        let r = new_record(NewProgress::with_stages(None, &[]), t(0)).unwrap();
        assert_eq!(r.id.len(), 36);
        assert_eq!(r.metadata, serde_json::json!({}));
        assert_eq!((r.status, r.version), (ProgressStatus::Pending, 1));
    }

    #[test]
    fn overall_weighs_stages() {
        let mut r = rec(&[]);
        r.stages = vec![StageSpec { name: "a".into(), weight: 1.0 }, StageSpec { name: "b".into(), weight: 3.0 }];
        let (r, c) = apply_update(&r, &upd(Some(50.0), None), t(1)).unwrap();
        assert_eq!((r.overall(), c), (12.5, Change::Started));
        let (r, c) = apply_update(&r, &upd(Some(50.0), Some("b")), t(2)).unwrap();
        assert_eq!((r.overall(), c), (62.5, Change::Stage));
        let three = apply_update(&rec(&["x", "y", "z"]), &upd(Some(100.0), None), t(1)).unwrap().0;
        assert_eq!(three.overall(), 33.333333);
    }

    #[test]
    fn update_rules() {
        let r = rec(&["a", "b", "c"]);
        assert!(
            matches!(apply_update(&r, &upd(Some(101.0), None), t(1)), Err(ProgressError::Invalid { field, .. }) if field == "progress")
        );
        assert!(matches!(apply_update(&r, &upd(Some(-0.1), None), t(1)), Err(ProgressError::Invalid { .. })));
        assert!(matches!(apply_update(&r, &upd(Some(f64::NAN), None), t(1)), Err(ProgressError::Invalid { .. })));
        assert!(
            matches!(apply_update(&r, &upd(Some(1.0), Some("zz")), t(1)), Err(ProgressError::Invalid { field, .. }) if field == "stage")
        );
        assert!(matches!(apply_update(&r, &upd(None, None), t(1)), Err(ProgressError::Invalid { field, .. }) if field == "progress"));
        let (r, _) = apply_update(&r, &upd(None, Some("c")), t(1)).unwrap();
        assert_eq!((r.stage_index, r.progress, r.overall()), (2, 0.0, 66.666667));
        assert!(matches!(apply_update(&r, &upd(Some(5.0), Some("a")), t(2)), Err(ProgressError::Conflict(_))));
        let back = ProgressUpdate { allow_backwards: true, ..upd(Some(5.0), Some("a")) };
        let (r2, c) = apply_update(&r, &back, t(2)).unwrap();
        assert_eq!((r2.stage_index, c), (0, Change::Stage));
        let (r3, c) = apply_update(&r2, &upd(Some(6.0), None), t(3)).unwrap();
        assert_eq!((r3.version, c), (r2.version + 1, Change::Percent));
        let no_stages = rec(&[]);
        assert!(matches!(apply_update(&no_stages, &upd(Some(1.0), Some("a")), t(1)), Err(ProgressError::Invalid { .. })));
    }

    #[test]
    fn eta_follows_the_observed_rate() {
        let r = rec(&[]);
        let (r, _) = apply_update(&r, &upd(Some(10.0), None), t(0)).unwrap();
        assert_eq!(r.eta_seconds, None);
        let (r, _) = apply_update(&r, &upd(Some(20.0), None), t(10)).unwrap();
        assert_eq!(r.eta_seconds, Some(80));
        let (r, _) = apply_update(&r, &upd(Some(60.0), None), t(20)).unwrap();
        assert_eq!(r.eta_seconds, Some(16));
        let (r, _) = apply_update(&r, &upd(Some(50.0), None), t(21)).unwrap();
        assert_eq!(r.eta_seconds, None);
        let later = t(21) + Duration::seconds(5);
        let (r, _) = apply_update(&r, &upd(Some(55.0), None), later).unwrap();
        assert_eq!(r.eta_seconds, Some(45));
    }

    #[test]
    fn advance_and_finish() {
        let r = rec(&["a", "b"]);
        let r = advance(&r, t(1)).unwrap();
        assert_eq!((r.stage_index, r.status), (1, ProgressStatus::Processing));
        assert!(matches!(advance(&r, t(2)), Err(ProgressError::Conflict(_))));
        assert!(matches!(advance(&rec(&[]), t(2)), Err(ProgressError::Conflict(_))));
        assert!(matches!(finish(&r, Finish::Fail("  ".into()), t(2)), Err(ProgressError::Invalid { field, .. }) if field == "error"));
        let done = finish(&r, Finish::Complete(Some(serde_json::json!({"ok": true}))), t(3)).unwrap();
        assert_eq!(
            (done.status, done.overall(), done.eta_seconds, done.finished_at),
            (ProgressStatus::Completed, 100.0, Some(0), Some(t(3)))
        );
        assert!(matches!(finish(&done, Finish::Cancel, t(4)), Err(ProgressError::Conflict(_))));
        assert!(matches!(apply_update(&done, &upd(Some(1.0), None), t(4)), Err(ProgressError::Conflict(_))));
        let failed = finish(&rec(&[]), Finish::Fail("boom".into()), t(1)).unwrap();
        assert_eq!((failed.status, failed.error.as_deref(), failed.started_at), (ProgressStatus::Failed, Some("boom"), None));
    }
}
