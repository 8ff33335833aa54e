//! What the audit log says a call was about: the handler names the resource
//! through an [`AuditSlot`] the auth layer puts in the request; requests name
//! their target ([`AuditTarget`]) and creates the resource they made
//! ([`AuditResource`]).

use std::sync::{Arc, Mutex};

use crate::proto;

/// Where a handler puts the resource a call is about.
#[derive(Clone, Default)]
pub struct AuditSlot(Arc<Mutex<String>>);

impl AuditSlot {
    pub fn set(&self, resource: String) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = resource;
    }
    pub fn take(&self) -> String {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The resource a request names (before it is handled).
pub trait AuditTarget {
    fn audit_target(&self) -> String;
}

/// The resource a response is (after a create).
pub trait AuditResource {
    fn audit_resource(&self) -> Option<&str> {
        None
    }
}

macro_rules! targets {
    ($($t:ty => |$r:ident| $e:expr),* $(,)?) => {
        $(impl AuditTarget for $t {
            fn audit_target(&self) -> String {
                let $r = self;
                $e
            }
        })*
    };
}

fn collection() -> String {
    String::new()
}

targets!(
    proto::CreateRubricRequest => |_r| collection(),
    proto::GetRubricRequest => |r| r.name.clone(),
    proto::ListRubricsRequest => |_r| collection(),
    proto::ReviseRubricRequest => |r| r.rubric.as_ref().map(|x| x.name.clone()).unwrap_or_default(),
    proto::ListRubricTemplatesRequest => |_r| collection(),
    proto::CreateRubricFromTemplateRequest => |_r| collection(),
    proto::CreateJobRequest => |_r| collection(),
    proto::GetJobRequest => |r| r.name.clone(),
    proto::UpdateJobRequest => |r| r.job.as_ref().map(|j| j.name.clone()).unwrap_or_default(),
    proto::CompareCandidatesRequest => |r| r.job.clone(),
    proto::PlanInterviewsRequest => |r| r.job.clone(),
    proto::ListJobsRequest => |_r| collection(),
    proto::CreateCandidateRequest => |_r| collection(),
    proto::GetCandidateRequest => |r| r.name.clone(),
    proto::ListCandidatesRequest => |_r| collection(),
    proto::EraseCandidateRequest => |r| r.name.clone(),
    proto::CreateInterviewRequest => |_r| collection(),
    proto::GetInterviewRequest => |r| r.name.clone(),
    proto::ListInterviewsRequest => |r| first_of(&[&r.candidate, &r.job]),
    proto::ListOverdueInterviewsRequest => |r| r.job.clone(),
    proto::SubmitScorecardRequest => |r| r.interview.clone(),
    proto::GetScorecardRequest => |r| r.name.clone(),
    proto::ListScorecardsRequest => |r| first_of(&[&r.candidate, &r.job]),
    proto::AmendScorecardRequest => |r| r.name.clone(),
    tonic::Streaming<proto::ImportScorecardsRequest> => |_r| collection(),
    proto::GetRankingRequest => |r| r.job.clone(),
    proto::GetCandidateAssessmentRequest => |r| r.candidate.clone(),
    proto::ListRaterReportsRequest => |_r| collection(),
    proto::GetRaterReportRequest => |r| format!("raters/{}", r.rater),
    proto::GetPanelReliabilityRequest => |r| first_of(&[&r.job, &r.rubric]),
    proto::ListEventsRequest => |_r| collection(),
    proto::CreateWebhookRequest => |_r| collection(),
    proto::GetWebhookRequest => |r| r.name.clone(),
    proto::ListWebhooksRequest => |_r| collection(),
    proto::DeleteWebhookRequest => |r| r.name.clone(),
    proto::ListDeliveriesRequest => |r| r.webhook.clone(),
    proto::RedeliverEventRequest => |r| r.webhook.clone(),
    proto::ListAuditEventsRequest => |r| r.resource.clone(),
    proto::SetSelfIdentificationRequest => |r| r.candidate.clone(),
    proto::GetAdverseImpactReportRequest => |r| first_of(&[&r.job, &r.rubric]),
    proto::RecordDecisionRequest => |r| r.candidate.clone(),
    proto::ListDecisionsRequest => |r| first_of(&[&r.candidate, &r.job]),
    proto::ListRaterDifferentialsRequest => |_r| collection(),
);

/// The first non-empty of several filters.
fn first_of(names: &[&String]) -> String {
    names.iter().find(|n| !n.is_empty()).map(|n| n.to_string()).unwrap_or_default()
}

macro_rules! resources {
    (named: $($named:ty),*; other: $($other:ty),* $(,)?) => {
        $(impl AuditResource for $named {
            fn audit_resource(&self) -> Option<&str> {
                Some(&self.name)
            }
        })*
        $(impl AuditResource for $other {})*
    };
}

resources!(
    named: proto::Rubric, proto::Job, proto::Candidate, proto::Interview, proto::Scorecard, proto::Webhook,
        proto::Decision;
    other: proto::ListRubricsResponse, proto::ListRubricTemplatesResponse, proto::ListJobsResponse,
        proto::ListCandidatesResponse, proto::ListInterviewsResponse, proto::ListOverdueInterviewsResponse,
        proto::ListScorecardsResponse, proto::ImportScorecardsResponse, proto::Ranking,
        proto::CandidateAssessment, proto::ListRaterReportsResponse, proto::RaterReport, proto::PanelReliability,
        proto::ListEventsResponse, proto::ListWebhooksResponse, (), proto::ListDeliveriesResponse,
        proto::Delivery, proto::ListAuditEventsResponse, proto::SelfIdentification, proto::AdverseImpactReport,
        proto::ListDecisionsResponse, proto::ListRaterDifferentialsResponse, proto::CandidateComparison,
        proto::InterviewPlan,
);
