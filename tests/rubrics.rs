//! Rubrics end to end, on SQLite and PostgreSQL: create, read, revise (a
//! revision in use never changes), validation of every field, templates.

mod common;

use common::{Org, TestApp, expect_code, expect_violations, req, sample_rubric, token};
use scorecard::proto::{self};
use tonic::Code;

on_both_databases!(rubric_lifecycle_and_immutable_revisions, rubric_validation_names_every_bad_field, rubric_templates,);

async fn rubric_lifecycle_and_immutable_revisions(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    let mut rubrics = app.rubrics();
    let created = &org.rubric;
    assert!(created.name.starts_with("rubrics/"));
    assert_eq!(created.revision, 1);
    assert!(!created.etag.is_empty());
    assert_eq!(created.competencies.len(), 4);
    assert_eq!(created.competencies[0].anchors.len(), 4);

    let got = rubrics
        .get_rubric(req(&org.admin, proto::GetRubricRequest { name: created.name.clone(), revision: 0 }))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(&got, created);

    // Revise: a new revision; the job stays pinned to revision 1.
    let mut next = got.clone();
    next.title = "Backend (2027)".into();
    next.scale = Some(proto::Scale { min: 1, max: 5 });
    next.competencies.truncate(3);
    let revised = rubrics
        .revise_rubric(req(&org.admin, proto::ReviseRubricRequest { rubric: Some(next.clone()) }))
        .await
        .expect("revise")
        .into_inner();
    assert_eq!(revised.revision, 2);
    assert_eq!(revised.title, "Backend (2027)");
    assert_ne!(revised.etag, created.etag);
    assert_eq!(revised.create_time, created.create_time);

    // The old etag is stale now: ABORTED, and nothing changes.
    let stale = rubrics.revise_rubric(req(&org.admin, proto::ReviseRubricRequest { rubric: Some(next) })).await;
    expect_code(stale, Code::Aborted);

    let first = rubrics
        .get_rubric(req(&org.admin, proto::GetRubricRequest { name: created.name.clone(), revision: 1 }))
        .await
        .expect("revision 1")
        .into_inner();
    assert_eq!(first.title, "Backend");
    assert_eq!(first.competencies.len(), 4);
    let missing =
        rubrics.get_rubric(req(&org.admin, proto::GetRubricRequest { name: created.name.clone(), revision: 3 })).await;
    expect_code(missing, Code::NotFound);

    let job = app
        .hiring()
        .get_job(req(&org.admin, proto::GetJobRequest { name: org.job.name.clone() }))
        .await
        .expect("job")
        .into_inner();
    assert_eq!(job.rubric_revision, 1);

    let listed =
        rubrics.list_rubrics(req(&org.admin, proto::ListRubricsRequest::default())).await.expect("list").into_inner();
    assert_eq!(listed.rubrics.len(), 1);
    assert_eq!(listed.rubrics[0].revision, 2);
    assert!(listed.next_page_token.is_empty());

    // A job created now pins revision 2; one may also pin revision 1 explicitly.
    let pinned = app
        .hiring()
        .create_job(req(
            &org.admin,
            proto::CreateJobRequest {
                job: Some(proto::Job {
                    title: "Old rubric".into(),
                    rubric: created.name.clone(),
                    rubric_revision: 1,
                    ..Default::default()
                }),
            },
        ))
        .await
        .expect("pinned job")
        .into_inner();
    assert_eq!(pinned.rubric_revision, 1);
}

async fn rubric_validation_names_every_bad_field(app: TestApp) {
    let admin = token("root", "acme", &["admin"]);
    let mut rubrics = app.rubrics();
    expect_violations(
        rubrics.create_rubric(req(&admin, proto::CreateRubricRequest { rubric: None })).await,
        &["rubric"],
    );

    let mut bad = sample_rubric("Backend");
    bad.title = String::new();
    bad.scale = Some(proto::Scale { min: 1, max: 42 });
    bad.dimensions[0].weight = -0.5;
    bad.competencies[1].key = "Not A Key".into();
    bad.competencies[2].dimension_key = "nope".into();
    bad.competencies[3].anchors[0].label = String::new();
    let result = rubrics.create_rubric(req(&admin, proto::CreateRubricRequest { rubric: Some(bad) })).await;
    expect_violations(
        result,
        &[
            "rubric.title",
            "rubric.scale",
            "rubric.dimensions[0].weight",
            "rubric.competencies[1].key",
            "rubric.competencies[2].dimension_key",
            "rubric.competencies[3].anchors[0].label",
        ],
    );

    let mut zero = sample_rubric("Zero");
    for d in &mut zero.dimensions {
        d.weight = 0.0;
    }
    expect_violations(
        rubrics.create_rubric(req(&admin, proto::CreateRubricRequest { rubric: Some(zero) })).await,
        &["rubric.dimensions"],
    );

    let mut anchors = sample_rubric("Anchors");
    anchors.competencies[0].anchors[1].score = 1;
    anchors.competencies[0].anchors[2].score = 9;
    expect_violations(
        rubrics.create_rubric(req(&admin, proto::CreateRubricRequest { rubric: Some(anchors) })).await,
        &["rubric.competencies[0].anchors[1].score", "rubric.competencies[0].anchors[2].score"],
    );

    // Nothing was created by any of the failures.
    let listed = rubrics.list_rubrics(req(&admin, proto::ListRubricsRequest::default())).await.expect("list");
    assert!(listed.into_inner().rubrics.is_empty());

    // Revise needs a name and an etag.
    let mut no_etag = sample_rubric("x");
    no_etag.name = "rubrics/abc".into();
    expect_violations(
        rubrics.revise_rubric(req(&admin, proto::ReviseRubricRequest { rubric: Some(no_etag) })).await,
        &["rubric.etag"],
    );
    let mut unknown = sample_rubric("x");
    unknown.name = "rubrics/abc".into();
    unknown.etag = "r1-0".into();
    expect_code(
        rubrics.revise_rubric(req(&admin, proto::ReviseRubricRequest { rubric: Some(unknown) })).await,
        Code::NotFound,
    );
}

async fn rubric_templates(app: TestApp) {
    let admin = token("root", "acme", &["admin"]);
    let listed = app
        .rubrics()
        .list_rubric_templates(req(&token("ivan", "acme", &["interviewer"]), proto::ListRubricTemplatesRequest {}))
        .await
        .expect("templates")
        .into_inner();
    let ids: Vec<_> = listed.templates.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["backend-engineer", "engineering-manager"]);
    let backend = listed.templates[0].rubric.clone().expect("content");
    assert_eq!(backend.competencies.len(), 10);
    assert!(backend.competencies.iter().all(|c| c.anchors.len() == 4));
    let created = app
        .rubrics()
        .create_rubric_from_template(req(
            &admin,
            proto::CreateRubricFromTemplateRequest { template: "backend-engineer".into() },
        ))
        .await
        .expect("instantiate")
        .into_inner();
    assert!(created.name.starts_with("rubrics/"));
    assert_eq!(created.revision, 1);
    assert_eq!(created.competencies, backend.competencies);
    expect_code(
        app.rubrics()
            .create_rubric_from_template(req(
                &admin,
                proto::CreateRubricFromTemplateRequest { template: "chef".into() },
            ))
            .await,
        Code::NotFound,
    );
    expect_violations(
        app.rubrics()
            .create_rubric_from_template(req(
                &admin,
                proto::CreateRubricFromTemplateRequest { template: String::new() },
            ))
            .await,
        &["template"],
    );
}
