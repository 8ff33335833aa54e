//! The HTTP listener end to end, on SQLite and PostgreSQL: report pages with
//! the demo organisation's numbers, sign-in by token, roles and tenancy,
//! security headers, audit of page views, `/metrics`, and gRPC-Web on the gRPC
//! port.

mod common;

use common::{Db, TestApp, req, test_settings, token, verifier};
use prost::Message;
use scorecard::proto;

fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

/// The demo's organisation (`scorecard demo`).
const DEMO_ORG: &str = "demo-co";

/// Seeds the demo organisation into the app's database behind the server's
/// back (`scorecard demo --seed-into`), then restarts the server so it loads
/// what is there (as `scorecard demo` seeds before serving); returns the app
/// and (job id, title) pairs.
async fn seed_demo(app: TestApp) -> (TestApp, Vec<(String, String)>) {
    let url = app.database_url.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_scorecard"))
            .args(["demo", "--seed-into", &url])
            // The server's key: the demo's self-identification opens for the compliance page.
            .env("SCORECARD_SELF_ID_KEY", common::SELF_ID_KEY)
            .output()
    })
    .await
    .expect("join")
    .expect("run scorecard demo --seed-into");
    assert!(out.status.success(), "seeding failed: {}", String::from_utf8_lossy(&out.stderr));
    let jobs: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .map(|(name, title)| (name.trim_start_matches("jobs/").to_string(), title.to_string()))
        .collect();
    assert_eq!(jobs.len(), 3, "the demo has three jobs");
    (app.restart().await, jobs)
}

/// Waits (up to ten seconds: audit rows are written in batches, shortly
/// after) until the audit log's events of `method` satisfy `seen`.
async fn await_audit(app: &TestApp, method: &str, seen: impl Fn(&[proto::AuditEvent]) -> bool) {
    let admin = token("alice", DEMO_ORG, &["admin"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let audited = app
            .audit()
            .list_audit_events(req(
                &admin,
                proto::ListAuditEventsRequest { method: method.into(), ..Default::default() },
            ))
            .await
            .expect("audit")
            .into_inner()
            .audit_events;
        if seen(&audited) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{method} audited: {audited:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn report_pages(db: Db) {
    let (app, jobs) = seed_demo(TestApp::start(db).await).await;
    let (job_id, job_title) = jobs[0].clone();
    let recruiter = token("rita", DEMO_ORG, &["recruiter"]);
    let base = format!("http://{}", app.http_addr);
    let client = http();

    // Not signed in: pages send the browser to the sign-in page.
    let anonymous = client.get(format!("{base}/jobs/{job_id}")).send().await.expect("get");
    assert_eq!(anonymous.status(), 303);
    assert_eq!(anonymous.headers()["location"], "/login");
    let login = client.get(format!("{base}/login")).send().await.expect("login page");
    assert_eq!(login.status(), 200);
    assert!(login.text().await.expect("body").contains("name=\"token\""));

    // The same numbers as the API, drawn.
    let page = client.get(format!("{base}/jobs/{job_id}")).bearer_auth(&recruiter).send().await.expect("report");
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().expect("csp").to_string();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.expect("body");
    assert!(html.contains(&format!("<h1>{job_title}</h1>")), "job title shown");
    let ranking = app
        .calibration()
        .get_ranking(req(&recruiter, proto::GetRankingRequest { job: format!("jobs/{job_id}"), ..Default::default() }))
        .await
        .expect("ranking")
        .into_inner();
    assert_eq!(ranking.entries.len(), 20);
    let mut hiring = app.hiring();
    for entry in &ranking.entries {
        let candidate = hiring
            .get_candidate(req(&recruiter, proto::GetCandidateRequest { name: entry.candidate.clone() }))
            .await
            .expect("candidate")
            .into_inner();
        // The table row carries rank, tier, name, the calibrated score, P(≥ bar)
        // and the raw mean as the API gives them.
        let p_above_bar = entry.p_above_bar.map(|p| format!("{p:.2}")).unwrap_or_else(|| "–".into());
        let row = format!(
            "<tr><td>{}</td><td>{}</td><th scope=\"row\">{}</th><td>{:.2}</td><td>{:.2} – {:.2}</td><td>{}</td><td>{:.2}</td>",
            entry.rank,
            entry.tier,
            html_text(&candidate.display_name),
            entry.score,
            entry.score_lower,
            entry.score_upper,
            p_above_bar,
            entry.raw_mean
        );
        assert!(html.contains(&row), "row for {} missing: {row}", candidate.display_name);
    }
    let flagged = app
        .calibration()
        .list_rater_reports(req(
            &recruiter,
            proto::ListRaterReportsRequest { flagged_only: true, ..Default::default() },
        ))
        .await
        .expect("reports")
        .into_inner()
        .reports;
    assert!(flagged.len() >= 3, "the demo plants flagged raters");
    for r in &flagged {
        assert!(html.contains(&format!("{} (", r.rater)), "flagged rater {} labelled on the map", r.rater);
    }
    assert!(html.contains("<svg class=\"chart\" role=\"img\""), "charts are images with titles");
    assert!(html.contains("Technical and Communication"), "the dimension scatter");

    // Style and script are served from the site itself (the CSP allows nothing else).
    let css = client.get(format!("{base}/static/report.css")).send().await.expect("css");
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");

    // Roles and tenancy are the API's: an interviewer may not read rankings,
    // another organisation does not see this job, a bad id is refused.
    let interviewer = token("bruno", DEMO_ORG, &["interviewer"]);
    let denied = client.get(format!("{base}/jobs/{job_id}")).bearer_auth(&interviewer).send().await.expect("get");
    assert_eq!(denied.status(), 403);
    assert!(!denied.text().await.expect("body").contains("<svg"), "nothing of the ranking leaks");
    let stranger = token("eve", "other-org", &["admin"]);
    let missing = client.get(format!("{base}/jobs/{job_id}")).bearer_auth(&stranger).send().await.expect("get");
    assert_eq!(missing.status(), 404);
    let bad = client.get(format!("{base}/jobs/not%20an%20id")).bearer_auth(&recruiter).send().await.expect("get");
    assert_eq!(bad.status(), 400);
    let forged = client.get(format!("{base}/")).bearer_auth("not-a-token").send().await.expect("get");
    assert_eq!(forged.status(), 303, "an invalid token is no session");

    // Sign-in: a cross-site post is refused; the real one sets an HttpOnly,
    // SameSite cookie that then opens the pages.
    let sign_in = |origin: &str, token: &str| {
        client
            .post(format!("{base}/session"))
            .header("origin", origin)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={token}"))
            .send()
    };
    let cross = sign_in("https://evil.example", &recruiter).await.expect("post");
    assert_eq!(cross.status(), 403);
    assert!(cross.headers().get("set-cookie").is_none());
    let wrong = sign_in(&base, "x.y.z").await.expect("post");
    assert_eq!(wrong.status(), 401);
    let signed_in = sign_in(&base, &recruiter).await.expect("post");
    assert_eq!(signed_in.status(), 303);
    let cookie = signed_in.headers()["set-cookie"].to_str().expect("cookie").to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let session = cookie.split(';').next().expect("pair").to_string();
    let index = client.get(format!("{base}/")).header("cookie", &session).send().await.expect("index");
    assert_eq!(index.status(), 200);
    let index = index.text().await.expect("body");
    for (id, title) in &jobs {
        assert!(index.contains(&format!("<a href=\"/jobs/{id}\">{title}</a>")), "{title} listed");
    }
    // The cookie holds a random session id, not the token; on this loopback
    // listener it is not `Secure` (no `__Host-` prefix), as browsers require.
    assert!(!cookie.contains(&recruiter), "the token never goes into the cookie");
    assert!(session.starts_with("scorecard_session=") && session.len() > "scorecard_session=".len() + 40);
    // Signing out ends the session on the server: the same cookie replayed
    // afterwards opens nothing.
    let out = client
        .post(format!("{base}/logout"))
        .header("origin", &base)
        .header("cookie", &session)
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), 303);
    assert!(out.headers()["set-cookie"].to_str().expect("cleared").contains("Max-Age=0"));
    let replayed = client.get(format!("{base}/")).header("cookie", &session).send().await.expect("replay");
    assert_eq!(replayed.status(), 303, "a signed-out session is revoked, not just forgotten by the browser");

    // Page views are audited like calls.
    await_audit(&app, "/scorecard.web/JobReport", |audited| {
        audited.iter().any(|e| e.actor == "rita" && e.code == "OK" && e.resource == format!("jobs/{job_id}"))
            && audited.iter().any(|e| e.actor == "bruno" && e.code == "PERMISSION_DENIED")
    })
    .await;

    // Metrics count the gRPC calls made above, and the pages.
    let metrics = client.get(format!("{base}/metrics")).send().await.expect("metrics");
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.expect("body");
    let line = text
        .lines()
        .find(|l| {
            l.starts_with(
                "scorecard_grpc_requests_total{method=\"/scorecard.v1.CalibrationService/GetRanking\",code=\"Ok\"}",
            )
        })
        .unwrap_or_else(|| panic!("GetRanking counted: {text}"));
    let count: u64 = line.rsplit(' ').next().and_then(|n| n.parse().ok()).expect("a count");
    assert!(count >= 1);
    assert!(text.contains("scorecard_grpc_request_duration_seconds_bucket{method=\"/scorecard.v1.CalibrationService/GetRanking\",le=\"+Inf\"}"));
    assert!(text.contains("scorecard_http_requests_total{route=\"/jobs\",status=\"200\"}"));
    assert!(text.contains("scorecard_calibration_full_fit_seconds_count"));
    assert!(text.contains("scorecard_db_pool_max_connections{pool="));
    assert!(!text.contains(DEMO_ORG), "no tenant in metric labels");
    app.stop().await;
}

on_both_databases!(db: report_pages, compliance_page_and_export);

/// The compliance page and the auditor's CSV: for the compliance role only,
/// the API's own numbers, aggregates only, every view audited.
async fn compliance_page_and_export(db: Db) {
    let (app, jobs) = seed_demo(TestApp::start(db).await).await;
    let job_id = jobs[0].0.clone();
    let base = format!("http://{}", app.http_addr);
    let client = http();
    let cora = token("cora", DEMO_ORG, &["compliance"]);
    let rita = token("rita", DEMO_ORG, &["recruiter"]);

    // Nobody else: not signed in, the sign-in page (the CSV: 401); a recruiter, 403.
    let anonymous = client.get(format!("{base}/compliance")).send().await.expect("get");
    assert_eq!(anonymous.status(), 303);
    assert_eq!(anonymous.headers()["location"], "/login");
    let anonymous = client.get(format!("{base}/compliance/adverse-impact.csv")).send().await.expect("get");
    assert_eq!(anonymous.status(), 401);
    for path in ["/compliance", "/compliance/adverse-impact.csv"] {
        let refused = client.get(format!("{base}{path}")).bearer_auth(&rita).send().await.expect("get");
        assert_eq!(refused.status(), 403, "{path}");
        assert!(!refused.text().await.expect("body").contains("female"), "{path}: no numbers for a recruiter");
    }
    // A compliance officer signed in on the index goes to the compliance page.
    let index = client.get(format!("{base}/")).bearer_auth(&cora).send().await.expect("index");
    assert_eq!(index.status(), 303);
    assert_eq!(index.headers()["location"], "/compliance");

    let page = client.get(format!("{base}/compliance")).bearer_auth(&cora).send().await.expect("page");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("body");
    let organisation = app
        .compliance()
        .get_adverse_impact_report(req(&cora, proto::GetAdverseImpactReportRequest::default()))
        .await
        .expect("report")
        .into_inner();
    assert!(html.contains(&format!(
        "{} subjects; sex unknown for {}, race/ethnicity unknown for {}.",
        organisation.subject_count, organisation.unknown_sex_count, organisation.unknown_race_ethnicity_count
    )));
    for (_, title) in &jobs {
        assert!(html.contains(&format!("<summary>{title} (")), "{title} has its tables");
    }
    assert!(html.contains("<h3>By sex</h3>") && html.contains("<h3>By race/ethnicity</h3>"));
    // The demo's planted interviewer is on the chart, compared on women.
    assert!(html.contains("oscar · female vs male") || html.contains("oscar · male vs female"), "oscar compared");
    // No candidate is named anywhere on it.
    let ranking = app
        .calibration()
        .get_ranking(req(&rita, proto::GetRankingRequest { job: format!("jobs/{job_id}"), ..Default::default() }))
        .await
        .expect("ranking")
        .into_inner();
    for entry in &ranking.entries {
        let candidate = app
            .hiring()
            .get_candidate(req(&rita, proto::GetCandidateRequest { name: entry.candidate.clone() }))
            .await
            .expect("candidate")
            .into_inner();
        assert!(
            !html.contains(&candidate.display_name) && !html.contains(&html_text(&candidate.display_name)),
            "{} is not on the page",
            candidate.display_name
        );
        assert!(!html.contains(entry.candidate.trim_start_matches("candidates/")), "no candidate id");
    }

    // The CSV: the job's report, one row per measure × grouping × category.
    let download =
        |query: String| client.get(format!("{base}/compliance/adverse-impact.csv{query}")).bearer_auth(&cora).send();
    let csv = download(format!("?job={job_id}")).await.expect("csv");
    assert_eq!(csv.status(), 200);
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(csv.headers()["content-disposition"].to_str().expect("header").contains(&job_id));
    let text = csv.text().await.expect("body");
    let report = app
        .compliance()
        .get_adverse_impact_report(req(
            &cora,
            proto::GetAdverseImpactReportRequest { job: format!("jobs/{job_id}"), ..Default::default() },
        ))
        .await
        .expect("job report")
        .into_inner();
    let lines: Vec<Vec<&str>> = text.lines().skip(1).map(|l| l.split(',').collect()).collect();
    let expected: Vec<(String, i32, f64, bool)> = report
        .tables
        .iter()
        .flat_map(|t| t.rows.iter().map(|r| (r.category.clone(), r.count, r.rate, r.below_four_fifths)))
        .collect();
    assert_eq!(lines.len(), expected.len(), "{text}");
    for (line, (category, count, rate, below)) in lines.iter().zip(&expected) {
        assert_eq!(line[0], format!("jobs/{job_id}"));
        assert_eq!(line[3], category);
        assert_eq!(line[4].parse::<i32>().expect("count"), *count);
        assert!((line[5].parse::<f64>().expect("rate") - rate).abs() < 1e-12);
        assert_eq!(line[8], below.to_string());
        assert_eq!(line[9].parse::<i32>().expect("subjects"), report.subject_count);
    }
    assert!(text.contains(",calibrated_score,sex,female,") && text.contains(",recommendation,intersectional,"));
    assert_eq!(download("?job=nope".into()).await.expect("csv").status(), 404);

    // Views and downloads are audited, refusals included.
    await_audit(&app, "/scorecard.web/AdverseImpactCsv", |audited| {
        audited.iter().any(|e| e.actor == "cora" && e.code == "OK" && e.resource == format!("jobs/{job_id}"))
            && audited.iter().any(|e| e.actor == "rita" && e.code == "PERMISSION_DENIED")
    })
    .await;
    await_audit(&app, "/scorecard.web/CompliancePage", |audited| {
        audited.iter().any(|e| e.actor == "cora" && e.code == "OK")
    })
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_require_a_token() {
    let mut settings = test_settings();
    settings.web.metrics_token = Some("scrape-secret".into());
    let app = TestApp::start_configured(Db::Sqlite, verifier(), settings).await;
    let url = format!("http://{}/metrics", app.http_addr);
    let client = http();
    assert_eq!(client.get(&url).send().await.expect("get").status(), 401);
    assert_eq!(client.get(&url).bearer_auth("wrong").send().await.expect("get").status(), 401);
    let ok = client.get(&url).bearer_auth("scrape-secret").send().await.expect("get");
    assert_eq!(ok.status(), 200);
    assert!(ok.text().await.expect("body").contains("# TYPE scorecard_grpc_requests_total counter"));
    let health = client.get(format!("http://{}/healthz", app.http_addr)).send().await.expect("healthz");
    assert_eq!(health.status(), 200);
    app.stop().await;
}

/// Frames a gRPC-Web message: flag byte, big-endian length, bytes.
fn grpc_web_frame(message: &impl Message) -> Vec<u8> {
    let body = message.encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    frame
}

/// Splits a gRPC-Web response body into its data messages and its trailers.
fn grpc_web_parts(mut body: &[u8]) -> (Vec<Vec<u8>>, String) {
    let (mut messages, mut trailers) = (Vec::new(), String::new());
    while body.len() >= 5 {
        let flag = body[0];
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        let payload = &body[5..5 + len];
        if flag & 0x80 != 0 {
            trailers.push_str(&String::from_utf8_lossy(payload));
        } else {
            messages.push(payload.to_vec());
        }
        body = &body[5 + len..];
    }
    (messages, trailers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_clients_reach_the_api_with_the_same_checks() {
    let (app, jobs) = seed_demo(TestApp::start(Db::Sqlite).await).await;
    let recruiter = token("rita", DEMO_ORG, &["recruiter"]);
    let url = format!("http://{}/scorecard.v1.CalibrationService/GetRanking", app.addr);
    let request = proto::GetRankingRequest { job: format!("jobs/{}", jobs[0].0), ..Default::default() };
    let client = http();
    let post = |token: Option<String>| {
        let mut r = client
            .post(&url)
            .header("content-type", "application/grpc-web+proto")
            .header("x-grpc-web", "1")
            .body(grpc_web_frame(&request));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let answer = post(Some(recruiter)).await.expect("grpc-web call");
    assert_eq!(answer.status(), 200);
    assert!(answer.headers()["content-type"].to_str().expect("type").starts_with("application/grpc-web"));
    let (messages, trailers) = grpc_web_parts(&answer.bytes().await.expect("body"));
    assert!(trailers.contains("grpc-status:0"), "{trailers}");
    let ranking = proto::Ranking::decode(messages[0].as_slice()).expect("a Ranking");
    assert_eq!(ranking.entries.len(), 20);

    // Without a token: UNAUTHENTICATED (16), as over gRPC.
    let refused = post(None).await.expect("grpc-web call");
    let status = refused.headers().get("grpc-status").map(|v| v.to_str().unwrap_or_default().to_string());
    let (_, trailers) = grpc_web_parts(&refused.bytes().await.expect("body"));
    assert!(status.as_deref() == Some("16") || trailers.contains("grpc-status:16"), "{status:?} {trailers}");
    app.stop().await;
}

/// A name as HTML text carries it (the demo has an O'Brien).
fn html_text(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}
