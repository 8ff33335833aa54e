//! `scorecard demo`: a realistic organisation on a throw-away SQLite database,
//! served at once. Three jobs (two on the "Backend Engineer" template, one on
//! "Engineering Manager"), 60 candidates, 15 interviewers of whom some are harsh,
//! lenient, noisy, halo-prone, stuck in the middle of the scale or writing thin
//! evidence, and scorecards whose evidence quotes the rubric's behavioural
//! anchors. Candidates have voluntary self-identification (some declined) for
//! the compliance role's adverse-impact report, and one interviewer (oscar)
//! scores women a point lower than he sees them: a planted case for the rater
//! differentials of issue 17 (60 candidates are too few for the pooled rates
//! to show it). It prints ready-to-paste tokens and commands, then serves until
//! Ctrl-C.

use std::sync::Arc;

use tokio::net::TcpListener;

use crate::cmd::synthetic::Rng;
use scorecard::api::seal_self_identification;
use scorecard::auth::sealing::SealingKeys;
use scorecard::auth::{Claims, Verifier, mint_token};
use scorecard::domain::templates::templates;
use scorecard::domain::{
    Candidate, Interview, Job, Rating, Recommendation, RubricContent, ScorecardContent, new_id, now_micros,
};
use scorecard::proto;
use scorecard::server::{AppError, Settings, serve, shutdown_signal};
use scorecard::store::{NewScorecard, Store};

pub const ORG: &str = "demo-co";

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Normal,
    Harsh,
    Lenient,
    Noisy,
    Halo,
    Central,
    Thin,
    /// Rates women a point and a half lower than he sees them (on the latent scale).
    BiasedAgainstWomen,
}

const INTERVIEWERS: [(&str, Kind); 15] = [
    ("amara", Kind::Normal),
    ("bruno", Kind::Harsh),
    ("chen", Kind::Normal),
    ("dagny", Kind::Lenient),
    ("emeka", Kind::Normal),
    ("farah", Kind::Noisy),
    ("goran", Kind::Normal),
    ("hana", Kind::Halo),
    ("ines", Kind::Normal),
    ("jonas", Kind::Central),
    ("kofi", Kind::Normal),
    ("lena", Kind::Harsh),
    ("mateo", Kind::Normal),
    ("nadia", Kind::Thin),
    ("oscar", Kind::BiasedAgainstWomen),
];

/// Candidates' names: one first name and one surname each, never a surname
/// shared within the demo (a terminal or a scatter plot must tell people
/// apart).
const FIRST: [&str; 60] = [
    "Ada",
    "Bilal",
    "Carmen",
    "Dmitri",
    "Elif",
    "Femi",
    "Greta",
    "Hugo",
    "Isla",
    "Jae",
    "Kavya",
    "Luca",
    "Maya",
    "Nikolai",
    "Olu",
    "Priya",
    "Quentin",
    "Rosa",
    "Sven",
    "Tamar",
    "Amara",
    "Bruno",
    "Chiara",
    "Diego",
    "Esther",
    "Farid",
    "Grace",
    "Hiroshi",
    "Ingrid",
    "Jonas",
    "Keiko",
    "Lars",
    "Mei",
    "Nasser",
    "Oksana",
    "Pablo",
    "Rania",
    "Samuel",
    "Thandiwe",
    "Umar",
    "Valentina",
    "Wei",
    "Ximena",
    "Yusuf",
    "Zofia",
    "Aiko",
    "Benedikt",
    "Chidi",
    "Dana",
    "Emeka",
    "Fatima",
    "Gustavo",
    "Hana",
    "Ivan",
    "Jasmin",
    "Kwame",
    "Leila",
    "Marek",
    "Noor",
    "Omar",
];
const LAST: [&str; 60] = [
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Tanaka",
    "Haddad",
    "Kowalski",
    "Mensah",
    "Rossi",
    "Nguyen",
    "Schmidt",
    "Alvarez",
    "Petrov",
    "Chen",
    "O'Brien",
    "Mbeki",
    "Johansson",
    "Farouk",
    "Dubois",
    "Sato",
    "Novak",
    "Adeyemi",
    "Bianchi",
    "Castillo",
    "Demir",
    "Eriksen",
    "Fischer",
    "Gupta",
    "Horvat",
    "Ibrahim",
    "Jansen",
    "Kim",
    "Larsen",
    "Mahlaba",
    "Nakamura",
    "Oduya",
    "Park",
    "Quispe",
    "Reyes",
    "Silva",
    "Torres",
    "Usman",
    "Varga",
    "Wójcik",
    "Xu",
    "Yilmaz",
    "Zhou",
    "Abara",
    "Brennan",
    "Costa",
    "Dlamini",
    "Esposito",
    "Ferreira",
    "Greco",
    "Hoang",
    "Iyer",
    "Jovanović",
    "Kaur",
    "Lopez",
    "Moretti",
    "Nowak",
];
/// Candidates per job.
const PER_JOB: usize = 20;

/// An address for a demo name: ASCII letters only.
fn email_of(first: &str, last: &str) -> String {
    let part = |s: &str| -> String {
        s.chars()
            .map(|c| match c {
                'ó' => 'o',
                'ć' => 'c',
                c => c,
            })
            .filter(char::is_ascii_alphabetic)
            .collect::<String>()
            .to_lowercase()
    };
    format!("{}.{}@example.com", part(first), part(last))
}

/// The `n`th candidate of job `j`: (first name, surname), each used once.
fn candidate_name(j: usize, n: usize) -> (&'static str, &'static str) {
    let i = (j * PER_JOB + n) % FIRST.len();
    // 7 is prime to 60: a permutation, so each surname is used once while
    // first names and surnames pair differently from their lists' order.
    (FIRST[i], LAST[(i * 7) % LAST.len()])
}

/// A candidate's self-identification: mostly given, sometimes declined. Drawn
/// from a generator of its own, so the rest of the demo is the same with or
/// without it.
fn self_identification(rng: &mut Rng) -> (proto::Sex, proto::RaceEthnicity) {
    let sex = match rng.below(100) {
        0..45 => proto::Sex::Female,
        45..90 => proto::Sex::Male,
        90..93 => proto::Sex::Another,
        _ => proto::Sex::Declined,
    };
    use proto::RaceEthnicity as R;
    let race = match rng.below(100) {
        0..40 => R::White,
        40..60 => R::Asian,
        60..75 => R::HispanicOrLatino,
        75..88 => R::BlackOrAfricanAmerican,
        88..92 => R::TwoOrMore,
        _ => R::Declined,
    };
    (sex, race)
}

/// Seeds the demo organisation, self-identification sealed under `keys`
/// (none without keys); returns the job names.
pub async fn seed(store: &Store, keys: Option<&SealingKeys>) -> Result<Vec<(String, String)>, AppError> {
    let mut rng = Rng::new(2026);
    let mut identities = Rng::new(1607);
    let now = now_micros();
    let day = 86_400_000_000_i64;
    let all = templates();
    let mut jobs = Vec::new();
    for (i, (title, template)) in [
        ("Backend Engineer", "backend-engineer"),
        ("Senior Backend Engineer", "backend-engineer"),
        ("Engineering Manager", "engineering-manager"),
    ]
    .iter()
    .enumerate()
    {
        let content: RubricContent =
            all.iter().find(|t| t.id == *template).map(|t| t.rubric.clone()).unwrap_or_else(|| all[0].rubric.clone());
        let rubric = store.create_rubric(ORG, &new_id(), &content, now).await?;
        let job = Job {
            id: new_id(),
            title: title.to_string(),
            external_id: format!("gh-job-{}", 100 + i),
            rubric_id: rubric.id.clone(),
            rubric_revision: 1,
            created_at: now,
            updated_at: now,
            // Five-eighths up the scale: 3.5 on 1..5.
            hiring_bar: Some(f64::from(content.scale.min) + 0.625 * f64::from(content.scale.max - content.scale.min)),
        };
        store.create_job(ORG, &job).await?;
        jobs.push((job, content));
    }
    let mut names = Vec::new();
    for (j, (job, rubric)) in jobs.iter().enumerate() {
        names.push((format!("jobs/{}", job.id), job.title.clone()));
        for n in 0..PER_JOB {
            let (first, last) = candidate_name(j, n);
            let display_name = format!("{first} {last}");
            let candidate = Candidate {
                id: new_id(),
                external_id: format!("ats-{j}-{n}"),
                display_name: display_name.clone(),
                email: email_of(first, last),
                erased_at: None,
                created_at: now,
                updated_at: now,
            };
            store.create_candidate(ORG, &candidate).await?;
            let (sex, race) = self_identification(&mut identities);
            if let Some(keys) = keys {
                let sealed = seal_self_identification(keys, ORG, &candidate.id, sex, race);
                store.put_self_identification(ORG, &candidate.id, keys.current_id(), &sealed, now).await?;
            }
            let woman = sex == proto::Sex::Female;
            let general = rng.normal();
            let technical = 0.5 * rng.normal();
            let communication = 0.5 * rng.normal();
            let when = now - (1 + rng.below(120)) as i64 * day;
            let mut panel: Vec<usize> = Vec::new();
            while panel.len() < 4 {
                let r = rng.below(INTERVIEWERS.len());
                if !panel.contains(&r) {
                    panel.push(r);
                }
            }
            for (slot, &r) in panel.iter().enumerate() {
                let (interviewer, kind) = INTERVIEWERS[r];
                let mut focus: Vec<usize> = Vec::new();
                let want = 3 + rng.below(2);
                while focus.len() < want {
                    let k = rng.below(rubric.competencies.len());
                    if !focus.contains(&k) {
                        focus.push(k);
                    }
                }
                let interview = Interview {
                    id: new_id(),
                    job_id: job.id.clone(),
                    candidate_id: candidate.id.clone(),
                    interviewer: interviewer.to_string(),
                    focus_competencies: focus.iter().map(|&k| rubric.competencies[k].key.clone()).collect(),
                    scheduled_at: when + slot as i64 * 3_600_000_000,
                    scorecard_id: None,
                    external_id: String::new(),
                    created_at: now,
                    updated_at: now,
                };
                store.create_interview(ORG, &interview).await?;
                let impression = general + 0.5 * (technical + communication) + 0.4 * rng.normal();
                let mut ratings = Vec::new();
                for &k in &focus {
                    let c = &rubric.competencies[k];
                    let level = general
                        + if c.dimension_key == "technical" { technical } else { communication }
                        + 0.3 * rng.normal();
                    let latent = match kind {
                        Kind::Normal | Kind::Thin => level + 0.5 * rng.normal(),
                        Kind::Harsh => level - 1.2 + 0.5 * rng.normal(),
                        Kind::Lenient => level + 1.2 + 0.5 * rng.normal(),
                        Kind::Noisy => level + 1.4 * rng.normal(),
                        Kind::Halo => impression + 0.1 * rng.normal(),
                        Kind::Central => 0.3 * level + 0.3 * rng.normal(),
                        Kind::BiasedAgainstWomen => level - if woman { 1.5 } else { 0.0 } + 0.5 * rng.normal(),
                    };
                    // 1..4 through thresholds at -1, 0, 1.
                    let score = 1 + [-1.0, 0.0, 1.0].iter().filter(|&&t| latent > t).count() as i32;
                    let anchor =
                        c.anchors.iter().find(|a| a.score == score).map(|a| a.description.clone()).unwrap_or_default();
                    let evidence = if kind == Kind::Thin {
                        ["Seems smart.", "Good attitude.", "Nice person, culture fit.", "Fine."][rng.below(4)]
                            .to_string()
                    } else {
                        format!("{anchor} (Observed in the {} exercise.)", c.title.to_lowercase())
                    };
                    ratings.push(Rating { competency: c.key.clone(), score, evidence });
                }
                let mean = ratings.iter().map(|r| f64::from(r.score)).sum::<f64>() / ratings.len() as f64;
                let recommendation = match mean {
                    m if m >= 3.5 => Recommendation::StrongYes,
                    m if m >= 2.5 => Recommendation::Yes,
                    m if m >= 1.5 => Recommendation::No,
                    _ => Recommendation::StrongNo,
                };
                let content =
                    ScorecardContent { ratings, recommendation, summary: format!("Interview with {display_name}.") };
                store
                    .submit_scorecard(
                        ORG,
                        NewScorecard {
                            id: &new_id(),
                            interview: &interview,
                            content: &content,
                            author: interviewer,
                            request_id: "",
                            request_hash: "",
                            now: interview.scheduled_at + 3_600_000_000,
                        },
                    )
                    .await?;
            }
        }
    }
    Ok(names)
}

fn token(secret: &str, sub: &str, role: &str) -> Result<String, AppError> {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = Claims {
        sub: sub.into(),
        org: ORG.into(),
        roles: vec![role.into()],
        exp: now + 12 * 3600,
        nbf: None,
        iat: Some(now),
        iss: None,
        aud: None,
    };
    mint_token(secret, &claims).map_err(|e| AppError::Config(e.to_string()))
}

/// Runs the demo until Ctrl-C / SIGTERM.
pub async fn run(listen: &str, http_listen: &str) -> Result<(), AppError> {
    let dir = tempfile_dir()?;
    let url = format!("sqlite://{}", dir.join("demo.db").display());
    let store = Store::connect(&url, 4).await?;
    store.migrate().await?;
    // A throw-away key, like the database and the token secret.
    let key = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, rand::random::<[u8; 32]>());
    let keys = Arc::new(SealingKeys::new(&key, "").map_err(AppError::Config)?);
    let jobs = seed(&store, Some(&keys)).await?;
    let secret = hex::encode(rand::random::<[u8; 32]>());
    let verifier = Verifier::new(Some(&secret), None, None, None).map_err(|e| AppError::Config(e.to_string()))?;
    let listener =
        TcpListener::bind(listen).await.map_err(|e| AppError::Config(format!("cannot listen on {listen}: {e}")))?;
    let addr = listener.local_addr().map_err(|e| AppError::Server(e.to_string()))?;
    let http = TcpListener::bind(http_listen)
        .await
        .map_err(|e| AppError::Config(format!("cannot listen on {http_listen}: {e}")))?;
    let http_addr = http.local_addr().map_err(|e| AppError::Server(e.to_string()))?;
    let recruiter = token(&secret, "rita", "recruiter")?;
    let admin = token(&secret, "alice", "admin")?;
    let interviewer = token(&secret, "bruno", "interviewer")?;
    let compliance = token(&secret, "cora", "compliance")?;
    let job = jobs.first().map(|j| j.0.clone()).unwrap_or_default();
    println!("scorecard demo: organisation `{ORG}` with {} jobs, 60 candidates, 15 interviewers", jobs.len());
    for (name, title) in &jobs {
        println!("  {name}  {title}");
    }
    println!();
    println!("export SCORECARD_ADDR=http://{addr}");
    println!("export SCORECARD_TOKEN={recruiter}   # rita, recruiter");
    println!("ADMIN={admin}");
    println!("BRUNO={interviewer}   # an interviewer");
    println!();
    println!("scorecard ranking --job {job}   # --output csv for a spreadsheet");
    println!("scorecard raters --flagged");
    println!("scorecard reliability --job {job}");
    println!("SCORECARD_TOKEN={compliance} scorecard compliance impact   # cora, compliance: adverse impact");
    println!("SCORECARD_TOKEN={compliance} scorecard compliance raters   # interviewers who score women differently");
    println!(
        "curl -H 'content-type: application/json' -H \"authorization: Bearer $SCORECARD_TOKEN\" -d '{{\"job\":\"{job}\",\"pageSize\":5}}' http://{addr}/scorecard.v1.CalibrationService/GetRanking   # JSON over HTTP (Connect)"
    );
    println!(
        "buf curl --http2-prior-knowledge --protocol grpc -H \"authorization: Bearer $SCORECARD_TOKEN\" -d '{{\"job\":\"{job}\"}}' http://{addr}/scorecard.v1.CalibrationService/GetRanking"
    );
    println!();
    println!("Open the visual report (signs this browser in as rita):");
    println!("  http://{http_addr}/login#token={recruiter}");
    println!("Open the compliance page (signs this browser in as cora, compliance):");
    println!("  http://{http_addr}/login#token={compliance}");
    println!("Prometheus metrics: http://{http_addr}/metrics");
    println!();
    println!("demo ready; Ctrl-C to stop (the database is thrown away)");
    let settings = Settings { self_id_keys: Some(keys), ..Default::default() };
    let result = serve(listener, Some(http), store.clone(), Arc::new(verifier), settings, shutdown_signal()).await;
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn tempfile_dir() -> Result<std::path::PathBuf, AppError> {
    let dir = std::env::temp_dir().join(format!("scorecard-demo-{}", new_id()));
    std::fs::create_dir_all(&dir).map_err(|e| AppError::Config(format!("cannot create {}: {e}", dir.display())))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_candidates_never_share_a_name_or_a_surname() {
        let names: Vec<(&str, &str)> = (0..3).flat_map(|j| (0..PER_JOB).map(move |n| candidate_name(j, n))).collect();
        let surnames: std::collections::HashSet<&str> = names.iter().map(|n| n.1).collect();
        let firsts: std::collections::HashSet<&str> = names.iter().map(|n| n.0).collect();
        assert_eq!(surnames.len(), names.len(), "a surname is shared");
        assert_eq!(firsts.len(), names.len(), "a first name is shared");
        assert_eq!(email_of("Zofia", "Wójcik"), "zofia.wojcik@example.com");
        assert_eq!(email_of("Aoife", "O'Brien"), "aoife.obrien@example.com");
    }
}
