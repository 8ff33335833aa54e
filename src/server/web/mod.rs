//! The HTTP listener beside gRPC: the visual report (a page per job with the
//! calibrated ranking, the dimension scatter and the rater map), Prometheus
//! `/metrics`, and `/healthz` for probes.
//!
//! Pages are authenticated with the same tokens as the API: an
//! `Authorization: Bearer` header (scripts, tests), or a session opened by
//! posting a token to `/session` (the sign-in page, or the demo's link
//! `/login#token=…`, whose fragment never reaches a server log). The session
//! cookie holds a random id, never the token; the server keeps only the id's
//! SHA-256 with the caller the token proved, until the token's own expiry or
//! eight hours, whichever is sooner; signing out deletes it. The cookie is
//! `HttpOnly`, `SameSite=Strict`, and `Secure` with the `__Host-` prefix unless
//! the listener is on a loopback address (where browsers hold no `Secure`
//! cookie over plain HTTP). Pages are read-only and call the same handlers as
//! the gRPC services, so roles, tenancy and validation are the API's own; each
//! page view is audited like a call.

pub mod compliance;
pub mod report;

use std::sync::Arc;

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;

use super::audit::{self, Auditor};
use crate::api::{AppState, CalibrationApi, ComplianceApi, HiringApi, RubricApi};
use crate::auth::{Caller, Verifier};
use crate::domain::names::Collection;
use crate::error::Error;
use crate::proto;

/// Name of the session cookie: `__Host-` (Secure, whole site, this host only)
/// when served over TLS, plain on a loopback listener.
const SESSION_COOKIE_SECURE: &str = "__Host-scorecard_session";
const SESSION_COOKIE_LOOPBACK: &str = "scorecard_session";
/// Longest a report session lasts (shorter if the token expires sooner).
const SESSION_HOURS: i64 = 8;
/// Candidates shown on a report page; the API lists the rest.
const MAX_SHOWN: usize = 200;
/// Report pages and scrapes served at once.
const MAX_CONCURRENT_PAGES: usize = 32;
/// Tokens longer than this are not tokens (and are not verified).
const MAX_TOKEN_BYTES: usize = 16 * 1024;

const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// How the HTTP listener behaves.
#[derive(Debug, Clone, Default)]
pub struct WebSettings {
    /// Mark the session cookie `Secure` (with the `__Host-` prefix) even on a
    /// loopback listener (a TLS proxy on the same host). On any other
    /// address it is always `Secure`.
    pub secure_cookie: bool,
    /// When set, `/metrics` needs `Authorization: Bearer <this>`.
    pub metrics_token: Option<String>,
}

struct Web {
    hiring: HiringApi,
    rubrics: RubricApi,
    calibration: CalibrationApi,
    compliance: ComplianceApi,
    store: crate::store::Store,
    calibrator: Arc<crate::calibrator::Calibrator>,
    verifier: Arc<Verifier>,
    auditor: Auditor,
    settings: WebSettings,
    /// The session cookie's attributes, from the listener's address.
    cookie: SessionCookie,
}

/// How the session cookie is named and marked.
#[derive(Debug, Clone, Copy, PartialEq)]
struct SessionCookie {
    name: &'static str,
    secure: bool,
}

impl SessionCookie {
    /// `Secure` and `__Host-` unless the listener is loopback (and not forced).
    fn for_listener(addr: Option<std::net::SocketAddr>, force_secure: bool) -> Self {
        let loopback = addr.is_some_and(|a| a.ip().is_loopback());
        if force_secure || !loopback {
            SessionCookie { name: SESSION_COOKIE_SECURE, secure: true }
        } else {
            SessionCookie { name: SESSION_COOKIE_LOOPBACK, secure: false }
        }
    }

    /// A `Set-Cookie` value: the session id for `max_age`, or `None` to clear it.
    fn header(&self, id: Option<(&str, i64)>) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        let (value, max_age) = id.unwrap_or(("", 0));
        format!("{}={value}; Path=/; HttpOnly; SameSite=Strict{secure}; Max-Age={max_age}", self.name)
    }
}

/// The stored form of a session id.
fn session_hash(id: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(id.as_bytes()))
}

/// Serves the HTTP listener until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    verifier: Arc<Verifier>,
    auditor: Auditor,
    settings: WebSettings,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let cookie = SessionCookie::for_listener(listener.local_addr().ok(), settings.secure_cookie);
    let web = Arc::new(Web {
        hiring: HiringApi::new(state.clone()),
        rubrics: RubricApi::new(state.clone()),
        calibration: CalibrationApi::new(state.clone()),
        compliance: ComplianceApi::new(state.clone()),
        store: state.store.clone(),
        calibrator: state.calibrator.clone(),
        verifier,
        auditor,
        settings,
        cookie,
    });
    let app = axum::Router::new()
        .route("/", get(index))
        .route("/login", get(login))
        .route("/session", post(create_session))
        .route("/logout", post(logout))
        .route("/jobs/{id}", get(job))
        .route("/compliance", get(compliance_page))
        .route("/compliance/adverse-impact.csv", get(adverse_impact_csv))
        .route("/static/report.css", get(|| async { asset("text/css; charset=utf-8", report::CSS) }))
        .route("/static/login.js", get(|| async { asset("text/javascript; charset=utf-8", report::LOGIN_JS) }))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .fallback(|| async { (StatusCode::NOT_FOUND, html(report::error_page("", "Not found", "No such page."))) })
        .layer(axum::middleware::map_response(security_headers))
        // Pages are for people and scrapers, not floods: at most this many are
        // built at once; the rest wait their turn.
        .layer(tower::limit::ConcurrencyLimitLayer::new(MAX_CONCURRENT_PAGES))
        .with_state(web);
    // TCP_NODELAY, as on the gRPC port: no response waits for a delayed ACK.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY on a report connection");
        }
    });
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Not `no-referrer`: with it, browsers send `Origin: null` on form posts
    // and the sign-in's same-origin check could not tell friend from foe.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

fn html(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=3600")], body).into_response()
}

fn redirect(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

/// The bearer token of a request, if it has an `Authorization` header.
fn bearer_token(headers: &HeaderMap) -> Option<Option<&str>> {
    let value = headers.get(header::AUTHORIZATION)?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .and_then(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()));
    Some(token)
}

/// The value of cookie `name`, if the request carries it.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value)
}

impl Web {
    /// The caller of a request: its bearer token's, else its live session's.
    async fn caller(&self, headers: &HeaderMap) -> Option<Caller> {
        if let Some(token) = bearer_token(headers) {
            return token.filter(|t| t.len() <= MAX_TOKEN_BYTES).and_then(|t| self.verifier.verify(t));
        }
        let id = cookie(headers, self.cookie.name).filter(|id| !id.is_empty() && id.len() <= 128)?;
        let session = match self.store.session(&session_hash(id), crate::domain::now_micros()).await {
            Ok(session) => session?,
            Err(e) => {
                tracing::warn!(error = %e, "report session look-up failed");
                return None;
            }
        };
        let roles = session.roles.split(',').filter_map(crate::domain::Role::parse).collect();
        Some(Caller { user: session.actor, org: session.org_id, roles })
    }

    /// Records a page view in the audit log, as the API records a call.
    async fn audit(&self, caller: &Caller, page: &str, resource: String, headers: &HeaderMap, code: tonic::Code) {
        let request_id = audit::request_id(headers.get("x-request-id").and_then(|v| v.to_str().ok()));
        self.auditor.record(caller, page, resource, request_id, code).await;
    }
}

/// The page for an error, with the HTTP status a browser and a crawler expect.
fn error_response(viewer: &str, error: &Error) -> Response {
    error_page_for(viewer, error, "Reports are for recruiters and admins; ask one for access.")
}

/// [`error_response`] for the compliance pages.
fn compliance_error(viewer: &str, error: &Error) -> Response {
    error_page_for(viewer, error, "The compliance page is for the compliance role; ask an admin for access.")
}

fn error_page_for(viewer: &str, error: &Error, who_may: &str) -> Response {
    let (status, title, message) = match error {
        Error::NotFound(_) => (StatusCode::NOT_FOUND, "Not found", "There is no such job in your organisation.".into()),
        Error::PermissionDenied(m) => (StatusCode::FORBIDDEN, "Not allowed", format!("{m}. {who_may}")),
        Error::FailedPrecondition(m) => (StatusCode::CONFLICT, "Not available", m.clone()),
        Error::InvalidArgument(_) => {
            (StatusCode::BAD_REQUEST, "Not a job", "That address does not name a job.".to_string())
        }
        Error::Unavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Busy",
            "The service is busy or its database is unavailable; try again shortly.".into(),
        ),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "The report could not be built.".into()),
    };
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(error = %error, "report page failed");
    }
    (status, html(report::error_page(viewer, title, &message))).into_response()
}

fn counted(route: &'static str, response: Response) -> Response {
    crate::metrics::global().record_page(route, response.status().as_u16());
    response
}

async fn index(State(web): State<Arc<Web>>, headers: HeaderMap) -> Response {
    let Some(caller) = web.caller(&headers).await else { return counted("/", redirect("/login")) };
    let mut jobs = Vec::new();
    let mut page_token = String::new();
    let outcome =
        loop {
            let request = proto::ListJobsRequest { page_size: 1000, page_token, ..Default::default() };
            match web.hiring.list_jobs(caller.clone(), request).await {
                Ok(page) => {
                    jobs.extend(page.jobs.into_iter().map(|j| report::JobLink {
                        id: j.name.trim_start_matches("jobs/").to_string(),
                        title: j.title,
                    }));
                    if page.next_page_token.is_empty() {
                        break Ok(());
                    }
                    page_token = page.next_page_token;
                }
                Err(e) => break Err(e),
            }
        };
    let code = outcome.as_ref().err().map_or(tonic::Code::Ok, Error::code);
    web.audit(&caller, "/scorecard.web/Jobs", String::new(), &headers, code).await;
    let compliance = caller.roles.contains(&crate::domain::Role::Compliance);
    let response = match outcome {
        Ok(()) => html(report::index_page(&caller.user, &jobs, compliance)),
        // A compliance officer reads no job's ranking: their page is this one.
        Err(Error::PermissionDenied(_)) if compliance => redirect("/compliance"),
        Err(e) => error_response(&caller.user, &e),
    };
    counted("/", response)
}

async fn login() -> Response {
    counted("/login", html(report::login_page(None)))
}

#[derive(serde::Deserialize)]
struct SessionForm {
    token: String,
}

/// A request from a page of this site: browsers send `Origin` on every POST,
/// and `Sec-Fetch-Site` when they know it. Refuses cross-site sign-ins (login
/// CSRF) while letting non-browser clients, which send neither, through.
fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    match (headers.get(header::ORIGIN), headers.get(header::HOST)) {
        (None, _) => true,
        (Some(origin), Some(host)) => {
            let (Ok(origin), Ok(host)) = (origin.to_str(), host.to_str()) else { return false };
            origin.split_once("://").is_some_and(|(_, rest)| rest == host)
        }
        (Some(_), None) => false,
    }
}

async fn create_session(State(web): State<Arc<Web>>, headers: HeaderMap, Form(form): Form<SessionForm>) -> Response {
    if !same_origin(&headers) {
        let page = report::error_page("", "Not allowed", "Sign in from this site's own sign-in page.");
        return counted("/session", (StatusCode::FORBIDDEN, html(page)).into_response());
    }
    let token = form.token.trim();
    let verified = (token.len() <= MAX_TOKEN_BYTES).then(|| web.verifier.verify_with_expiry(token)).flatten();
    let Some((caller, expiry)) = verified else {
        let page = report::login_page(Some("That token is not valid (expired, or signed by another key)."));
        return counted("/session", (StatusCode::UNAUTHORIZED, html(page)).into_response());
    };
    web.audit(&caller, "/scorecard.web/SignIn", String::new(), &headers, tonic::Code::Ok).await;
    // A random id stands for the token; the token itself is not kept.
    let id = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
    };
    let now = crate::domain::now_micros();
    let token_expiry = i64::try_from(expiry).unwrap_or(i64::MAX / 1_000_000).saturating_mul(1_000_000);
    let expires_at = token_expiry.min(now + SESSION_HOURS * 3_600 * 1_000_000);
    let roles: Vec<&str> = caller.roles.iter().map(|r| r.as_str()).collect();
    let row = crate::store::SessionRow {
        id_hash: session_hash(&id),
        org_id: caller.org.clone(),
        actor: caller.user.clone(),
        roles: roles.join(","),
        created_at: now,
        expires_at,
    };
    if let Err(e) = web.store.create_session(&row).await {
        return counted("/session", error_response("", &e));
    }
    let max_age = ((expires_at - now) / 1_000_000).max(1);
    let mut response = redirect("/");
    match HeaderValue::from_str(&web.cookie.header(Some((&id, max_age)))) {
        Ok(v) => {
            response.headers_mut().insert(header::SET_COOKIE, v);
        }
        Err(_) => return counted("/session", error_response("", &Error::Internal("cookie".into()))),
    }
    counted("/session", response)
}

/// Signs out: the session is deleted server-side (a copy of the cookie
/// replayed later opens nothing), and the browser's cookie cleared.
async fn logout(State(web): State<Arc<Web>>, headers: HeaderMap) -> Response {
    if !same_origin(&headers) {
        return counted("/logout", StatusCode::FORBIDDEN.into_response());
    }
    if let Some(id) = cookie(&headers, web.cookie.name).filter(|id| !id.is_empty() && id.len() <= 128)
        && let Err(e) = web.store.delete_session(&session_hash(id)).await
    {
        return counted("/logout", error_response("", &e));
    }
    let mut response = redirect("/login");
    if let Ok(v) = HeaderValue::from_str(&web.cookie.header(None)) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    counted("/logout", response)
}

async fn metrics(State(web): State<Arc<Web>>, headers: HeaderMap) -> Response {
    if let Some(expected) = &web.settings.metrics_token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        // Constant-time comparison of digests: no timing hint about the token.
        let same = {
            use sha2::Digest;
            let (a, b) = (sha2::Sha256::digest(presented.as_bytes()), sha2::Sha256::digest(expected.as_bytes()));
            a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
        };
        if !same {
            return counted("/metrics", StatusCode::UNAUTHORIZED.into_response());
        }
    }
    let text = crate::metrics::global().render(&web.store.pool_stats());
    counted("/metrics", ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response())
}

async fn job(State(web): State<Arc<Web>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let Some(caller) = web.caller(&headers).await else { return counted("/jobs", redirect("/login")) };
    let name = Collection::Jobs.name(&id);
    let built = job_report(&web, &caller, &name).await;
    match built {
        Ok(r) => {
            web.audit(&caller, "/scorecard.web/JobReport", name, &headers, tonic::Code::Ok).await;
            counted("/jobs", html(report::job_page(&caller.user, &r)))
        }
        Err(e) => {
            web.audit(&caller, "/scorecard.web/JobReport", name, &headers, e.code()).await;
            counted("/jobs", error_response(&caller.user, &e))
        }
    }
}

async fn compliance_page(State(web): State<Arc<Web>>, headers: HeaderMap) -> Response {
    let Some(caller) = web.caller(&headers).await else { return counted("/compliance", redirect("/login")) };
    let built = compliance_report(&web, &caller).await;
    web.audit(
        &caller,
        "/scorecard.web/CompliancePage",
        String::new(),
        &headers,
        built.as_ref().err().map_or(tonic::Code::Ok, Error::code),
    )
    .await;
    let response = match built {
        Ok(p) => html(compliance::compliance_page(&caller.user, &p)),
        Err(e) => compliance_error(&caller.user, &e),
    };
    counted("/compliance", response)
}

/// Gathers the compliance page through ComplianceService's own handlers
/// (which check the role), with the jobs' titles.
async fn compliance_report(web: &Web, caller: &Caller) -> Result<compliance::CompliancePage, Error> {
    let (organisation, by_job) = web.compliance.overview(caller).await?;
    let mut jobs = Vec::with_capacity(by_job.len());
    for (id, report) in by_job {
        let title = match web.store.get_job(&caller.org, &id).await? {
            Some(job) => job.title,
            None => id.clone(),
        };
        jobs.push(compliance::JobImpact { id, title, report });
    }
    jobs.sort_by(|a, b| a.title.cmp(&b.title).then(a.id.cmp(&b.id)));
    let mut differentials = Vec::new();
    for (title, grouping) in [("sex", proto::Grouping::Sex), ("race/ethnicity", proto::Grouping::RaceEthnicity)] {
        let mut all = proto::ListRaterDifferentialsResponse::default();
        let mut page_token = String::new();
        loop {
            let request = proto::ListRaterDifferentialsRequest {
                grouping: grouping as i32,
                flagged_only: false,
                page_size: 1000,
                page_token,
            };
            let page = web.compliance.differentials(caller.clone(), request).await?;
            all.differentials.extend(page.differentials);
            all.reference_category = page.reference_category;
            all.comparison_count = page.comparison_count;
            all.calibrate_time = page.calibrate_time;
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        differentials.push((title.to_string(), all));
    }
    let generated_at = organisation.generate_time.as_ref().map(|t| format_time(t.seconds)).unwrap_or_default();
    Ok(compliance::CompliancePage { organisation, jobs, differentials, generated_at })
}

#[derive(serde::Deserialize)]
struct CsvQuery {
    /// A job's id or `jobs/{id}`; none: the whole organisation.
    #[serde(default)]
    job: String,
}

/// `/compliance/adverse-impact.csv?job=…`: the auditor's export of one report.
async fn adverse_impact_csv(
    State(web): State<Arc<Web>>,
    axum::extract::Query(query): axum::extract::Query<CsvQuery>,
    headers: HeaderMap,
) -> Response {
    let route = "/compliance/adverse-impact.csv";
    let Some(caller) = web.caller(&headers).await else {
        return counted(route, StatusCode::UNAUTHORIZED.into_response());
    };
    let job = match query.job.as_str() {
        "" => String::new(),
        id if id.starts_with("jobs/") => id.to_string(),
        id => Collection::Jobs.name(id),
    };
    let request = proto::GetAdverseImpactReportRequest { job: job.clone(), ..Default::default() };
    let built = web.compliance.report(caller.clone(), request).await;
    web.audit(
        &caller,
        "/scorecard.web/AdverseImpactCsv",
        job.clone(),
        &headers,
        built.as_ref().err().map_or(tonic::Code::Ok, Error::code),
    )
    .await;
    let response = match built {
        Ok(report) => {
            let generated = report
                .generate_time
                .as_ref()
                .map(|t| crate::domain::time::rfc3339(t.seconds * 1_000_000 + i64::from(t.nanos) / 1_000))
                .unwrap_or_default();
            let scope = if job.is_empty() { "organisation" } else { job.as_str() };
            let file = if job.is_empty() {
                "adverse-impact.csv".to_string()
            } else {
                format!("adverse-impact-{}.csv", job.trim_start_matches("jobs/"))
            };
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file}\"")),
                    (header::CACHE_CONTROL, "no-store".to_string()),
                ],
                compliance::adverse_impact_csv(scope, &report, &generated),
            )
                .into_response()
        }
        Err(e) => compliance_error(&caller.user, &e),
    };
    counted(route, response)
}

/// Gathers a job's report through the API's own handlers.
async fn job_report(web: &Web, caller: &Caller, job_name: &str) -> Result<report::JobReport, Error> {
    let job = web.hiring.get_job(caller.clone(), proto::GetJobRequest { name: job_name.to_string() }).await?;
    let ranking = web
        .calibration
        .get_ranking_(
            caller.clone(),
            proto::GetRankingRequest { job: job_name.to_string(), page_size: 1000, page_token: String::new() },
        )
        .await?;
    let rubric = web
        .rubrics
        .get(caller.clone(), proto::GetRubricRequest { name: job.rubric.clone(), revision: job.rubric_revision })
        .await?;
    let (scale_min, scale_max) = rubric.scale.map_or((1, 5), |s| (s.min, s.max));
    // Technical and communication when the rubric has them, else its first two dimensions.
    let mut plotted: Vec<&proto::Dimension> = Vec::new();
    for key in ["technical", "communication"] {
        plotted.extend(rubric.dimensions.iter().find(|d| d.key == key));
    }
    if plotted.len() < 2 {
        plotted = rubric.dimensions.iter().take(2).collect();
    }
    let axes = (plotted.len() == 2).then(|| (plotted[0].key.clone(), plotted[1].key.clone()));
    let dimensions = (plotted.len() == 2).then(|| (plotted[0].title.clone(), plotted[1].title.clone()));

    // A long ranking's length from the calibrated state (the call above
    // already checked the caller may read it), not by converting every page.
    let total_candidates = if ranking.next_page_token.is_empty() {
        ranking.entries.len()
    } else {
        let job_id = job_name.trim_start_matches("jobs/");
        web.calibrator.ranking(&caller.org, job_id).await?.entries.len()
    };
    let mut candidates = Vec::new();
    for e in ranking.entries.iter().take(MAX_SHOWN) {
        let candidate =
            web.hiring.get_candidate(caller.clone(), proto::GetCandidateRequest { name: e.candidate.clone() }).await?;
        let name = if candidate.erased { "(erased)".to_string() } else { candidate.display_name };
        let dimension =
            |key: Option<&String>| key.and_then(|k| e.dimensions.iter().find(|d| &d.dimension == k)).map(|d| d.score);
        candidates.push(report::RankedCandidate {
            rank: e.rank,
            name,
            score: e.score,
            lower: e.score_lower,
            upper: e.score_upper,
            raw_mean: e.raw_mean,
            x_dimension: dimension(axes.as_ref().map(|a| &a.0)),
            y_dimension: dimension(axes.as_ref().map(|a| &a.1)),
            scorecards: e.scorecard_count,
            flags: e.flags.clone(),
            tier: e.tier,
            p_above_bar: e.p_above_bar,
        });
    }

    let mut raters = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = proto::ListRaterReportsRequest { flagged_only: false, page_size: 1000, page_token };
        let page = web.calibration.list_reports(caller.clone(), request).await?;
        for r in page.reports {
            let insufficient = r.flags.iter().any(|f| f.kind == proto::rater_flag::Kind::InsufficientData as i32);
            raters.push(report::RaterPoint {
                rater: r.rater,
                ratings: r.rating_count,
                severity: r.severity,
                noise: r.noise,
                flags: r
                    .flags
                    .iter()
                    .filter(|f| f.kind != proto::rater_flag::Kind::InsufficientData as i32)
                    .map(|f| (crate::api::flag_name(f.kind), f.detail.clone()))
                    .collect(),
                insufficient_data: insufficient,
            });
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let reliability = web
        .calibration
        .reliability(
            caller.clone(),
            proto::GetPanelReliabilityRequest { job: job_name.to_string(), rubric: String::new() },
        )
        .await?;
    let overall = reliability.overall.unwrap_or_default();
    Ok(report::JobReport {
        job_id: job_name.trim_start_matches("jobs/").to_string(),
        job_title: job.title,
        calibrated_at: ranking.calibrate_time.map(|t| format_time(t.seconds)).unwrap_or_default(),
        scale_min,
        scale_max,
        hiring_bar: ranking.hiring_bar,
        dimensions,
        candidates,
        total_candidates,
        raters,
        icc2_1: overall.icc2_1,
        alpha_ordinal: overall.alpha_ordinal,
    })
}

/// `YYYY-MM-DD HH:MM UTC` of a Unix time (civil-from-days, Howard Hinnant's algorithm).
fn format_time(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", of_day / 3_600, of_day % 3_600 / 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static("x")));
        }
        h
    }

    #[test]
    fn the_bearer_header_and_the_session_cookie_are_read_apart() {
        assert_eq!(bearer_token(&headers(&[("authorization", "Bearer abc")])), Some(Some("abc")));
        assert_eq!(bearer_token(&headers(&[("authorization", "Basic abc")])), Some(None));
        assert_eq!(bearer_token(&headers(&[("cookie", "scorecard_session=xyz")])), None);
        assert_eq!(
            cookie(&headers(&[("cookie", "a=1; scorecard_session=xyz; b=2")]), "scorecard_session"),
            Some("xyz")
        );
        assert_eq!(cookie(&headers(&[("cookie", "scorecard_sessionx=xyz")]), "scorecard_session"), None);
    }

    #[test]
    fn the_session_cookie_is_secure_with_the_host_prefix_unless_the_listener_is_loopback() {
        let on = |addr: &str, force| SessionCookie::for_listener(Some(addr.parse().expect("addr")), force);
        let loopback = on("127.0.0.1:8080", false);
        assert_eq!(loopback, SessionCookie { name: "scorecard_session", secure: false });
        assert_eq!(on("[::1]:8080", false), loopback);
        for exposed in [on("0.0.0.0:8080", false), on("10.1.2.3:8080", false), on("127.0.0.1:8080", true)] {
            assert_eq!(exposed, SessionCookie { name: "__Host-scorecard_session", secure: true });
        }
        let set = on("0.0.0.0:8080", false).header(Some(("abc", 60)));
        assert_eq!(set, "__Host-scorecard_session=abc; Path=/; HttpOnly; SameSite=Strict; Secure; Max-Age=60");
        assert!(on("0.0.0.0:8080", false).header(None).ends_with("Secure; Max-Age=0"));
        // Stored as a digest: the id is not recoverable from the table.
        assert_eq!(session_hash("abc").len(), 64);
        assert_ne!(session_hash("abc"), "abc");
    }

    #[test]
    fn times_read_as_calendar_dates() {
        assert_eq!(format_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(format_time(1_795_347_353), "2026-11-22 11:35 UTC");
    }

    #[test]
    fn cross_site_sign_ins_are_refused() {
        assert!(same_origin(&headers(&[])), "non-browser clients send no Origin");
        assert!(same_origin(&headers(&[("origin", "http://127.0.0.1:8080"), ("host", "127.0.0.1:8080")])));
        assert!(!same_origin(&headers(&[("origin", "https://evil.example"), ("host", "127.0.0.1:8080")])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")])));
    }
}
