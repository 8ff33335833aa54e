//! `ComplianceService`: voluntary self-identification, sealed at rest, and the
//! adverse-impact report that is the only place it is ever read. Nothing here
//! reaches the calibration model, rankings, rater reports or any output about
//! one candidate (docs/compliance.md).

use std::collections::{HashMap, HashSet};

use super::State;
use super::convert::{time_window, timestamp};
use crate::auth::Caller;
use crate::domain::impact::{self, Grouping, Measure};
use crate::domain::names::Collection;
use crate::domain::{Micros, Role, now_micros};
use crate::error::{Error, Violations};
use crate::proto::{self, compliance_service_server::ComplianceService};
use crate::store::Page;

const WRITERS: [Role; 2] = [Role::Admin, Role::Integration];
const READERS: [Role; 1] = [Role::Compliance];

/// Why self-identification cannot be taken without a key.
pub(super) const NO_KEY: &str = "self-identification is not accepted: the server has no SCORECARD_SELF_ID_KEY \
                      (32 random bytes, base64) to seal it with";

pub struct ComplianceApi {
    state: State,
}

/// Opened self-identification of one organisation: candidate id → (sex,
/// race or ethnicity) labels, `None` where unknown.
pub type Categories = HashMap<String, (Option<&'static str>, Option<&'static str>)>;

/// Latest decisions of one organisation: job id → candidate id → whether
/// the latest outcome selects.
type Selections = HashMap<String, HashMap<String, bool>>;

/// How long an organisation's opened self-identification stays in memory
/// after the last report that read it.
const KEEP_OPENED: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// What the compliance reads of an organisation keep between calls, each
/// under the version it was read at and checked against the database's at
/// every read (one small query each): opening 50,000 sealed values and
/// reducing every decision took most of a report's time. The opened values
/// are special-category data: they are dropped when unread for
/// [`KEEP_OPENED`] (swept every minute), and any change (an erasure
/// included) raises the version, so a stale value is never served.
#[derive(Default)]
pub struct ComplianceCache {
    categories: std::sync::Mutex<HashMap<String, Cached<Categories>>>,
    selections: std::sync::Mutex<HashMap<String, Cached<Selections>>>,
}

struct Cached<T> {
    version: i64,
    value: std::sync::Arc<T>,
    read_at: std::time::Instant,
}

impl ComplianceCache {
    /// Drops what has been unread for [`KEEP_OPENED`] (the server calls it
    /// every minute; every read does too).
    pub fn sweep(&self) {
        Self::sweep_map(&self.categories);
        Self::sweep_map(&self.selections);
    }

    fn sweep_map<T>(map: &std::sync::Mutex<HashMap<String, Cached<T>>>) {
        let now = std::time::Instant::now();
        map.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, c| now.duration_since(c.read_at) < KEEP_OPENED);
    }

    fn get<T>(
        map: &std::sync::Mutex<HashMap<String, Cached<T>>>,
        org: &str,
        version: i64,
    ) -> Option<std::sync::Arc<T>> {
        Self::sweep_map(map);
        let now = std::time::Instant::now();
        let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
        let cached = map.get_mut(org).filter(|c| c.version == version)?;
        cached.read_at = now;
        Some(cached.value.clone())
    }

    fn put<T>(map: &std::sync::Mutex<HashMap<String, Cached<T>>>, org: &str, version: i64, value: std::sync::Arc<T>) {
        let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(org.to_string(), Cached { version, value, read_at: std::time::Instant::now() });
    }
}

/// The associated data a candidate's sealed self-identification is bound to.
fn sealing_context(org: &str, candidate: &str) -> String {
    format!("scorecard.self_id.v1/{org}/{candidate}")
}

/// A candidate's self-identification sealed for storage: two bytes (the enum
/// numbers, part of the API contract) under the current key.
pub fn seal_self_identification(
    keys: &crate::auth::sealing::SealingKeys,
    org: &str,
    candidate: &str,
    sex: proto::Sex,
    race: proto::RaceEthnicity,
) -> String {
    keys.seal(&[sex as i32 as u8, race as i32 as u8], &sealing_context(org, candidate))
}

/// Category labels of each grouping a rater differential compares, in the
/// order their numbers take in the engine.
const SEX_LABELS: [&str; 3] = ["another", "female", "male"];
const RACE_LABELS: [&str; 7] = [
    "american_indian_or_alaska_native",
    "asian",
    "black_or_african_american",
    "hispanic_or_latino",
    "native_hawaiian_or_pacific_islander",
    "two_or_more",
    "white",
];

fn sex_label(sex: proto::Sex) -> Option<&'static str> {
    match sex {
        proto::Sex::Female => Some("female"),
        proto::Sex::Male => Some("male"),
        proto::Sex::Another => Some("another"),
        proto::Sex::Unspecified | proto::Sex::Declined => None,
    }
}

fn race_label(race: proto::RaceEthnicity) -> Option<&'static str> {
    use proto::RaceEthnicity as R;
    match race {
        R::HispanicOrLatino => Some("hispanic_or_latino"),
        R::White => Some("white"),
        R::BlackOrAfricanAmerican => Some("black_or_african_american"),
        R::NativeHawaiianOrPacificIslander => Some("native_hawaiian_or_pacific_islander"),
        R::Asian => Some("asian"),
        R::AmericanIndianOrAlaskaNative => Some("american_indian_or_alaska_native"),
        R::TwoOrMore => Some("two_or_more"),
        R::Unspecified | R::Declined => None,
    }
}

impl ComplianceApi {
    pub fn new(state: State) -> Self {
        Self { state }
    }

    async fn set(
        &self,
        caller: Caller,
        req: proto::SetSelfIdentificationRequest,
    ) -> Result<proto::SelfIdentification, Error> {
        caller.require_any(&WRITERS)?;
        let mut v = Violations::new();
        let candidate = Collection::Candidates.parse_field(&req.candidate, "candidate", &mut v);
        let sex = proto::Sex::try_from(req.sex).ok();
        if sex.is_none() {
            v.add("sex", "is not a Sex value");
        }
        let race = proto::RaceEthnicity::try_from(req.race_ethnicity).ok();
        if race.is_none() {
            v.add("race_ethnicity", "is not a RaceEthnicity value");
        }
        v.into_result()?;
        let (candidate, sex, race) = (candidate.unwrap_or_default(), sex.unwrap_or_default(), race.unwrap_or_default());
        let keys = self.state.self_id_keys.as_ref().ok_or_else(|| Error::FailedPrecondition(NO_KEY.into()))?;
        let sealed = seal_self_identification(keys, &caller.org, candidate, sex, race);
        let now = now_micros();
        self.state.store.put_self_identification(&caller.org, candidate, keys.current_id(), &sealed, now).await?;
        Ok(proto::SelfIdentification {
            candidate: req.candidate,
            sex: sex as i32,
            race_ethnicity: race as i32,
            update_time: timestamp(now),
        })
    }

    /// Every stored self-identification, opened: candidate id → (sex, race
    /// or ethnicity) labels. A value that does not open (its key is no longer
    /// configured) counts as unknown, and is logged. Kept between reads under
    /// the organisation's self-identification version.
    async fn categories(&self, org: &str) -> Result<std::sync::Arc<Categories>, Error> {
        let keys = self.state.self_id_keys.as_ref().ok_or_else(|| Error::FailedPrecondition(NO_KEY.into()))?;
        // The version first: a change committed after it was read makes the
        // next read open afresh, never the reverse.
        let version = self.state.store.self_identification_version(org).await?;
        let cache = &self.state.compliance.categories;
        if let Some(opened) = ComplianceCache::get(cache, org, version) {
            return Ok(opened);
        }
        let rows = self.state.store.self_identifications(org).await?;
        let keys = keys.clone();
        let context_org = org.to_string();
        // Opening is a few microseconds a value: tens of thousands are worth
        // both cores, and off the async workers.
        let (out, unopened) = tokio::task::spawn_blocking(move || {
            let open = |rows: &[(String, String, String)]| {
                let mut out: Categories = HashMap::with_capacity(rows.len());
                let mut unopened = 0usize;
                for (candidate, key_id, sealed) in rows {
                    match keys.open(key_id, sealed, &sealing_context(&context_org, candidate)).as_deref() {
                        Some([sex, race]) => {
                            let sex = proto::Sex::try_from(i32::from(*sex)).ok().and_then(sex_label);
                            let race = proto::RaceEthnicity::try_from(i32::from(*race)).ok().and_then(race_label);
                            out.insert(candidate.clone(), (sex, race));
                        }
                        _ => unopened += 1,
                    }
                }
                (out, unopened)
            };
            let (first, second) = rows.split_at(rows.len() / 2);
            std::thread::scope(|scope| {
                let other = scope.spawn(|| open(second));
                let (mut out, mut unopened) = open(first);
                let (more, more_unopened) = other.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                out.extend(more);
                unopened += more_unopened;
                (out, unopened)
            })
        })
        .await
        .map_err(|e| Error::Internal(format!("opening self-identification: {e}")))?;
        if unopened > 0 {
            tracing::warn!(
                org,
                unopened,
                "self-identifications sealed under a key no longer configured count as unknown"
            );
        }
        let out = std::sync::Arc::new(out);
        ComplianceCache::put(cache, org, version, out.clone());
        Ok(out)
    }

    /// Whether each (job, candidate)'s latest decision selects, kept between
    /// reads under the organisation's decision count.
    async fn selections(&self, org: &str) -> Result<std::sync::Arc<Selections>, Error> {
        let version = self.state.store.decision_count(org).await?;
        let cache = &self.state.compliance.selections;
        if let Some(selections) = ComplianceCache::get(cache, org, version) {
            return Ok(selections);
        }
        let mut out: Selections = HashMap::new();
        let rows = self.state.store.latest_outcomes(org).await?;
        for (job, candidate, outcome) in rows {
            out.entry(job).or_default().insert(candidate, outcome.selects());
        }
        let out = std::sync::Arc::new(out);
        ComplianceCache::put(cache, org, version, out.clone());
        Ok(out)
    }

    pub(crate) async fn report(
        &self,
        caller: Caller,
        req: proto::GetAdverseImpactReportRequest,
    ) -> Result<proto::AdverseImpactReport, Error> {
        caller.require_any(&READERS)?;
        let mut v = Violations::new();
        let job = Collection::Jobs.parse_optional(&req.job, "job", &mut v);
        let rubric = Collection::Rubrics.parse_optional(&req.rubric, "rubric", &mut v);
        if job.is_some() && rubric.is_some() {
            v.add("rubric", "give a job or a rubric, not both");
        }
        let (start, end) = time_window(&mut v, req.start_time.as_ref(), req.end_time.as_ref());
        if start >= end {
            v.add("end_time", "must be after start_time");
        }
        let share = req.min_category_share;
        if !(share == 0.0 || (share.is_finite() && share > 0.0 && share < 1.0)) {
            v.add("min_category_share", "must be 0 (the default, 0.02) or between 0 and 1");
        }
        v.into_result()?;
        let share = if share == 0.0 { impact::DEFAULT_MIN_CATEGORY_SHARE } else { share };
        let org = caller.org.as_str();
        if self.state.self_id_keys.is_none() {
            return Err(Error::FailedPrecondition(NO_KEY.into()));
        }

        // The jobs in scope.
        let jobs: HashSet<String> = match job {
            Some(job) => {
                self.state.store.get_job(org, job).await?.ok_or_else(|| Error::NotFound(req.job.clone()))?;
                HashSet::from([job.to_string()])
            }
            None => {
                if let Some(rubric) = rubric {
                    self.state
                        .store
                        .get_rubric(org, rubric, 0)
                        .await?
                        .ok_or_else(|| Error::NotFound(req.rubric.clone()))?;
                }
                self.jobs(org, rubric).await?
            }
        };
        let subjects = self.subjects(org, &jobs, start..end).await?;
        Ok(assemble(&subjects, share))
    }

    /// The whole organisation's report and each job's, from one gathering
    /// of the subjects (the compliance page). Jobs without a subject are left out.
    pub(crate) async fn overview(
        &self,
        caller: &Caller,
    ) -> Result<(proto::AdverseImpactReport, Vec<(String, proto::AdverseImpactReport)>), Error> {
        caller.require_any(&READERS)?;
        if self.state.self_id_keys.is_none() {
            return Err(Error::FailedPrecondition(NO_KEY.into()));
        }
        let org = caller.org.as_str();
        let jobs = self.jobs(org, None).await?;
        let subjects = self.subjects(org, &jobs, Micros::MIN..Micros::MAX).await?;
        let share = impact::DEFAULT_MIN_CATEGORY_SHARE;
        let mut by_job: std::collections::BTreeMap<&str, Vec<impact::Subject>> = Default::default();
        for s in &subjects {
            by_job.entry(&*s.job).or_default().push(s.clone());
        }
        let per_job = by_job.iter().map(|(job, subjects)| (job.to_string(), assemble(subjects, share))).collect();
        Ok((assemble(&subjects, share), per_job))
    }

    /// The ids of the organisation's jobs, or of those rated on `rubric`.
    async fn jobs(&self, org: &str, rubric: Option<&str>) -> Result<HashSet<String>, Error> {
        let mut jobs = HashSet::new();
        let mut after = String::new();
        loop {
            let (page, more) = self.state.store.list_jobs(org, Page::new(&after, 1000)).await?;
            jobs.extend(page.iter().filter(|j| rubric.is_none_or(|r| j.rubric_id == r)).map(|j| j.id.clone()));
            match (more, page.last()) {
                (true, Some(last)) => after = last.id.clone(),
                _ => break,
            }
        }
        Ok(jobs)
    }

    /// The subjects of `jobs` whose first scorecard was submitted in `window`,
    /// with their categories, scores, recommendations and selections.
    async fn subjects(
        &self,
        org: &str,
        jobs: &HashSet<String>,
        window: std::ops::Range<Micros>,
    ) -> Result<Vec<impact::Subject>, Error> {
        let mut rankings = Vec::with_capacity(jobs.len());
        for job in jobs {
            rankings.push((job.as_str(), self.state.calibrator.ranking(org, job).await?));
        }
        let scores: HashMap<(&str, &str), (f64, f64)> = rankings
            .iter()
            .flat_map(|(job, ranking)| {
                ranking.entries.iter().map(|e| ((*job, &*e.candidate_id), (e.overall.mean, e.overall.raw_mean)))
            })
            .collect();
        // Independent reads, each from its own cache or connection.
        let (categories, selections, summaries) =
            tokio::try_join!(self.categories(org), self.selections(org), self.state.calibrator.subject_summaries(org))?;
        let subjects: Vec<impact::Subject> = summaries
            .into_iter()
            .filter(|s| jobs.contains(&*s.job) && window.contains(&s.first_submitted_at))
            .map(|s| {
                let (sex, race_ethnicity) = categories.get(&*s.candidate).copied().unwrap_or((None, None));
                let score = scores.get(&(&*s.job, &*s.candidate));
                let selected = selections.get(&*s.job).and_then(|j| j.get(&*s.candidate)).copied();
                impact::Subject {
                    selected,
                    job: s.job.clone(),
                    sex,
                    race_ethnicity,
                    calibrated: score.map(|s| s.0),
                    raw_mean: score.map(|s| s.1),
                    recommends: 2 * s.recommending > s.scorecards,
                }
            })
            .collect();
        Ok(subjects)
    }
}

/// The report of a set of subjects.
fn assemble(subjects: &[impact::Subject], share: f64) -> proto::AdverseImpactReport {
    let count = |f: &dyn Fn(&impact::Subject) -> bool| subjects.iter().filter(|s| f(s)).count() as i32;
    proto::AdverseImpactReport {
        subject_count: subjects.len() as i32,
        unknown_sex_count: count(&|s| s.sex.is_none()),
        unknown_race_ethnicity_count: count(&|s| s.race_ethnicity.is_none()),
        tables: impact::tables(subjects, share).into_iter().map(table).collect(),
        generate_time: timestamp(now_micros()),
    }
}

impl ComplianceApi {
    pub(crate) async fn differentials(
        &self,
        caller: Caller,
        req: proto::ListRaterDifferentialsRequest,
    ) -> Result<proto::ListRaterDifferentialsResponse, Error> {
        caller.require_any(&READERS)?;
        let grouping = proto::Grouping::try_from(req.grouping).unwrap_or_default();
        let labels: &'static [&'static str] = match grouping {
            proto::Grouping::Sex => &SEX_LABELS,
            proto::Grouping::RaceEthnicity => &RACE_LABELS,
            _ => {
                return Err(Error::invalid("grouping", "must be GROUPING_SEX or GROUPING_RACE_ETHNICITY"));
            }
        };
        let page = super::PageRequest::parse(
            req.page_size,
            &req.page_token,
            &["ListRaterDifferentials", &req.grouping.to_string(), &req.flagged_only.to_string()],
        )?;
        let org = caller.org.as_str();
        let opened = self.categories(org).await?;
        let sex = grouping == proto::Grouping::Sex;
        let (all, calibrated_at) = self
            .state
            .calibrator
            .differentials(org, move |candidate| {
                let &(s, race) = opened.get(candidate)?;
                let label = if sex { s } else { race }?;
                labels.iter().position(|l| *l == label).map(|n| n as u8)
            })
            .await?;
        let comparison_count = all.iter().map(|(_, d)| d.comparisons.len()).sum::<usize>() as i32;
        let reference = all.iter().flat_map(|(_, d)| d.comparisons.first()).map(|c| c.reference).next();
        let label = |n: u8| labels.get(usize::from(n)).copied().unwrap_or("unknown").to_string();
        let mut rows: Vec<proto::RaterDifferential> = Vec::new();
        let mut more = false;
        for (rater, d) in
            all.iter().filter(|(rater, d)| rater.as_str() > page.after.as_str() && (!req.flagged_only || d.flagged()))
        {
            if rows.len() == page.size {
                more = true;
                break;
            }
            let comparisons: Vec<proto::RaterComparison> = d
                .comparisons
                .iter()
                .map(|c| proto::RaterComparison {
                    category: label(c.category),
                    reference_category: label(c.reference),
                    scorecard_count: c.scorecards as i32,
                    reference_scorecard_count: c.reference_scorecards as i32,
                    difference: c.difference,
                    lower: c.lower,
                    upper: c.upper,
                    p_value: c.p_value,
                    q_value: c.q_value,
                    flagged: c.flagged,
                })
                .collect();
            let detail = comparisons
                .iter()
                .filter(|c| c.flagged)
                .map(|c| {
                    format!(
                        "Scores {} candidates {:.2} points {} than the panel does, relative to {} candidates \
                         (90% interval {:+.2} to {:+.2}; {} and {} scorecards; false-discovery-adjusted p {:.3}).",
                        c.category,
                        c.difference.abs(),
                        if c.difference < 0.0 { "lower" } else { "higher" },
                        c.reference_category,
                        c.lower,
                        c.upper,
                        c.scorecard_count,
                        c.reference_scorecard_count,
                        c.q_value
                    )
                })
                .collect::<Vec<_>>()
                .join(" ");
            rows.push(proto::RaterDifferential {
                rater: rater.clone(),
                grouping: grouping as i32,
                flagged: d.flagged(),
                comparisons,
                detail,
            });
        }
        Ok(proto::ListRaterDifferentialsResponse {
            next_page_token: page.next_token(more, rows.last().map(|r| r.rater.clone())),
            differentials: rows,
            reference_category: reference.map(label).unwrap_or_default(),
            comparison_count,
            calibrate_time: timestamp(calibrated_at),
        })
    }
}

/// Seals every self-identification not under the current key again under it
/// (`scorecard self-id-rekey`). Returns how many were resealed, and how many
/// could not be opened with any configured key (left as they are).
pub async fn reseal_self_identifications(
    store: &crate::store::Store,
    keys: &crate::auth::sealing::SealingKeys,
) -> Result<(usize, usize), Error> {
    let (mut resealed, mut unopened) = (0, 0);
    for (org, candidate, key_id, sealed) in store.self_identifications_not_under(keys.current_id()).await? {
        let context = sealing_context(&org, &candidate);
        let Some(plain) = keys.open(&key_id, &sealed, &context) else {
            unopened += 1;
            continue;
        };
        let fresh = keys.seal(&plain, &context);
        if store.reseal_self_identification(&org, &candidate, &sealed, keys.current_id(), &fresh).await? {
            resealed += 1;
        }
    }
    Ok((resealed, unopened))
}

fn table(t: impact::Table) -> proto::ImpactTable {
    let measure = match t.measure {
        Measure::CalibratedScore => proto::Measure::CalibratedScore,
        Measure::RawMean => proto::Measure::RawMean,
        Measure::Recommendation => proto::Measure::Recommendation,
        Measure::Decision => proto::Measure::Decision,
    };
    let grouping = match t.grouping {
        Grouping::Sex => proto::Grouping::Sex,
        Grouping::RaceEthnicity => proto::Grouping::RaceEthnicity,
        Grouping::Intersectional => proto::Grouping::Intersectional,
    };
    proto::ImpactTable {
        measure: measure as i32,
        grouping: grouping as i32,
        rows: t
            .rows
            .into_iter()
            .map(|r| proto::ImpactRow {
                category: r.category,
                count: r.count as i32,
                rate: r.rate,
                impact_ratio: r.impact_ratio,
                excluded: r.excluded,
                below_four_fifths: r.below_four_fifths,
            })
            .collect(),
    }
}

#[tonic::async_trait]
impl ComplianceService for ComplianceApi {
    rpc!(set_self_identification, set, proto::SetSelfIdentificationRequest, proto::SelfIdentification);
    rpc!(get_adverse_impact_report, report, proto::GetAdverseImpactReportRequest, proto::AdverseImpactReport);
    rpc!(
        list_rater_differentials,
        differentials,
        proto::ListRaterDifferentialsRequest,
        proto::ListRaterDifferentialsResponse
    );
}
