//! Loading an organisation's state from the database (at start-up or first
//! use), and catching up with the scorecard changes other replicas made, so a
//! read through any replica reflects every acknowledged submission.

use std::sync::{Arc, Mutex};

use crate::calibration::scores::Groups;
use crate::domain::now_micros;
use crate::error::Error;
use crate::store::Page;

use std::collections::HashMap;

use super::state::{CardKeys, Committed, JobInfo, OrgState};
use super::{Calibrator, FIT_SWEEPS, FIT_TOLERANCE, lock};

/// Concurrent reads of one organisation share their look at the database's
/// latest event sequence. A query that started after a reader arrived has
/// seen every write acknowledged before that reader arrived, so its answer
/// serves that reader as well as the one that asked: read your writes across
/// replicas, with at most one query in flight per organisation instead of one
/// per read. Queries run one at a time behind the gate, on purpose (it is a
/// single-flight gate, not a lock on data); a reader waits for at most the
/// query in flight and one more.
#[derive(Default)]
pub(super) struct SequenceCheck {
    /// Queries started so far.
    started: std::sync::atomic::AtomicU64,
    /// The number and answer of the last query that finished.
    last: tokio::sync::Mutex<(u64, i64)>,
}

/// Most scorecard changes made through other replicas applied one by one when
/// catching up; further behind, the organisation is loaded afresh.
const CATCH_UP_LIMIT: usize = 1_000;
/// Events read per query when catching up (most are this replica's own).
const CATCH_UP_PAGE: usize = 1_000;
/// How long after the last import stream of an organisation its state is
/// loaded afresh in the background (a read before then loads it at once).
const IMPORT_QUIET: std::time::Duration = std::time::Duration::from_secs(1);

/// Import streams of an organisation, open or ended since its state was
/// last loaded.
#[derive(Default)]
pub(super) struct PendingImport {
    /// Bumped by every stream's beginning and end.
    generation: u64,
    pub(super) open_streams: usize,
    /// A stream that ended may have committed scorecards the state lacks.
    pub(super) imported: bool,
    /// The jobs they touched, for watchers and `ranking.changed`.
    jobs: std::collections::HashSet<String>,
}

/// An open import stream (see [`Calibrator::import_stream`]).
pub struct ImportStream {
    calibrator: Arc<Calibrator>,
    org: String,
    jobs: std::collections::HashSet<String>,
}

impl ImportStream {
    /// The stream committed scorecards of these jobs.
    pub fn touched(&mut self, jobs: impl IntoIterator<Item = String>) {
        self.jobs.extend(jobs);
    }
}

impl Drop for ImportStream {
    fn drop(&mut self) {
        let jobs = std::mem::take(&mut self.jobs);
        self.calibrator.import_stream_ended(std::mem::take(&mut self.org), jobs);
    }
}

impl Calibrator {
    /// Loads and fits every organisation with scorecards (at start-up).
    /// Derived events (flags raised or cleared while no replica ran) are
    /// published after each organisation loads.
    pub async fn warm_up(self: &Arc<Self>) -> Result<(), Error> {
        for org in self.store.organisations_with_scorecards().await? {
            if self.stopped() {
                break;
            }
            self.org(&org).await?;
            self.request_publish(&org);
        }
        Ok(())
    }

    #[tracing::instrument(name = "calibration", target = "scorecard::spans", level = "info", skip_all, fields(org = %org, operation = "load"))]
    pub(super) async fn load(&self, org: &str) -> Result<OrgState, Error> {
        crate::metrics::global().record_org_load();
        let started = std::time::Instant::now();
        let mut state = OrgState::new();
        // Read before the data: a change after this point may be read twice
        // (applying a scorecard again is harmless), never missed.
        state.synced_sequence = self.store.latest_sequence(org).await?;
        let (jobs, bars) = self.read_jobs(org, &mut state.items).await?;
        state.jobs = jobs;
        // Evidence arrives reduced to whether it is thin (stored with each rating).
        self.store
            .each_calibration_scorecard(org, |row| {
                if row.ratings.is_empty() {
                    return; // never written, but a scorecard without ratings says nothing
                }
                let ratings = row.ratings;
                let card = CardKeys {
                    scorecard_id: &row.scorecard_id,
                    job_id: &row.job_id,
                    candidate_id: &row.candidate_id,
                    interviewer: &row.interviewer,
                    recommendation: row.recommendation,
                    submitted_at: row.submitted_at,
                };
                state.put_scorecard(&card, &ratings);
                state.note_applied(&row.scorecard_id, row.revision);
            })
            .await?;
        let read = started.elapsed();
        crate::pauses::point("calibrator.load.read", org).await;
        let state = tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let report = state.model_mut().fit(FIT_SWEEPS, FIT_TOLERANCE);
            let took = started.elapsed();
            crate::metrics::global().record_full_fit(state.model.total_ratings(), took);
            tracing::info!(
                ratings = state.model.total_ratings(),
                sweeps = report.sweeps,
                converged = report.converged,
                ms = took.as_millis() as u64,
                "calibration fitted"
            );
            state.groups = Groups::from_model(&state.model);
            state.calibrated_at = now_micros();
            state.rank_every_job(&bars);
            state
        })
        .await
        .map_err(|e| Error::Internal(format!("calibration fit: {e}")))?;
        tracing::info!(
            org,
            ratings = state.model.total_ratings(),
            read_ms = read.as_millis() as u64,
            total_ms = started.elapsed().as_millis() as u64,
            "calibration loaded"
        );
        // What the load read and grew through is free now.
        let _ = tokio::task::spawn_blocking(crate::memory::release_free_memory).await;
        Ok(state)
    }

    /// Every job of the organisation as calibration sees it (its rubric
    /// revision's shape, competencies numbered in `items`), and each job's
    /// hiring bar.
    pub(super) async fn read_jobs(
        &self,
        org: &str,
        items: &mut crate::calibration::Index<(String, String)>,
    ) -> Result<(HashMap<String, JobInfo>, HashMap<String, Option<f64>>), Error> {
        let mut after = String::new();
        let (mut infos, mut bars) = (HashMap::new(), HashMap::new());
        loop {
            let (jobs, more) = self.store.list_jobs(org, Page::new(&after, 1000)).await?;
            for job in &jobs {
                bars.insert(job.id.clone(), job.hiring_bar);
                let rubric = self.store.get_rubric(org, &job.rubric_id, job.rubric_revision).await?;
                if let Some(rubric) = rubric {
                    infos.insert(job.id.clone(), OrgState::job_info(&job.id, &rubric, items));
                }
            }
            match (more, jobs.last()) {
                (true, Some(last)) => after = last.id.clone(),
                _ => break,
            }
        }
        Ok((infos, bars))
    }

    /// The organisation's state for a read: on PostgreSQL, where several
    /// replicas may write, first brought up to the database's latest event, so
    /// that a ranking read through this replica reflects a submission
    /// acknowledged by another (read your writes across replicas). One cheap
    /// query when nothing changed elsewhere.
    pub(super) async fn fresh(self: &Arc<Self>, org: &str) -> Result<Arc<Mutex<OrgState>>, Error> {
        if lock(&self.imports).get(org).is_some_and(|p| p.imported) {
            // In a task of its own, for the reason the load is (see `org`).
            let (this, org) = (self.clone(), org.to_string());
            tokio::spawn(async move { this.settle_imports(&org).await })
                .await
                .map_err(|e| Error::Internal(format!("loading an import: {e}")))??;
        }
        let state = self.org(org).await?;
        if self.store.kind() != "postgres" {
            return Ok(state); // one process owns an SQLite file
        }
        self.catch_up(org, state).await
    }

    /// Brings `state` (the organisation's, as `org` gave it) up to the
    /// database's latest event: applies the scorecard changes made through
    /// other replicas, or through this one but not yet applied (an update
    /// still in flight), and reloads when far behind or after an erasure.
    pub(super) async fn catch_up(
        self: &Arc<Self>,
        org: &str,
        state: Arc<Mutex<OrgState>>,
    ) -> Result<Arc<Mutex<OrgState>>, Error> {
        let latest = self.latest_sequence(org).await?;
        if latest <= lock(&state).synced_sequence {
            return Ok(state);
        }
        let gate = lock(&self.catch_ups).entry(org.to_string()).or_default().clone();
        let _one_at_a_time = gate.lock().await;
        let state = self.org(org).await?;
        let synced = lock(&state).synced_sequence;
        if latest <= synced {
            return Ok(state); // another read caught up meanwhile
        }
        // Most changes since the last sync are usually this replica's own,
        // already applied (their revision says so), and cost one row each;
        // only changes made through other replicas are read and applied.
        // Reloading whenever many events had passed reloaded the whole
        // organisation after every burst of this replica's own submissions.
        let applied = |id: &str| lock(&state).applied_revision(id);
        let Some(foreign) = self.unapplied_changes(org, synced, latest, CATCH_UP_LIMIT, applied).await? else {
            // Evidence erased, or far behind the other replicas: load afresh.
            return self.replace_with_reload(org).await;
        };
        for id in &foreign {
            if let Some(change) = self.committed_scorecard(org, id).await? {
                self.scorecard_changed(org, Arc::new(change)).await?;
            }
        }
        let mut s = lock(&state);
        s.synced_sequence = s.synced_sequence.max(latest);
        drop(s);
        Ok(state)
    }

    /// The scorecards changed by events after `after` up to `latest` whose
    /// revision `applied` does not reflect yet, each once, in a deterministic
    /// order; `None` when a candidate was erased meanwhile (evidence changed:
    /// the caller loads afresh) or more than `limit` scorecards changed.
    pub(super) async fn unapplied_changes(
        &self,
        org: &str,
        mut after: i64,
        latest: i64,
        limit: usize,
        applied: impl Fn(&str) -> i64,
    ) -> Result<Option<std::collections::BTreeSet<String>>, Error> {
        const CHANGES: [&str; 3] = ["scorecard.submitted", "scorecard.amended", "candidate.erased"];
        let types: Vec<String> = CHANGES.iter().map(|t| t.to_string()).collect();
        let mut changed = std::collections::BTreeSet::new();
        loop {
            let page = self.store.list_events(org, after, &types, CATCH_UP_PAGE).await?;
            for event in page.iter().take(CATCH_UP_PAGE) {
                if event.sequence > latest {
                    return Ok(Some(changed)); // later ones are the next catch-up's
                }
                after = event.sequence;
                if event.kind == "candidate.erased" {
                    return Ok(None);
                }
                let Some(id) = event.resource.strip_prefix("scorecards/") else { continue };
                let revision = serde_json::from_str::<serde_json::Value>(&event.payload)
                    .ok()
                    .and_then(|p| p["revision"].as_i64())
                    .unwrap_or(i64::MAX);
                if !changed.contains(id) && applied(id) < revision {
                    changed.insert(id.to_string());
                }
            }
            if changed.len() > limit {
                return Ok(None);
            }
            if page.len() <= CATCH_UP_PAGE {
                return Ok(Some(changed));
            }
        }
    }

    /// Scorecard `id` at its current revision with the rubric revision it
    /// was rated on, as an update applies it (`None` if it or its job is gone).
    pub(super) async fn committed_scorecard(&self, org: &str, id: &str) -> Result<Option<Committed>, Error> {
        let Some(scorecard) = self.store.get_scorecard(org, id, 0).await? else { return Ok(None) };
        let Some(job) = self.store.get_job(org, &scorecard.job_id).await? else { return Ok(None) };
        let rubric = self.store.get_rubric(org, &job.rubric_id, job.rubric_revision).await?;
        Ok(rubric.map(|rubric| Committed { scorecard, rubric }))
    }

    /// The database's latest event sequence of `org`, as of some moment after
    /// this call began (see [`SequenceCheck`]).
    pub(super) async fn latest_sequence(&self, org: &str) -> Result<i64, Error> {
        use std::sync::atomic::Ordering::SeqCst;
        let check = lock(&self.sequence_checks).entry(org.to_string()).or_default().clone();
        let arrived = check.started.load(SeqCst);
        let mut last = check.last.lock().await;
        if last.0 > arrived {
            return Ok(last.1); // started after this reader arrived
        }
        let number = check.started.fetch_add(1, SeqCst) + 1;
        let latest = self.store.latest_sequence(org).await?;
        *last = (number, latest);
        Ok(latest)
    }

    /// The organisation's state, loading it on first use. The load runs as a
    /// task of its own, not in the reader's call: a reader whose deadline
    /// passes stops waiting for the load, and the load goes on for the next
    /// reader. (Run in the call, it was dropped with it: an organisation
    /// whose load outlasts a call's deadline, 30 s at most, was loaded again
    /// from the start by every reader and served none of them.)
    pub(super) async fn org(self: &Arc<Self>, org: &str) -> Result<Arc<Mutex<OrgState>>, Error> {
        if let Some(state) = lock(&self.orgs).get(org) {
            return Ok(state.clone());
        }
        let (this, org) = (self.clone(), org.to_string());
        tokio::spawn(async move { this.load_once(&org).await })
            .await
            .map_err(|e| Error::Internal(format!("calibration load: {e}")))?
    }

    /// [`Calibrator::org`]'s load: one at a time, and a loader that waited
    /// finds the state loaded.
    async fn load_once(self: &Arc<Self>, org: &str) -> Result<Arc<Mutex<OrgState>>, Error> {
        let gate = self.load_gate(org);
        let _one_at_a_time = gate.lock().await;
        loop {
            if let Some(state) = lock(&self.orgs).get(org) {
                return Ok(state.clone());
            }
            let epoch = self.epoch(org);
            // A snapshot if there is a usable one (the server's last stop
            // wrote it), else every scorecard read and fitted.
            let restored = match self.restore(org).await {
                Ok(restored) => restored,
                Err(e) => {
                    tracing::warn!(org, error = %e, "calibration snapshot not read: loading from the scorecards");
                    None
                }
            };
            // Restored: whether unchanged since the snapshot (nothing replayed).
            let (loaded, as_snapshot) = match restored {
                Some((state, unchanged)) => (state, Some(unchanged)),
                None => (self.load(org).await?, None),
            };
            let mut orgs = lock(&self.orgs);
            if self.epoch(org) != epoch {
                continue; // an erasure committed during the load: read again
            }
            let state = orgs.entry(org.to_string()).or_insert_with(|| Arc::new(Mutex::new(loaded))).clone();
            drop(orgs); // before the state's lock: others take the state's first
            match as_snapshot {
                Some(true) => {
                    let version = lock(&state).version;
                    lock(&self.snapshotted).insert(org.to_string(), (Arc::downgrade(&state), version));
                }
                // Changes replayed onto the snapshot are applied locally, as
                // live updates are: refitted in the background like them.
                Some(false) => self.schedule_refit(org),
                None => {}
            }
            return Ok(state);
        }
    }

    fn load_gate(&self, org: &str) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.loads).entry(org.to_string()).or_default().clone()
    }

    fn epoch(&self, org: &str) -> u64 {
        lock(&self.epochs).get(org).copied().unwrap_or(0)
    }

    /// An import stream of `org` begins. Its scorecards are committed in bulk
    /// and not applied to the state: once the stream ends (the guard is
    /// dropped, however it ends), the organisation is loaded afresh before its
    /// next calibration read, or in the background once no import stream has
    /// been open for [`IMPORT_QUIET`]. A back-fill of many streams is loaded
    /// and fitted once, not once per stream, and a read after any of them
    /// still reflects it.
    pub fn import_stream(self: &Arc<Self>, org: &str) -> ImportStream {
        let mut imports = lock(&self.imports);
        let pending = imports.entry(org.to_string()).or_default();
        pending.open_streams += 1;
        // Whatever timer is running belongs to an earlier stream.
        pending.generation += 1;
        ImportStream { calibrator: self.clone(), org: org.to_string(), jobs: Default::default() }
    }

    fn import_stream_ended(self: &Arc<Self>, org: String, jobs: std::collections::HashSet<String>) {
        let generation = {
            let mut imports = lock(&self.imports);
            let Some(pending) = imports.get_mut(&org) else { return };
            pending.open_streams -= 1;
            pending.generation += 1;
            pending.jobs.extend(jobs);
            if pending.jobs.is_empty() && pending.open_streams == 0 && !pending.imported {
                imports.remove(&org); // nothing was imported that the state lacks
                return;
            }
            pending.imported |= !pending.jobs.is_empty();
            pending.generation
        };
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(IMPORT_QUIET).await;
            if this.stopped() {
                return;
            }
            // Only the latest stream's timer settles, and only with no stream
            // open: an earlier one finds a later generation.
            let quiet =
                lock(&this.imports).get(&org).is_some_and(|p| p.generation == generation && p.open_streams == 0);
            if quiet && let Err(e) = this.settle_imports(&org).await {
                tracing::warn!(org, error = %e, "loading the organisation after an import failed");
            }
        });
    }

    /// Loads the organisation afresh if scorecards were imported since its
    /// state was loaded, then tells the imported jobs' watchers and the
    /// publisher. One call at a time per organisation; a call that waited
    /// finds the work done.
    pub(super) async fn settle_imports(self: &Arc<Self>, org: &str) -> Result<(), Error> {
        let gate = lock(&self.settles).entry(org.to_string()).or_default().clone();
        let _one_at_a_time = gate.lock().await;
        let generation = match lock(&self.imports).get(org) {
            Some(p) if p.imported => p.generation,
            _ => return Ok(()), // nothing imported yet, or settled while this call waited
        };
        // Committed before their stream ended, so this load reads them.
        self.replace_with_reload(org).await?;
        let jobs = {
            let mut imports = lock(&self.imports);
            match imports.get_mut(org) {
                // A stream that ended or began since the load began may not be
                // in it: it stays pending.
                Some(p) if p.generation != generation || p.open_streams > 0 => {
                    p.imported = p.generation != generation;
                    std::mem::take(&mut p.jobs)
                }
                _ => imports.remove(org).map(|p| p.jobs).unwrap_or_default(),
            }
        };
        lock(&self.dirty_jobs).entry(org.to_string()).or_default().extend(jobs.iter().cloned());
        for job in &jobs {
            let _ = self.changes.send((org.to_string(), job.clone()));
        }
        self.request_publish(org);
        Ok(())
    }

    /// Loads the organisation afresh while the current state keeps serving and
    /// taking updates, then swaps the new state in. Updates that arrive during
    /// the load are journaled on the current state and replayed onto the new
    /// one in the same critical section that retires the old: a scorecard
    /// acknowledged during a reload is never lost (its revision decides
    /// whether the load already read it).
    async fn replace_with_reload(self: &Arc<Self>, org: &str) -> Result<Arc<Mutex<OrgState>>, Error> {
        let one_at_a_time = self.load_gate(org);
        let one_at_a_time = one_at_a_time.lock().await;
        let epoch = self.epoch(org);
        let current = lock(&self.orgs).get(org).cloned();
        if let Some(current) = &current {
            lock(current).reload_journal = Some(Vec::new());
        }
        let loaded = self.load(org).await;
        crate::pauses::point("calibrator.reload.loaded", org).await;
        let fresh = {
            let mut old = current.as_ref().map(|c| lock(c));
            let journal = old.as_mut().and_then(|o| o.reload_journal.take()).unwrap_or_default();
            let mut fresh = loaded?; // on failure the current state keeps serving
            if old.as_ref().is_some_and(|o| o.retired) || self.epoch(org) != epoch {
                None // invalidated meanwhile (an erasure): load again below
            } else {
                for change in &journal {
                    super::update::apply(&mut fresh, change);
                }
                if let Some(old) = &mut old {
                    fresh.version = fresh.version.max(old.version + 1);
                    old.retired = true;
                }
                let fresh = Arc::new(Mutex::new(fresh));
                // Swapped in while the old state is still locked: an update
                // that finds the old state retired finds this one in its place.
                lock(&self.orgs).insert(org.to_string(), fresh.clone());
                Some(fresh)
            }
        };
        drop(one_at_a_time);
        match fresh {
            Some(fresh) => Ok(fresh),
            None => self.org(org).await,
        }
    }

    /// Forgets an organisation's state so it reloads (after an erasure changed
    /// what evidence says). A load or reload in flight, which may have read
    /// before the erasure, is not kept.
    pub fn invalidate(&self, org: &str) {
        *lock(&self.epochs).entry(org.to_string()).or_default() += 1;
        let removed = lock(&self.orgs).remove(org);
        if let Some(state) = removed {
            lock(&state).retired = true;
        }
    }
}
