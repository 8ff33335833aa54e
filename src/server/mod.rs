//! The server: builds the tonic router (our services, health, reflection)
//! behind the auth, audit and guard layers, beside the HTTP listener, with the
//! background work (webhook delivery, overdue scans, key reloads). [`serve`] is
//! the seam the binary and the tests use: they bind a listener (tests on a
//! random port) and hand it in with a shutdown future.

pub mod audit;
pub mod auth_layer;
pub mod connect;
pub mod guard;
pub mod web;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::api::{
    AppState, AuditApi, CalibrationApi, ComplianceApi, EventApi, HiringApi, RubricApi, ScorecardApi, WebhookApi,
};
use crate::auth::Verifier;
use crate::proto::audit_service_server::AuditServiceServer;
use crate::proto::calibration_service_server::CalibrationServiceServer;
use crate::proto::compliance_service_server::ComplianceServiceServer;
use crate::proto::event_service_server::EventServiceServer;
use crate::proto::hiring_service_server::HiringServiceServer;
use crate::proto::rubric_service_server::RubricServiceServer;
use crate::proto::scorecard_service_server::ScorecardServiceServer;
use crate::proto::webhook_service_server::WebhookServiceServer;
use crate::store::Store;
use auth_layer::AuthLayer;

/// Largest request message accepted: a full rubric or scorecard fits many
/// times over; anything larger is refused before it is decoded.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] crate::error::Error),
    #[error("server: {0}")]
    Server(String),
}

/// What the server does besides answering requests, and how.
#[derive(Debug, Clone)]
pub struct Settings {
    pub thresholds: crate::calibration::raters::Thresholds,
    pub webhooks: crate::webhooks::WebhookSettings,
    /// How often interviews that became overdue are looked for.
    pub overdue_scan: Duration,
    pub guard: guard::GuardSettings,
    /// Open server-stream limits.
    pub streams: crate::api::streams::StreamSettings,
    /// How often the public key file is checked for rotated keys.
    pub key_reload: Duration,
    /// The HTTP listener's report and metrics pages.
    pub web: web::WebSettings,
    /// Seals self-identification at rest (`SCORECARD_SELF_ID_KEY`); without
    /// it, SetSelfIdentification answers FAILED_PRECONDITION.
    pub self_id_keys: Option<Arc<crate::auth::sealing::SealingKeys>>,
    /// How long in-flight requests may run once shutdown begins (`None`: as
    /// long as they take); the calibration snapshots are written after.
    pub shutdown_grace: Option<Duration>,
    /// Write each organisation's calibration state when the server stops and
    /// read it back at start (`SCORECARD_CALIBRATION_SNAPSHOTS`).
    pub calibration_snapshots: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            thresholds: Default::default(),
            webhooks: Default::default(),
            overdue_scan: Duration::from_secs(60),
            guard: Default::default(),
            streams: Default::default(),
            key_reload: Duration::from_secs(10),
            web: Default::default(),
            self_id_keys: None,
            shutdown_grace: None,
            calibration_snapshots: true,
        }
    }
}

/// How long a stopping server spends writing calibration snapshots at most
/// (a 10-million-rating organisation takes seconds; a database that hangs
/// must not keep the process from exiting).
const SNAPSHOT_WRITE_LIMIT: Duration = Duration::from_secs(120);

/// Serves gRPC (and gRPC-Web) on `listener`, and the report pages and metrics
/// on `http` when given, until `shutdown` completes; in-flight requests finish
/// first (for `settings.shutdown_grace` at most). Background work (webhook
/// delivery, overdue scans) runs until then too. Then each organisation's
/// calibration state is written as a snapshot for the next start.
pub async fn serve(
    listener: TcpListener,
    http: Option<TcpListener>,
    store: Store,
    verifier: Arc<Verifier>,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AppError> {
    let (grace, snapshots) = (settings.shutdown_grace, settings.calibration_snapshots);
    let (stop_background, background_stopping) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        shutdown.await;
        let _ = stop_background.send(true);
    };
    let dispatcher = crate::webhooks::Dispatcher::new(store.clone(), settings.webhooks.clone())?;
    tokio::spawn(dispatcher.run(background_stopping.clone()));
    tokio::spawn(overdue_scans(store.clone(), settings.overdue_scan, background_stopping.clone()));
    tokio::spawn(key_reloads(verifier.clone(), settings.key_reload, background_stopping.clone()));
    if verifier.jwks_url().is_some() {
        tokio::spawn(jwks_refreshes(verifier.clone(), background_stopping.clone()));
    }
    let (auditor, audit_writer) = audit::Auditor::start(store.clone());
    let calibrator = crate::calibrator::Calibrator::new(store.clone(), settings.thresholds, snapshots);
    {
        let calibrator = calibrator.clone();
        tokio::spawn(async move {
            if let Err(e) = calibrator.warm_up().await {
                tracing::warn!(error = %e, "calibration warm-up failed; organisations load on first use");
            }
        });
    }
    let state = Arc::new(AppState {
        feeds: crate::api::streams::EventFeeds::new(store.clone()),
        streams: crate::api::streams::StreamLimits::new(settings.streams),
        store,
        calibrator,
        webhooks: settings.webhooks,
        self_id_keys: settings.self_id_keys.clone(),
        compliance: Default::default(),
    });
    tokio::spawn(compliance_sweeps(state.clone(), background_stopping.clone()));
    let web = match http {
        Some(http) => {
            let mut stopping = background_stopping.clone();
            let web = web::serve(http, state.clone(), verifier.clone(), auditor.clone(), settings.web, async move {
                let _ = stopping.wait_for(|s| *s).await;
            });
            Some(tokio::spawn(async move {
                if let Err(e) = web.await {
                    tracing::error!(error = %e, "HTTP listener failed");
                }
            }))
        }
        None => None,
    };

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<RubricServiceServer<RubricApi>>().await;
    health.set_serving::<HiringServiceServer<HiringApi>>().await;
    health.set_serving::<ScorecardServiceServer<ScorecardApi>>().await;
    health.set_serving::<CalibrationServiceServer<CalibrationApi>>().await;
    health.set_serving::<EventServiceServer<EventApi>>().await;
    health.set_serving::<WebhookServiceServer<WebhookApi>>().await;
    health.set_serving::<AuditServiceServer<AuditApi>>().await;
    health.set_serving::<ComplianceServiceServer<ComplianceApi>>().await;

    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1().map_err(|e| AppError::Server(e.to_string()))?;
    let reflection_v1alpha = reflection().build_v1alpha().map_err(|e| AppError::Server(e.to_string()))?;

    let served = Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        // gRPC-Web (HTTP/1.1) for browser clients, translated before auth so
        // it meets the same checks as gRPC.
        .accept_http1(true)
        // Connect (JSON or binary over HTTP/1.1 and HTTP/2) for every unary
        // RPC, turned into gRPC before everything else, like gRPC-Web.
        .layer(connect::ConnectLayer)
        .layer(tonic_web::GrpcWebLayer::new())
        .layer(AuthLayer::new(verifier).with_audit(auditor))
        .layer(guard::GuardLayer::new(settings.guard))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            RubricServiceServer::new(RubricApi::new(state.clone())).max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(
            HiringServiceServer::new(HiringApi::new(state.clone())).max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(
            ScorecardServiceServer::new(ScorecardApi::new(state.clone())).max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(
            CalibrationServiceServer::new(CalibrationApi::new(state.clone()))
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(EventServiceServer::new(EventApi::new(state.clone())).max_decoding_message_size(MAX_MESSAGE_BYTES))
        .add_service(
            WebhookServiceServer::new(WebhookApi::new(state.clone())).max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(AuditServiceServer::new(AuditApi::new(state.clone())).max_decoding_message_size(MAX_MESSAGE_BYTES))
        .add_service(
            ComplianceServiceServer::new(ComplianceApi::new(state.clone()))
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
        // TCP_NODELAY: without it a response written in pieces waits for the
        // peer's delayed ACK (Nagle), about 40 ms per call under load.
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), shutdown);
    let mut stopping = background_stopping.clone();
    tokio::select! {
        served = served => served.map_err(|e| AppError::Server(e.to_string()))?,
        () = async move {
            let _ = stopping.wait_for(|s| *s).await;
            match grace {
                Some(grace) => tokio::time::sleep(grace).await,
                None => std::future::pending().await,
            }
        } => tracing::warn!(?grace, "connections still open after the grace period; closing them"),
    }
    // The servers (and with them every audit sender) are gone: let the writer
    // store what is queued.
    if let Some(web) = web {
        let _ = tokio::time::timeout(Duration::from_secs(5), web).await;
    }
    if tokio::time::timeout(Duration::from_secs(5), audit_writer).await.is_err() {
        tracing::warn!("audit rows still queued at shutdown were not all written");
    }
    // No request runs any more, and no background work of the calibrator
    // starts: each organisation's state as it now stands, for the next start
    // to read instead of every scorecard.
    state.calibrator.stop();
    if snapshots && tokio::time::timeout(SNAPSHOT_WRITE_LIMIT, state.calibrator.write_snapshots()).await.is_err() {
        tracing::warn!(?SNAPSHOT_WRITE_LIMIT, "calibration snapshots not all written; the next start loads the rest");
    }
    Ok(())
}

/// Raises `interview.overdue` for interviews whose time passed without a
/// scorecard, every `every`, until `stopping` turns true.
async fn overdue_scans(store: Store, every: Duration, mut stopping: tokio::sync::watch::Receiver<bool>) {
    loop {
        match store.raise_overdue(crate::domain::now_micros()).await {
            Ok(0) => {}
            Ok(raised) => tracing::info!(raised, "interview.overdue events raised"),
            Err(e) => tracing::warn!(error = %e, "overdue scan failed"),
        }
        tokio::select! {
            _ = stopping.changed() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// Takes rotated keys from the public key file, every `every`, until
/// `stopping` turns true.
async fn key_reloads(verifier: Arc<Verifier>, every: Duration, mut stopping: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stopping.changed() => return,
            () = tokio::time::sleep(every) => {}
        }
        match verifier.reload_if_changed() {
            Ok(true) => {
                crate::metrics::global().record_key_reload(true);
                tracing::info!("public keys reloaded")
            }
            Ok(false) => {}
            Err(e) => {
                crate::metrics::global().record_key_reload(false);
                tracing::warn!(error = %e, "public key file changed but does not load; keeping the current keys")
            }
        }
    }
}

/// Fetches the identity provider's JWKS again whenever its cache lifetime
/// runs out (or, while it cannot be reached, at the retry times), until
/// `stopping` turns true. A failed fetch keeps the keys already held.
async fn jwks_refreshes(verifier: Arc<Verifier>, mut stopping: tokio::sync::watch::Receiver<bool>) {
    loop {
        // Looked at each second: a fetch for an unknown kid moves the due time.
        let wait = verifier.jwks_due_in().unwrap_or(Duration::from_secs(3_600));
        tokio::select! {
            _ = stopping.changed() => return,
            () = tokio::time::sleep(wait.min(Duration::from_secs(1))) => {}
        }
        if verifier.jwks_due_in().is_none_or(|d| !d.is_zero()) {
            continue;
        }
        match verifier.refresh_jwks().await {
            Ok(_) => {
                crate::metrics::global().record_key_reload(true);
                tracing::debug!("JWKS fetched")
            }
            Err(e) => {
                crate::metrics::global().record_key_reload(false);
                tracing::warn!(error = %e, "JWKS cannot be fetched; keeping the keys fetched before")
            }
        }
    }
}

/// Drops the compliance reports' opened self-identification once unread for
/// its keeping time, whether or not another report comes.
async fn compliance_sweeps(state: Arc<AppState>, mut stopping: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stopping.changed() => return,
            () = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
        state.compliance.sweep();
    }
}

/// Connects to the database and applies migrations.
pub async fn open_store(database_url: &str, max_connections: u32) -> Result<Store, AppError> {
    let store = Store::connect(database_url, max_connections).await?;
    store.migrate().await?;
    Ok(store)
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
