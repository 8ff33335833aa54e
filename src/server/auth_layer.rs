//! The tower layer in front of every gRPC service: one trace span per request
//! (method, org, gRPC code, latency), bearer-token authentication, the request id
//! (`x-request-id`, echoed on the response) and the audit record of every
//! authenticated call. Health checks and reflection pass without a token so load
//! balancers and `grpcurl` work. Nothing here logs a token, and request bodies
//! are never looked at.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use tower::{Layer, Service};
use tracing::{Instrument, field::Empty};

use super::audit::{self, Auditor};
use crate::api::audited::AuditSlot;
use crate::auth::Verifier;
use crate::error::Error;

const REQUEST_ID: &str = "x-request-id";

/// Paths served without authentication.
const PUBLIC_PREFIXES: [&str; 2] = ["/grpc.health.v1.Health/", "/grpc.reflection."];

#[derive(Clone)]
pub struct AuthLayer {
    verifier: Arc<Verifier>,
    auditor: Option<Auditor>,
}

impl AuthLayer {
    pub fn new(verifier: Arc<Verifier>) -> Self {
        Self { verifier, auditor: None }
    }

    /// Records every authenticated call in the audit log.
    pub fn with_audit(self, auditor: Auditor) -> Self {
        Self { auditor: Some(auditor), ..self }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;
    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService { inner, verifier: self.verifier.clone(), auditor: self.auditor.clone() }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    verifier: Arc<Verifier>,
    auditor: Option<Auditor>,
}

fn bearer_token<B>(request: &http::Request<B>) -> Option<&str> {
    let value = request.headers().get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The status of a response: errors travel in the headers (trailers-only
/// responses); a response without one carries its status in the trailers,
/// which for unary calls is OK.
fn grpc_code<B>(response: &http::Response<B>) -> tonic::Code {
    response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(tonic::Code::from_i32)
        .unwrap_or(tonic::Code::Ok)
}

/// Codes that mark a server span as failed (the OpenTelemetry gRPC
/// conventions): the server's faults, not the caller's.
fn server_fault(code: tonic::Code) -> bool {
    use tonic::Code::*;
    matches!(code, Unknown | DeadlineExceeded | Unimplemented | Internal | Unavailable | DataLoss)
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for AuthService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let started = Instant::now();
        // Unknown paths come from clients: cap what reaches the logs.
        let method: String = request.uri().path().chars().take(120).collect();
        let request_id = audit::request_id(request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()));
        // The OpenTelemetry RPC conventions: `package.Service/Method` as the
        // span's name, rpc.system (Connect calls are marked by their layer),
        // rpc.service, rpc.method, rpc.grpc.status_code.
        let (service, rpc) = method.trim_start_matches('/').split_once('/').unwrap_or(("", ""));
        let system =
            if request.extensions().get::<super::connect::ConnectCall>().is_some() { "connect_rpc" } else { "grpc" };
        // The convention fields stay empty, and out of the log lines, unless
        // traces are exported.
        let span = tracing::info_span!(
            "grpc",
            method = %method,
            request_id = %request_id,
            org = Empty,
            code = Empty,
            latency_ms = Empty,
            otel.name = Empty,
            otel.kind = Empty,
            otel.status_code = Empty,
            rpc.system = Empty,
            rpc.service = Empty,
            rpc.method = Empty,
            rpc.grpc.status_code = Empty,
        );
        if crate::telemetry::traces_enabled() {
            span.record("otel.name", method.trim_start_matches('/'));
            span.record("otel.kind", "server");
            span.record("rpc.system", system);
            span.record("rpc.service", service);
            span.record("rpc.method", rpc);
        }
        crate::telemetry::continue_trace(&span, request.headers());
        let header = http::HeaderValue::from_str(&request_id).ok();

        let needs_token = !PUBLIC_PREFIXES.iter().any(|p| method.starts_with(p));
        let token = if needs_token { bearer_token(&request).map(str::to_owned) } else { None };
        let (verifier, auditor) = (self.verifier.clone(), self.auditor.clone());

        // The service that was polled ready is the one to call (tower's clone idiom).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let record_span = span.clone();
        Box::pin(
            async move {
                let mut audit = None;
                if needs_token {
                    // Async only for a token signed by a key the identity
                    // provider published since the last fetch of its JWKS.
                    let caller = match &token {
                        Some(t) => verifier.verify_or_refresh(t).await,
                        None => None,
                    };
                    match caller {
                        Some(caller) => {
                            record_span.record("org", caller.org.as_str());
                            if let Some(auditor) = &auditor {
                                let slot = AuditSlot::default();
                                request.extensions_mut().insert(slot.clone());
                                audit = Some((auditor.clone(), caller.clone(), slot));
                            }
                            request.extensions_mut().insert(caller);
                        }
                        None => {
                            record_span.record("code", "Unauthenticated");
                            if crate::telemetry::traces_enabled() {
                                record_span.record("rpc.grpc.status_code", tonic::Code::Unauthenticated as i64);
                            }
                            tracing::info!("request refused: unauthenticated");
                            let status: tonic::Status = Error::Unauthenticated.into();
                            let mut response = status.into_http();
                            crate::metrics::global().record_request(
                                &method,
                                tonic::Code::Unauthenticated,
                                started.elapsed(),
                            );
                            if let Some(h) = header {
                                response.headers_mut().insert(REQUEST_ID, h);
                            }
                            return Ok(response);
                        }
                    }
                }
                let mut result = inner.call(request).await;
                if let Ok(response) = &mut result {
                    let code = grpc_code(response);
                    record_span.record("code", format!("{code:?}").as_str());
                    if crate::telemetry::traces_enabled() {
                        record_span.record("rpc.grpc.status_code", code as i64);
                        if server_fault(code) {
                            record_span.record("otel.status_code", "ERROR");
                        }
                    }
                    if let Some(h) = header {
                        response.headers_mut().insert(REQUEST_ID, h);
                    }
                    if let Some((auditor, caller, slot)) = audit {
                        auditor.record(&caller, &method, slot.take(), request_id, code).await;
                    }
                }
                let elapsed = started.elapsed();
                if let Ok(response) = &result {
                    crate::metrics::global().record_request(&method, grpc_code(response), elapsed);
                }
                record_span.record("latency_ms", elapsed.as_secs_f64() * 1e3);
                tracing::info!("request finished");
                result
            }
            .instrument(span),
        )
    }
}
