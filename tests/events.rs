//! The event log end to end: events written with their changes, paged and
//! watched without gaps (also across a restart), derived events
//! (`ranking.changed`, `interview.overdue`), incremental sync filters.

mod common;

use std::time::Duration;

use common::{Org, TestApp, amend, amendment, expect_violations, rating, req, token};
use scorecard::proto;

on_both_databases!(
    events_are_written_with_their_changes_and_only_then,
    watch_resumes_across_a_restart_without_gap_or_duplicate,
    derived_events_follow_rankings_and_overdue_interviews,
    lists_filter_by_update_time,
);

async fn all_events(app: &TestApp, token: &str, types: &[&str]) -> Vec<proto::Event> {
    let mut out = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = app
            .events()
            .list_events(req(
                token,
                proto::ListEventsRequest {
                    page_size: 2,
                    page_token: page_token.clone(),
                    event_types: types.iter().map(|t| t.to_string()).collect(),
                    ..Default::default()
                },
            ))
            .await
            .expect("list events")
            .into_inner();
        out.extend(page.events);
        if page.next_page_token.is_empty() {
            return out;
        }
        page_token = page.next_page_token;
    }
}

async fn events_are_written_with_their_changes_and_only_then(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    let candidate = org.candidate(&app, "c-1").await;
    let interview = org.interview(&app, &candidate, "ivan").await;

    // A refused submission records nothing.
    let me = token("ivan", "acme", &["interviewer"]);
    let mut bad = Org::submission(&interview, "");
    bad.ratings[0].score = 9;
    expect_violations(app.scorecards().submit_scorecard(req(&me, bad)).await, &["ratings[0].score"]);

    let scorecard = org.submit(&app, &interview).await;
    amend(&app, &me, amendment(&scorecard.name, vec![rating("api_design", 2)], "re-read my notes")).await;
    app.hiring()
        .erase_candidate(req(&org.admin, proto::EraseCandidateRequest { name: candidate.name.clone() }))
        .await
        .expect("erase");

    let recorded = ["interview.created", "scorecard.submitted", "scorecard.amended", "candidate.erased"];
    let events = all_events(&app, &org.admin, &recorded).await;
    let types: Vec<&str> = events.iter().map(|e| e.r#type.as_str()).collect();
    assert_eq!(types, recorded);
    assert_eq!(events[0].resource, interview.name);
    assert_eq!(events[1].resource, scorecard.name);
    assert_eq!(events[2].resource, scorecard.name);
    assert_eq!(events[3].resource, candidate.name);
    let revision = events[2].payload.as_ref().and_then(|p| p.fields.get("revision")).and_then(|v| v.kind.clone());
    assert_eq!(revision, Some(prost_types::value::Kind::NumberValue(2.0)));
    for e in &events {
        assert_eq!(e.name, format!("events/{}", e.sequence));
        // No evidence or personal data in events.
        let text = format!("{:?}", e.payload);
        assert!(!text.contains("walked through") && !text.contains("example.com"), "{text}");
    }

    // Every event of the organisation, in order, numbered without a gap.
    let everything = all_events(&app, &org.admin, &[]).await;
    let sequences: Vec<i64> = everything.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=everything.len() as i64).collect::<Vec<_>>());
    let page = app
        .events()
        .list_events(req(&org.admin, proto::ListEventsRequest { after_sequence: 2, ..Default::default() }))
        .await
        .expect("list after 2")
        .into_inner();
    assert_eq!(page.events.first().map(|e| e.sequence), Some(3));
    assert!(page.latest_sequence >= everything.len() as i64);

    // Another tenant sees none of it.
    let other = token("root", "globex", &["admin"]);
    assert!(all_events(&app, &other, &[]).await.is_empty());

    // Bad filters are named.
    expect_violations(
        app.events()
            .list_events(req(
                &org.admin,
                proto::ListEventsRequest {
                    after_sequence: -1,
                    event_types: vec!["scorecard.deleted".into()],
                    ..Default::default()
                },
            ))
            .await,
        &["after_sequence", "event_types[0]"],
    );
}

/// Creates `n` interviews, each one event.
async fn make_events(app: &TestApp, org: &Org, candidate: &proto::Candidate, n: usize) {
    for i in 0..n {
        org.interview(app, candidate, &format!("rater-{i}")).await;
    }
}

async fn watch_resumes_across_a_restart_without_gap_or_duplicate(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    let candidate = org.candidate(&app, "c-1").await;
    make_events(&app, &org, &candidate, 5).await;
    let watcher = token("sync", "acme", &["integration"]);
    let only_interviews = vec!["interview.created".to_string()];

    let mut stream = app
        .events()
        .watch_events(req(
            &watcher,
            proto::WatchEventsRequest { after_sequence: 0, event_types: only_interviews.clone() },
        ))
        .await
        .expect("watch")
        .into_inner();
    let mut seen: Vec<i64> = Vec::new();
    // Five recorded before the watch, then five more while it runs.
    make_events(&app, &org, &candidate, 5).await;
    while seen.len() < 10 {
        let e = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("an event within 10 s")
            .expect("stream")
            .expect("open stream");
        seen.push(e.sequence);
    }
    drop(stream);

    // Changes while no one watches, then a restart.
    make_events(&app, &org, &candidate, 4).await;
    let app = app.restart().await;
    make_events(&app, &org, &candidate, 3).await;

    let resume_after = *seen.last().expect("events seen");
    let mut stream = app
        .events()
        .watch_events(req(
            &watcher,
            proto::WatchEventsRequest { after_sequence: resume_after, event_types: only_interviews },
        ))
        .await
        .expect("watch again")
        .into_inner();
    while seen.len() < 17 {
        let e = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("an event within 10 s")
            .expect("stream")
            .expect("open stream");
        seen.push(e.sequence);
    }
    // Nothing more is pending.
    assert!(tokio::time::timeout(Duration::from_millis(300), stream.message()).await.is_err());

    let expected: Vec<i64> =
        all_events(&app, &org.admin, &["interview.created"]).await.iter().map(|e| e.sequence).collect();
    let duplicates = seen.len() - seen.iter().collect::<std::collections::BTreeSet<_>>().len();
    let missing = expected.iter().filter(|s| !seen.contains(s)).count();
    println!(
        "watch across restart: {} events expected, {} received, {} missing, {} duplicated",
        expected.len(),
        seen.len(),
        missing,
        duplicates
    );
    assert_eq!(seen, expected, "every interview.created event exactly once, in order");
}

async fn wait_for_event(app: &TestApp, token: &str, kind: &str, resource: &str) -> Vec<proto::Event> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let found: Vec<proto::Event> =
            all_events(app, token, &[kind]).await.into_iter().filter(|e| e.resource == resource).collect();
        if !found.is_empty() || tokio::time::Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn derived_events_follow_rankings_and_overdue_interviews(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    let candidate = org.candidate(&app, "c-1").await;
    // Scheduled an hour ago, no scorecard: overdue, raised once.
    let late = org.interview(&app, &candidate, "lena").await;
    let overdue = wait_for_event(&app, &org.admin, "interview.overdue", &late.name).await;
    assert_eq!(overdue.len(), 1, "one interview.overdue for the late interview");
    // Two more late interviews, each created after the previous event showed:
    // the scans that raise them ran after the first was raised, and saw it.
    for (n, interviewer) in ["mia", "noor"].into_iter().enumerate() {
        let sentinel = org.interview(&app, &candidate, interviewer).await;
        let raised = wait_for_event(&app, &org.admin, "interview.overdue", &sentinel.name).await;
        assert_eq!(raised.len(), 1, "the later late interview is raised");
        let all = all_events(&app, &org.admin, &["interview.overdue"]).await;
        assert_eq!(all.len(), n + 2, "no interview raised twice: {all:?}");
    }

    // A submission changes the job's ranking.
    let on_time = org.interview(&app, &candidate, "ivan").await;
    org.submit(&app, &on_time).await;
    let changed = wait_for_event(&app, &org.admin, "ranking.changed", &org.job.name).await;
    assert!(!changed.is_empty(), "ranking.changed after a submission");
    let job = changed[0].payload.as_ref().and_then(|p| p.fields.get("job")).and_then(|v| v.kind.clone());
    assert_eq!(job, Some(prost_types::value::Kind::StringValue(org.job.name.clone())));
}

async fn lists_filter_by_update_time(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    let first = org.candidate(&app, "c-1").await;
    let early = org.interview(&app, &first, "ivan").await;
    let scorecard = org.submit(&app, &early).await;
    let mark = scorecard.update_time.expect("update time");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = org.candidate(&app, "c-2").await;
    let later = org.interview(&app, &second, "ivan").await;

    let candidates = app
        .hiring()
        .list_candidates(req(
            &org.admin,
            proto::ListCandidatesRequest { update_time_after: Some(mark), ..Default::default() },
        ))
        .await
        .expect("list candidates")
        .into_inner()
        .candidates;
    assert_eq!(candidates.iter().map(|c| &c.name).collect::<Vec<_>>(), [&second.name]);

    let interviews = app
        .hiring()
        .list_interviews(req(
            &org.admin,
            proto::ListInterviewsRequest { update_time_after: Some(mark), ..Default::default() },
        ))
        .await
        .expect("list interviews")
        .into_inner()
        .interviews;
    assert_eq!(interviews.iter().map(|i| &i.name).collect::<Vec<_>>(), [&later.name]);

    // An amendment moves a scorecard's update time past the mark.
    let scorecards = |after| {
        let app = &app;
        let admin = org.admin.clone();
        async move {
            app.scorecards()
                .list_scorecards(req(
                    &admin,
                    proto::ListScorecardsRequest { update_time_after: Some(after), ..Default::default() },
                ))
                .await
                .expect("list scorecards")
                .into_inner()
                .scorecards
        }
    };
    assert!(scorecards(mark).await.is_empty());
    let me = token("ivan", "acme", &["interviewer"]);
    amend(&app, &me, amendment(&scorecard.name, vec![rating("api_design", 2)], "second look")).await;
    let changed = scorecards(mark).await;
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].revision, 2);

    let jobs = app
        .hiring()
        .list_jobs(req(&org.admin, proto::ListJobsRequest { update_time_after: Some(mark), ..Default::default() }))
        .await
        .expect("list jobs")
        .into_inner()
        .jobs;
    assert!(jobs.is_empty(), "the job did not change after the mark");

    expect_violations(
        app.hiring()
            .list_jobs(req(
                &org.admin,
                proto::ListJobsRequest {
                    update_time_after: Some(prost_types::Timestamp { seconds: 0, nanos: -1 }),
                    ..Default::default()
                },
            ))
            .await,
        &["update_time_after"],
    );
}
