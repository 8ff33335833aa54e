//! Calibration snapshots: a server that stops writes each organisation's
//! state (its ratings' numbers, the fitted model and the dense indexes) to the
//! database, and the next start reads it back instead of reading every
//! scorecard and fitting afresh. A restored organisation answers exactly as it
//! did before the restart; the changes since the snapshot's event sequence
//! (another replica's, or ones a crash kept from a later snapshot) are
//! replayed from the event log as catching up does.
//!
//! A snapshot is only a cache of what the scorecards say. It is not used, and
//! the organisation is loaded from its scorecards instead, when: it is of
//! another format or organisation, damaged, older than a candidate's erasure
//! (the erasure also deletes it), its jobs now map competencies differently,
//! or more than [`REPLAY_LIMIT`] scorecards changed since it was written.
//! It holds no evidence, name or self-identification.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use crate::calibration::model::Model;
use crate::calibration::raters::ScorecardFacts;
use crate::calibration::scores::Groups;
use crate::calibration::snapshot::{Reader, SnapshotError, Writer, bad};
use crate::domain::now_micros;
use crate::error::Error;
use crate::store::SnapshotHeader;

use super::state::{JobInfo, OrgState};
use super::{Calibrator, lock};

/// The byte format; a snapshot of another is not read (it is a cache: the
/// next stop writes it anew).
const FORMAT: i32 = 3;
/// Opens and closes the stream: a stream cut short or not a snapshot is told at once.
const MAGIC: &[u8; 16] = b"scorecard:calib\x02";
/// Bytes per stored part: large enough that a 10-million-rating state is
/// about a hundred rows, small enough that no row holds the writer long.
const PART_BYTES: usize = 8 << 20;
/// Scorecards changed since the snapshot that a restore replays one by one;
/// more, and the organisation is loaded from its scorecards.
pub(super) const REPLAY_LIMIT: usize = 10_000;

/// What a job's ratings were mapped with when the snapshot was written (its
/// rubric, scale, competencies' items and their dimensions): a restore goes
/// on only if the job's current rubric maps them the same way.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct JobPrint {
    job: String,
    rubric: String,
    scale: (i64, i64),
    /// (competency, the model's item)
    items: Vec<(String, u32)>,
    /// (item, its dimension in the model)
    item_groups: Vec<(u32, u32)>,
}

impl JobPrint {
    fn of(job: &str, info: &JobInfo) -> Self {
        let mut items: Vec<(String, u32)> = info.items.iter().map(|(k, &v)| (k.clone(), v)).collect();
        items.sort();
        let mut item_groups: Vec<(u32, u32)> = info.item_groups.iter().map(|(&k, &g)| (k, g)).collect();
        item_groups.sort();
        JobPrint {
            job: job.to_string(),
            rubric: info.rubric_id.clone(),
            scale: (i64::from(info.scale.0), i64::from(info.scale.1)),
            items,
            item_groups,
        }
    }
}

/// Writes `state` (of organisation `org`) to `w`.
fn encode<W: Write>(org: &str, s: &OrgState, w: &mut Writer<W>) -> std::io::Result<()> {
    w.bytes(MAGIC)?;
    w.str(org)?;
    w.u64(s.version)?;
    w.i64(s.calibrated_at)?;
    let mut prints: Vec<JobPrint> = s.jobs.iter().map(|(job, info)| JobPrint::of(job, info)).collect();
    prints.sort();
    w.len(prints.len())?;
    for p in &prints {
        w.str(&p.job)?;
        w.str(&p.rubric)?;
        w.i64(p.scale.0)?;
        w.i64(p.scale.1)?;
        w.len(p.items.len())?;
        for (key, item) in &p.items {
            w.str(key)?;
            w.u32(*item)?;
        }
        w.len(p.item_groups.len())?;
        for &(item, group) in &p.item_groups {
            w.u32(item)?;
            w.u32(group)?;
        }
    }
    w.len(s.raters.ids.len())?;
    for rater in &s.raters.ids {
        w.str(rater)?;
    }
    // Subjects' jobs as numbers into a table of the jobs' ids.
    let mut job_numbers: HashMap<&str, u32> = HashMap::new();
    let mut job_names: Vec<&str> = Vec::new();
    let mut subject_jobs = Vec::with_capacity(s.subjects.ids.len());
    for (job, _) in &s.subjects.ids {
        let n = *job_numbers.entry(job).or_insert_with(|| {
            job_names.push(job);
            job_names.len() as u32 - 1
        });
        subject_jobs.push(n);
    }
    w.len(job_names.len())?;
    for job in &job_names {
        w.str(job)?;
    }
    w.len(s.subjects.ids.len())?;
    for ((_, candidate), job) in s.subjects.ids.iter().zip(subject_jobs) {
        w.u32(job)?;
        w.str(candidate)?;
    }
    w.len(s.items.ids.len())?;
    for (rubric, competency) in &s.items.ids {
        w.str(rubric)?;
        w.str(competency)?;
    }
    w.len(s.scorecards.uuids.len())?;
    for (uuid, &n) in &s.scorecards.uuids {
        w.bytes(uuid)?;
        w.u32(n)?;
    }
    w.len(s.scorecards.others.len())?;
    for (id, &n) in &s.scorecards.others {
        w.str(id)?;
        w.u32(n)?;
    }
    w.len(s.facts.len())?;
    for facts in &s.facts {
        match facts {
            None => w.u8(0)?,
            Some(f) => {
                w.u8(1)?;
                w.u32(f.rater)?;
                w.u32(f.subject)?;
                w.u8(f.recommendation)?;
                w.u32(f.thin_evidence)?;
                w.u32(f.ratings)?;
                w.f64(f.scale_span)?;
            }
        }
    }
    w.i64s(&s.submitted_at)?;
    w.i64s(&s.applied_revisions)?;
    s.model.write_snapshot(w)?;
    w.u32s(s.groups.parents())?;
    w.bytes(MAGIC)
}

/// Reads what [`encode`] wrote for `org`: the state (without its jobs, which
/// the caller reads from the database and checks against the prints) and
/// what its jobs were.
fn decode<R: Read>(org: &str, r: &mut Reader<R>) -> Result<(OrgState, Vec<JobPrint>), SnapshotError> {
    let mut magic = [0u8; 16];
    r.bytes(&mut magic)?;
    if &magic != MAGIC {
        return Err(bad("not a calibration snapshot of this format"));
    }
    if r.string()? != org {
        return Err(bad("a snapshot of another organisation"));
    }
    let mut s = OrgState::new();
    s.version = r.u64()?;
    s.calibrated_at = r.i64()?;
    let jobs = r.len(32)?;
    let mut prints = Vec::with_capacity(jobs);
    for _ in 0..jobs {
        let (job, rubric) = (r.string()?, r.string()?);
        let scale = (r.i64()?, r.i64()?);
        let n = r.len(12)?;
        let items = (0..n).map(|_| Ok((r.string()?, r.u32()?))).collect::<Result<_, SnapshotError>>()?;
        let n = r.len(8)?;
        let item_groups = (0..n).map(|_| Ok((r.u32()?, r.u32()?))).collect::<Result<_, SnapshotError>>()?;
        prints.push(JobPrint { job, rubric, scale, items, item_groups });
    }
    let raters = r.len(8)?;
    for _ in 0..raters {
        let id = r.string()?;
        s.raters.get_or_insert(&id);
    }
    let job_count = r.len(8)?;
    let job_names: Vec<Arc<str>> =
        (0..job_count).map(|_| r.string().map(Arc::from)).collect::<Result<_, SnapshotError>>()?;
    let subjects = r.len(12)?;
    s.subjects.ids.reserve(subjects);
    s.subjects.by_id.reserve(subjects);
    for _ in 0..subjects {
        let job = job_names.get(r.u32()? as usize).ok_or_else(|| bad("a subject's job is not in the table"))?;
        let candidate: Arc<str> = Arc::from(r.string()?);
        s.subjects.get_or_insert(&(job.clone(), candidate));
    }
    let items = r.len(16)?;
    for _ in 0..items {
        let key = (r.string()?, r.string()?);
        s.items.get_or_insert(&key);
    }
    let uuids = r.len(20)?;
    s.scorecards.uuids.reserve(uuids);
    for _ in 0..uuids {
        let mut uuid = [0u8; 16];
        r.bytes(&mut uuid)?;
        s.scorecards.uuids.insert(uuid, r.u32()?);
    }
    let others = r.len(12)?;
    for _ in 0..others {
        let id = r.string()?;
        s.scorecards.others.insert(id.into(), r.u32()?);
    }
    let scorecards = s.scorecards.uuids.len() + s.scorecards.others.len();
    let numbers = s.scorecards.uuids.values().chain(s.scorecards.others.values());
    if numbers.clone().any(|&n| n as usize >= scorecards) {
        return Err(bad("a scorecard's number is out of range"));
    }
    let facts = r.len(1)?;
    s.facts.reserve(facts);
    for _ in 0..facts {
        s.facts.push(match r.u8()? {
            0 => None,
            1 => Some(ScorecardFacts {
                rater: r.u32()?,
                subject: r.u32()?,
                recommendation: r.u8()?,
                thin_evidence: r.u32()?,
                ratings: r.u32()?,
                scale_span: r.f64()?,
            }),
            _ => return Err(bad("a scorecard's facts are damaged")),
        });
    }
    s.submitted_at = r.i64s()?;
    s.applied_revisions = r.i64s()?;
    s.model = Arc::new(Model::read_snapshot(r)?);
    s.groups = Groups::from_parents(r.u32s()?).ok_or_else(|| bad("the groups of linked candidates are damaged"))?;
    r.bytes(&mut magic)?;
    if &magic != MAGIC || r.remaining() != 0 {
        return Err(bad("the snapshot does not end where it says"));
    }
    // What the rest of the state indexes by these numbers must hold them.
    let (raters, subjects, items) = (s.raters.ids.len(), s.subjects.ids.len(), s.items.ids.len());
    if s.model.rater_count() > raters || s.model.subject_count() > subjects || s.model.item_count() > items {
        return Err(bad("the model has more raters, subjects or items than the indexes"));
    }
    if s.facts.iter().flatten().any(|f| f.rater as usize >= raters || f.subject as usize >= subjects)
        || s.facts.len() > scorecards
        || s.submitted_at.len() > scorecards
        || s.applied_revisions.len() > scorecards
    {
        return Err(bad("a scorecard's facts name a rater or subject the indexes lack"));
    }
    if prints.iter().flat_map(|p| &p.items).any(|&(_, item)| item as usize >= items) {
        return Err(bad("a job names an item the index lacks"));
    }
    Ok((s, prints))
}

/// Collects what [`encode`] writes into parts of [`PART_BYTES`], handed to
/// the task that stores them.
struct PartWriter {
    part: Vec<u8>,
    parts: tokio::sync::mpsc::Sender<Vec<u8>>,
}

impl PartWriter {
    fn send(&mut self) -> std::io::Result<()> {
        let part = std::mem::replace(&mut self.part, Vec::with_capacity(PART_BYTES));
        self.parts.blocking_send(part).map_err(|_| std::io::Error::other("the snapshot's writer stopped"))
    }
}

impl Write for PartWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.part.extend_from_slice(buf);
        if self.part.len() >= PART_BYTES {
            self.send()?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if self.part.is_empty() { Ok(()) } else { self.send() }
    }
}

/// Reads the stored parts in order, as they arrive from the task that reads them.
struct PartReader {
    part: Vec<u8>,
    at: usize,
    parts: tokio::sync::mpsc::Receiver<Result<Vec<u8>, Error>>,
}

impl Read for PartReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.part.len() {
            match self.parts.blocking_recv() {
                Some(Ok(part)) => (self.part, self.at) = (part, 0),
                Some(Err(e)) => return Err(std::io::Error::other(e.to_string())),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.part.len() - self.at);
        buf[..n].copy_from_slice(&self.part[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

impl Calibrator {
    /// Writes a snapshot of every organisation in memory whose state changed
    /// since it was loaded or last written (when the server stops). An
    /// organisation with an import not yet loaded keeps its earlier snapshot.
    pub async fn write_snapshots(self: &Arc<Self>) {
        let orgs: Vec<(String, Arc<Mutex<OrgState>>)> =
            lock(&self.orgs).iter().map(|(org, state)| (org.clone(), state.clone())).collect();
        for (org, state) in orgs {
            if lock(&self.imports).get(&org).is_some_and(|p| p.imported || p.open_streams > 0) {
                continue;
            }
            let (version, empty) = {
                let s = lock(&state);
                (s.version, s.model.total_ratings() == 0)
            };
            if empty {
                continue; // nothing a load would have to read or fit
            }
            let stored = lock(&self.snapshotted)
                .get(&org)
                .is_some_and(|(s, v)| *v == version && s.upgrade().is_some_and(|s| Arc::ptr_eq(&s, &state)));
            if stored {
                continue; // the stored snapshot is this state
            }
            let started = std::time::Instant::now();
            match self.write_snapshot(&org, state).await {
                Ok(Some(bytes)) => tracing::info!(
                    org,
                    bytes,
                    ms = started.elapsed().as_millis() as u64,
                    "calibration snapshot written"
                ),
                Ok(None) => {
                    tracing::info!(org, "calibration snapshot not kept: an erasure or a later snapshot came first")
                }
                Err(e) => tracing::warn!(org, error = %e, "calibration snapshot not written"),
            }
        }
    }

    /// Writes one organisation's snapshot; its size, or `None` when an
    /// erasure or a snapshot of a later sequence came first (nothing kept).
    async fn write_snapshot(self: &Arc<Self>, org: &str, state: Arc<Mutex<OrgState>>) -> Result<Option<u64>, Error> {
        // Every change up to `synced_sequence` is in the state once caught
        // up: this replica's own (an update still in flight included) and
        // other replicas'.
        let state = self.catch_up(org, state).await?;
        let generation = self.store.new_snapshot_generation();
        let (parts, mut stored) = tokio::sync::mpsc::channel::<Vec<u8>>(2);
        let encoding = {
            let (org, state) = (org.to_string(), state.clone());
            tokio::task::spawn_blocking(move || {
                let s = lock(&state);
                let mut w = Writer::new(PartWriter { part: Vec::with_capacity(PART_BYTES), parts });
                encode(&org, &s, &mut w)?;
                let bytes = w.written();
                w.into_inner().flush()?;
                Ok::<_, std::io::Error>((bytes, s.synced_sequence, s.version))
            })
        };
        let mut count = 0i32;
        let mut failed = None;
        while let Some(part) = stored.recv().await {
            if failed.is_none()
                && let Err(e) = self.store.put_snapshot_part(org, &generation, count, &part).await
            {
                failed = Some(e);
                break; // dropping the receiver stops the encoder
            }
            count += 1;
        }
        drop(stored);
        let encoded = encoding.await.map_err(|e| Error::Internal(format!("snapshot: {e}")))?;
        let (bytes, sequence, version) = match (failed, encoded) {
            (None, Ok(done)) => done,
            (Some(e), _) => {
                let _ = self.store.discard_snapshot_parts(org, &generation).await;
                return Err(e);
            }
            (None, Err(e)) => {
                let _ = self.store.discard_snapshot_parts(org, &generation).await;
                return Err(Error::Internal(format!("snapshot: {e}")));
            }
        };
        let header = SnapshotHeader {
            generation,
            sequence,
            format: FORMAT,
            parts: count,
            bytes: bytes as i64,
            created_at: now_micros(),
        };
        if !self.store.finish_snapshot(org, &header).await? {
            return Ok(None);
        }
        lock(&self.snapshotted).insert(org.to_string(), (Arc::downgrade(&state), version));
        crate::metrics::global().record_snapshot_written();
        Ok(Some(bytes))
    }

    /// The organisation's state from its snapshot, caught up with every
    /// change since; `None` when there is no usable snapshot (see the
    /// module's first lines), and the caller loads from the scorecards. With
    /// it, whether it is the snapshot's state unchanged (nothing replayed).
    pub(super) async fn restore(&self, org: &str) -> Result<Option<(OrgState, bool)>, Error> {
        if !self.snapshots {
            return Ok(None);
        }
        let Some(header) = self.store.snapshot_header(org).await? else { return Ok(None) };
        if header.format != FORMAT {
            tracing::info!(org, format = header.format, "calibration snapshot of another format: not used");
            return Ok(None);
        }
        let started = std::time::Instant::now();
        let (parts, arriving) = tokio::sync::mpsc::channel::<Result<Vec<u8>, Error>>(2);
        let reading = {
            let (store, org, generation) = (self.store.clone(), org.to_string(), header.generation.clone());
            tokio::spawn(async move {
                for part in 0..header.parts {
                    let read = match store.snapshot_part(&org, &generation, part).await {
                        Ok(Some(bytes)) => Ok(bytes),
                        Ok(None) => Err(Error::Internal("a part of the snapshot is gone (replaced meanwhile)".into())),
                        Err(e) => Err(e),
                    };
                    let stop = read.is_err();
                    if parts.send(read).await.is_err() || stop {
                        return;
                    }
                }
            })
        };
        let decoding = {
            let (org, size) = (org.to_string(), header.bytes.max(0) as u64);
            tokio::task::spawn_blocking(move || {
                let reader = PartReader { part: Vec::new(), at: 0, parts: arriving };
                decode(&org, &mut Reader::new(reader, size))
            })
        };
        let decoded = decoding.await.map_err(|e| Error::Internal(format!("snapshot: {e}")))?;
        reading.abort();
        let (mut state, prints) = match decoded {
            Ok(decoded) => decoded,
            Err(e) => {
                tracing::warn!(org, error = %e, "calibration snapshot not usable: loading from the scorecards");
                return Ok(None);
            }
        };
        let read = started.elapsed();
        // The jobs as they are now, numbered with the snapshot's items.
        let (jobs, bars) = self.read_jobs(org, &mut state.items).await?;
        state.jobs = jobs;
        let mut current: Vec<JobPrint> = Vec::new();
        for p in &prints {
            match state.jobs.get(&p.job) {
                Some(info) => current.push(JobPrint::of(&p.job, info)),
                None => {
                    tracing::info!(org, job = p.job, "calibration snapshot names a job that is gone: not used");
                    return Ok(None);
                }
            }
        }
        if current != prints {
            tracing::info!(
                org,
                "a job's rubric maps competencies (items, dimensions, scale) differently since the snapshot: not used"
            );
            return Ok(None);
        }
        // Subjects share their job's key, as a load makes them.
        let mut keys: HashMap<&str, Arc<str>> = HashMap::new();
        for (job, _) in &state.subjects.ids {
            keys.entry(&**job).or_insert_with(|| job.clone());
        }
        for (job, info) in &mut state.jobs {
            if let Some(key) = keys.get(job.as_str()) {
                info.key = key.clone();
            }
        }
        state.synced_sequence = header.sequence;
        let Some(replayed) = self.replay_since_snapshot(org, &mut state).await? else {
            return Ok(None);
        };
        let state = tokio::task::spawn_blocking(move || {
            let mut state = state;
            state.rank_every_job(&bars);
            state
        })
        .await
        .map_err(|e| Error::Internal(format!("ranking a restored organisation: {e}")))?;
        crate::metrics::global().record_snapshot_restore();
        tracing::info!(
            org,
            ratings = state.model.total_ratings(),
            replayed,
            read_ms = read.as_millis() as u64,
            total_ms = started.elapsed().as_millis() as u64,
            "calibration restored from its snapshot"
        );
        Ok(Some((state, replayed == 0)))
    }

    /// Applies the scorecard changes committed after the snapshot's event
    /// sequence; `None` (not restorable) when a candidate was erased since or
    /// more than [`REPLAY_LIMIT`] scorecards changed.
    async fn replay_since_snapshot(&self, org: &str, state: &mut OrgState) -> Result<Option<usize>, Error> {
        let latest = self.store.latest_sequence(org).await?;
        let applied = |id: &str| state.applied_revision(id);
        let Some(changed) = self.unapplied_changes(org, state.synced_sequence, latest, REPLAY_LIMIT, applied).await?
        else {
            tracing::info!(org, "an erasure or too many changes since the calibration snapshot: loading instead");
            return Ok(None);
        };
        for id in &changed {
            if let Some(change) = self.committed_scorecard(org, id).await? {
                super::update::apply(state, &change);
            }
        }
        state.synced_sequence = state.synced_sequence.max(latest);
        Ok(Some(changed.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calibrator::state::CardKeys;
    use crate::domain::Rubric;

    /// A state of two jobs' worth of scorecards, fitted.
    fn state() -> OrgState {
        let template = crate::domain::templates::templates().remove(0);
        let rubric = Rubric { id: "rub".into(), revision: 1, content: template.rubric, created_at: 0, updated_at: 0 };
        let mut s = OrgState::new();
        for job in ["job-a", "job-b"] {
            let info = OrgState::job_info(job, &rubric, &mut s.items);
            s.jobs.insert(job.to_string(), info);
        }
        let keys: Vec<String> = rubric.content.competencies.iter().map(|c| c.key.clone()).collect();
        for n in 0..60u32 {
            let (job, candidate) = (if n % 2 == 0 { "job-a" } else { "job-b" }, format!("cand-{}", n / 3));
            let id = format!("{:032x}", u128::from(n) + 0x0123_4567_89ab_cdef);
            let interviewer = format!("rater-{}", n % 7);
            let card = CardKeys {
                scorecard_id: if n == 5 { "not-a-uuid" } else { &id },
                job_id: job,
                candidate_id: &candidate,
                interviewer: &interviewer,
                recommendation: i64::from(n % 4 + 1),
                submitted_at: 1_700_000_000_000_000 + i64::from(n) * 1_000_000,
            };
            let ratings: Vec<(String, i64, bool)> = keys
                .iter()
                .take(3)
                .enumerate()
                .map(|(k, key)| (key.clone(), i64::from((n + k as u32) % 4 + 1), k == 0))
                .collect();
            s.put_scorecard(&card, &ratings);
            s.note_applied(card.scorecard_id, 1);
        }
        s.model_mut().fit(200, 1e-6);
        s.groups = Groups::from_model(&s.model);
        s.version = 7;
        s
    }

    fn bytes(org: &str, s: &OrgState) -> Vec<u8> {
        let mut w = Writer::new(Vec::new());
        encode(org, s, &mut w).expect("encode");
        w.into_inner()
    }

    #[test]
    fn a_state_reads_back_as_it_was_written() {
        let s = state();
        let written = bytes("acme", &s);
        let (back, prints) =
            decode("acme", &mut Reader::new(written.as_slice(), written.len() as u64)).expect("decode");
        assert_eq!(format!("{:?}", back.model), format!("{:?}", s.model));
        assert_eq!(back.raters.ids, s.raters.ids);
        assert_eq!(back.subjects.ids, s.subjects.ids);
        assert_eq!(back.items.ids, s.items.ids);
        assert_eq!(back.scorecards.uuids, s.scorecards.uuids);
        assert_eq!(back.scorecards.others, s.scorecards.others);
        assert_eq!(back.facts, s.facts);
        assert_eq!(back.submitted_at, s.submitted_at);
        assert_eq!(back.applied_revisions, s.applied_revisions);
        assert_eq!(back.groups.parents(), s.groups.parents());
        assert_eq!((back.version, back.calibrated_at), (s.version, s.calibrated_at));
        let mut expected: Vec<JobPrint> = s.jobs.iter().map(|(j, i)| JobPrint::of(j, i)).collect();
        expected.sort();
        assert_eq!(prints, expected);
        assert!(prints.iter().all(|p| !p.items.is_empty() && !p.item_groups.is_empty()));
    }

    #[test]
    fn another_organisations_or_a_cut_snapshot_is_refused_never_a_panic() {
        let written = bytes("acme", &state());
        let other = decode("globex", &mut Reader::new(written.as_slice(), written.len() as u64));
        assert!(matches!(other, Err(SnapshotError::Format(_))));
        for cut in (0..written.len()).step_by(997).chain([written.len() - 1]) {
            let cut_short = decode("acme", &mut Reader::new(&written[..cut], cut as u64));
            assert!(cut_short.is_err(), "cut at {cut} of {}", written.len());
        }
        // Bytes beyond the end it wrote are not a snapshot either.
        let mut longer = written.clone();
        longer.extend_from_slice(&[0; 8]);
        assert!(decode("acme", &mut Reader::new(longer.as_slice(), longer.len() as u64)).is_err());
    }
}
