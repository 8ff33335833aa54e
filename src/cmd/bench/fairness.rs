//! `scorecard bench fairness`: how well the rater differentials
//! (`ComplianceService.ListRaterDifferentials`) find interviewers planted to
//! score one group lower than they see them, in synthetic organisations with
//! known truth; and how long the compliance reports take through the API on
//! an organisation of many subjects.

use std::time::{Duration, Instant};

use crate::cmd::bench::import::{BenchServer, authorised, import_items, job_items};
use crate::cmd::synthetic::{GroupBias, Org, Spec};
use scorecard::api::convert::timestamp;
use scorecard::calibration::differentials::differentials;
use scorecard::calibration::raters::Thresholds;
use scorecard::proto::{self, import_item::Item};
use scorecard::server::AppError;

/// The planted bias: 0.15 of the scale's span (0.6 points on 1..5).
const PLANTED_SHARE_OF_SPAN: f64 = 0.15;

/// One scenario: categories of candidates and who is biased against which.
struct Scenario {
    name: &'static str,
    shares: Vec<f64>,
    against: u8,
    biased_raters: usize,
}

fn scenarios() -> Vec<Scenario> {
    vec![
        // Sex: female, male, another; 2% unknown.
        Scenario {
            name: "sex, 2 raters biased against women",
            shares: vec![0.48, 0.48, 0.02],
            against: 0,
            biased_raters: 2,
        },
        Scenario { name: "sex, nobody biased", shares: vec![0.48, 0.48, 0.02], against: 0, biased_raters: 0 },
        // Race or ethnicity, EEO-1-like shares: white, asian, black,
        // hispanic, two or more; 5% unknown.
        Scenario {
            name: "race/ethnicity, 2 raters biased against a 20% group",
            shares: vec![0.45, 0.15, 0.20, 0.12, 0.03],
            against: 2,
            biased_raters: 2,
        },
    ]
}

#[derive(Default)]
struct Tally {
    orgs: usize,
    planted: usize,
    found: usize,
    false_flags: usize,
    /// Planted raters' estimated difference less the planted one (scale points).
    errors: Vec<f64>,
    /// Whether a planted rater's 90% interval held the planted difference.
    covered: Vec<bool>,
}

/// The synthetic part: recall, precision and false flags per organisation.
pub fn accuracy(orgs: usize, points: &[u8], thresholds: &Thresholds) {
    println!("# scorecard fairness benchmark");
    println!();
    println!(
        "Reference organisations (300 candidates × 5 interviews × 3–5 focus competencies, 36 raters, 12 of them \
         planted with other rater faults); planted bias {PLANTED_SHARE_OF_SPAN} of the scale's span; flags at \
         |difference| > {} of the span, ≥ {} scorecards a side, Benjamini–Hochberg at {}.",
        thresholds.differential, thresholds.differential_min_scorecards, thresholds.differential_fdr
    );
    for &p in points {
        let span = f64::from(p - 1);
        println!();
        println!("## Scale 1..{p} (planted bias {:.2} points), {orgs} organisations", PLANTED_SHARE_OF_SPAN * span);
        println!();
        println!(
            "| scenario | recall | precision | unbiased raters flagged per organisation | planted difference: mean error (− = short of it), 90% interval coverage |"
        );
        println!("|---|---|---|---|---|");
        for scenario in scenarios() {
            let mut t = Tally::default();
            for seed in 0..orgs as u64 {
                let mut spec = Spec::reference(1_000 + seed);
                spec.points = p;
                spec.groups = Some(GroupBias {
                    shares: scenario.shares.clone(),
                    against: scenario.against,
                    shift: -PLANTED_SHARE_OF_SPAN * span,
                    raters: scenario.biased_raters,
                });
                let mut org = Org::generate(&spec);
                org.model.fit(scorecard::calibrator::FIT_SWEEPS, scorecard::calibrator::FIT_TOLERANCE);
                tally(&org, thresholds, scenario.against, PLANTED_SHARE_OF_SPAN * span, &mut t);
            }
            let recall = if t.planted > 0 { format!("{:.3}", t.found as f64 / t.planted as f64) } else { "–".into() };
            let precision = match t.found + t.false_flags {
                0 => "–".to_string(),
                n => format!("{:.3}", t.found as f64 / n as f64),
            };
            let (error, coverage) = if t.errors.is_empty() {
                ("–".to_string(), "–".to_string())
            } else {
                let n = t.errors.len() as f64;
                (
                    format!("{:+.3}", t.errors.iter().sum::<f64>() / n),
                    format!("{:.3}", t.covered.iter().filter(|c| **c).count() as f64 / n),
                )
            };
            println!(
                "| {} | {recall} | {precision} | {:.3} | {error}, {coverage} |",
                scenario.name,
                t.false_flags as f64 / t.orgs as f64
            );
        }
    }
    println!();
    println!("targets (1..5, sex): recall ≥ 0.8, precision ≥ 0.8, unbiased raters flagged ≤ 0.05 per organisation");
}

fn tally(org: &Org, thresholds: &Thresholds, against: u8, planted: f64, t: &mut Tally) {
    t.orgs += 1;
    t.planted += org.biased_raters.len();
    let found = differentials(org.model.clone(), &org.scorecards, &org.subject_category, thresholds);
    for d in &found {
        let biased = org.biased_raters.contains(&d.rater);
        if d.flagged() {
            if biased {
                t.found += 1;
            } else {
                t.false_flags += 1;
            }
        }
        if !biased {
            continue;
        }
        // The planted category's comparison: against the reference when it
        // is not the reference itself, else every other category against it.
        for c in &d.comparisons {
            let truth = if c.category == against {
                -planted
            } else if c.reference == against {
                planted
            } else {
                continue;
            };
            // Signed so that negative means the estimate falls short of the planted size.
            t.errors.push((c.difference - truth) * truth.signum());
            t.covered.push(c.lower <= truth && truth <= c.upper);
        }
    }
}

/// An organisation's history with self-identification and decisions:
/// `subjects` candidates, each for one of 100 jobs, interviewed twice by 400
/// interviewers; 95% self-identified, 60% with a decision.
fn history(rubric: &proto::Rubric, subjects: usize) -> Vec<proto::ImportItem> {
    let keys: Vec<String> = rubric.competencies.iter().map(|c| c.key.clone()).collect();
    let scale = rubric.scale.unwrap_or_default();
    let jobs = 100.min(subjects.max(1));
    let mut items = job_items(rubric, jobs);
    let start = scorecard::domain::now_micros() - 400 * 24 * 3_600 * 1_000_000;
    for c in 0..subjects {
        items.push(Item::Candidate(proto::ImportCandidate {
            external_id: format!("cand-{c}"),
            display_name: format!("Candidate {c}"),
            email: String::new(),
        }));
        if c % 20 != 0 {
            items.push(Item::SelfIdentification(proto::ImportSelfIdentification {
                candidate_external_id: format!("cand-{c}"),
                sex: [proto::Sex::Female, proto::Sex::Male][c % 2] as i32,
                race_ethnicity: [
                    proto::RaceEthnicity::White,
                    proto::RaceEthnicity::Asian,
                    proto::RaceEthnicity::BlackOrAfricanAmerican,
                    proto::RaceEthnicity::HispanicOrLatino,
                ][(c / 2) % 4] as i32,
            }));
        }
        for n in 0..2 {
            let interview = format!("int-{c}-{n}");
            let when = start + (2 * c + n) as i64 * 60_000_000;
            let focus: Vec<String> = (0..3).map(|k| keys[(c + n + k * 3) % keys.len()].clone()).collect();
            items.push(Item::Interview(proto::ImportInterview {
                external_id: interview.clone(),
                job_external_id: format!("job-{}", c % jobs),
                candidate_external_id: format!("cand-{c}"),
                interviewer: format!("rater-{}", (c * 7 + n * 13) % 400),
                focus_competencies: focus.clone(),
                scheduled_time: timestamp(when),
            }));
            items.push(Item::Scorecard(proto::ImportScorecard {
                interview_external_id: interview,
                ratings: focus
                    .iter()
                    .enumerate()
                    .map(|(k, key)| proto::Rating {
                        competency: key.clone(),
                        score: scale.min + ((c * 3 + n + k) % (scale.max - scale.min + 1) as usize) as i32,
                        evidence: format!("Explained the trade-off they chose and why ({key})."),
                    })
                    .collect(),
                recommendation: [proto::Recommendation::Yes, proto::Recommendation::No][(c + n) % 2] as i32,
                summary: String::new(),
                submit_time: timestamp(when + 3_600_000_000),
            }));
        }
        if c % 5 < 3 {
            items.push(Item::Decision(proto::ImportDecision {
                external_id: format!("dec-{c}"),
                job_external_id: format!("job-{}", c % jobs),
                candidate_external_id: format!("cand-{c}"),
                outcome: [proto::Outcome::Advanced, proto::Outcome::Rejected][c % 2] as i32,
                reason: String::new(),
                decide_time: timestamp(start + (2 * c + 3) as i64 * 60_000_000),
            }));
        }
    }
    items.into_iter().map(|item| proto::ImportItem { item: Some(item) }).collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The server part: an organisation of `subjects` subjects imported through
/// the API, then the adverse-impact report and rater differentials timed.
pub async fn report_speed(subjects: usize, database_url: Option<String>) -> Result<(), AppError> {
    let key = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, rand::random::<[u8; 32]>());
    let keys = scorecard::auth::sealing::SealingKeys::new(&key, "").map_err(AppError::Config)?;
    let settings = scorecard::server::Settings { self_id_keys: Some(std::sync::Arc::new(keys)), ..Default::default() };
    let bench = BenchServer::start(database_url, settings).await?;
    let rubric = bench.rubric().await?;
    let items = history(&rubric, subjects);
    println!(
        "compliance report benchmark: {subjects} subjects, {} items imported, database {}",
        items.len(),
        bench.kind
    );
    let started = Instant::now();
    let (_, failed) = import_items(bench.channel.clone(), &bench.token, &items, false).await?;
    println!("  imported in {:.1} s ({failed} failed)", started.elapsed().as_secs_f64());
    let token = bench.token_with_role("auditor", "compliance")?;
    let mut client = proto::compliance_service_client::ComplianceServiceClient::new(bench.channel.clone())
        .max_decoding_message_size(64 * 1024 * 1024);
    let mut report = Vec::new();
    let mut subject_count = 0;
    for _ in 0..11 {
        let t = Instant::now();
        let r = client
            .get_adverse_impact_report(authorised(&token, proto::GetAdverseImpactReportRequest::default())?)
            .await
            .map_err(|s| AppError::Server(s.message().to_string()))?
            .into_inner();
        report.push(t.elapsed());
        subject_count = r.subject_count;
    }
    let first = report.remove(0);
    report.sort();
    let mut raters = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        client
            .list_rater_differentials(authorised(
                &token,
                proto::ListRaterDifferentialsRequest { grouping: proto::Grouping::Sex as i32, ..Default::default() },
            )?)
            .await
            .map_err(|s| AppError::Server(s.message().to_string()))?;
        raters.push(t.elapsed());
    }
    raters.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "  GetAdverseImpactReport, whole organisation ({subject_count} subjects): first {:.0} ms, then median {:.0} ms, \
         p90 {:.0} ms, max {:.0} ms over {}",
        ms(first),
        ms(percentile(&report, 0.5)),
        ms(percentile(&report, 0.9)),
        ms(*report.last().unwrap_or(&first)),
        report.len()
    );
    println!(
        "  ListRaterDifferentials (sex, first page): median {:.0} ms, max {:.0} ms over {}",
        ms(percentile(&raters, 0.5)),
        ms(*raters.last().unwrap_or(&Duration::ZERO)),
        raters.len()
    );
    let met = subject_count as usize >= 50_000 && percentile(&report, 0.5) < Duration::from_millis(200);
    println!("target: a report for 50,000 subjects in under 200 ms -> {}", if met { "met" } else { "see figures" });
    bench.finish().await;
    if failed > 0 {
        return Err(AppError::Server(format!("{failed} items failed to import")));
    }
    Ok(())
}
