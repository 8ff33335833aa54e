//! `CalibrationService`: declared in the contract, built by the calibration
//! issue. Until then every method checks the caller's role and answers
//! `UNIMPLEMENTED`, so integrators can code against the final authorisation.

use std::pin::Pin;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::auth::{self, Caller};
use crate::domain::Role;
use crate::error::Error;
use crate::proto::{self, calibration_service_server::CalibrationService};

const READERS: [Role; 3] = [Role::Admin, Role::Integration, Role::Recruiter];

#[derive(Default)]
pub struct CalibrationApi;

fn not_yet(caller: &Caller, roles: &[Role]) -> Error {
    match caller.require_any(roles) {
        Err(denied) => denied,
        Ok(()) => Error::Unimplemented("calibration is not available in this version yet".into()),
    }
}

#[tonic::async_trait]
impl CalibrationService for CalibrationApi {
    type WatchRankingStream = Pin<Box<dyn Stream<Item = Result<proto::Ranking, Status>> + Send>>;

    async fn get_ranking(&self, r: Request<proto::GetRankingRequest>) -> Result<Response<proto::Ranking>, Status> {
        Err(not_yet(&auth::caller(&r)?, &READERS).into())
    }

    async fn get_candidate_assessment(
        &self,
        r: Request<proto::GetCandidateAssessmentRequest>,
    ) -> Result<Response<proto::CandidateAssessment>, Status> {
        Err(not_yet(&auth::caller(&r)?, &READERS).into())
    }

    async fn list_rater_reports(
        &self,
        r: Request<proto::ListRaterReportsRequest>,
    ) -> Result<Response<proto::ListRaterReportsResponse>, Status> {
        Err(not_yet(&auth::caller(&r)?, &READERS).into())
    }

    async fn get_rater_report(
        &self,
        r: Request<proto::GetRaterReportRequest>,
    ) -> Result<Response<proto::RaterReport>, Status> {
        // Interviewers may read their own report once it exists.
        Err(not_yet(&auth::caller(&r)?, &Role::ALL).into())
    }

    async fn get_panel_reliability(
        &self,
        r: Request<proto::GetPanelReliabilityRequest>,
    ) -> Result<Response<proto::PanelReliability>, Status> {
        Err(not_yet(&auth::caller(&r)?, &READERS).into())
    }

    async fn watch_ranking(
        &self,
        r: Request<proto::WatchRankingRequest>,
    ) -> Result<Response<Self::WatchRankingStream>, Status> {
        Err(not_yet(&auth::caller(&r)?, &READERS).into())
    }
}
