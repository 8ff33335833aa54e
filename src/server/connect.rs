//! The Connect protocol (https://connectrpc.com/docs/protocol) for every
//! unary RPC, on the gRPC port: `POST /scorecard.v1.X/Method` with a JSON
//! (`application/json`, the canonical proto3 JSON mapping) or binary
//! (`application/proto`) body, over HTTP/1.1 or HTTP/2. An ATS team can call
//! scorecard with `curl`.
//!
//! A Connect request is translated into the gRPC request it means (a framed
//! binary message, `connect-timeout-ms` as `grpc-timeout`, its headers as
//! metadata) and sent down the same stack as gRPC: authentication, rate
//! limits, deadlines, the audit log and metrics see a gRPC call and cannot
//! treat it differently. The gRPC answer is translated back: the message as
//! JSON or binary, or a Connect error (`{"code","message","details"}` with
//! the HTTP status the specification gives the code, each detail's bytes and
//! its JSON under `debug`).
//!
//! JSON goes through prost-reflect, which implements the canonical mapping
//! from the descriptors the binary already carries for gRPC reflection (and
//! tonic-types' for `google.rpc` error details): no hand-written JSON, and
//! unknown fields are refused as protojson refuses them.

use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};

use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version, header};
use http_body_util::BodyExt;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor, SerializeOptions};
use serde_json::{Value, json};
use tonic::body::Body;
use tower::{Layer, Service};

use super::MAX_MESSAGE_BYTES;

/// Every message the API speaks, and the `google.rpc` error details.
static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    let mut pool = DescriptorPool::new();
    if let Err(e) = pool.decode_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET) {
        tracing::error!(error = %e, "Connect: the API's descriptors do not load");
    }
    if let Err(e) = pool.decode_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET) {
        tracing::warn!(error = %e, "Connect: google.rpc descriptors do not load; error details carry no debug JSON");
    }
    pool
});

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    Json,
    Proto,
}

/// The Connect unary codec a request asks for, by its content type; `None`
/// for everything else (gRPC, gRPC-Web, streaming Connect), which passes
/// through untouched.
fn codec(headers: &HeaderMap) -> Option<Codec> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Some(Codec::Json),
        "application/proto" => Some(Codec::Proto),
        _ => None,
    }
}

/// Marks a request that arrived over Connect (for the trace's rpc.system).
#[derive(Debug, Clone, Copy)]
pub struct ConnectCall;

#[derive(Debug, Clone, Default)]
pub struct ConnectLayer;

impl<S> Layer<S> for ConnectLayer {
    type Service = ConnectService<S>;
    fn layer(&self, inner: S) -> ConnectService<S> {
        ConnectService { inner }
    }
}

#[derive(Debug, Clone)]
pub struct ConnectService<S> {
    inner: S,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S, ReqBody> Service<Request<ReqBody>> for ConnectService<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: http_body::Body<Data = Bytes> + Send + 'static,
    ReqBody::Error: Into<BoxError> + std::fmt::Display,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let Some(codec) = codec(request.headers()) else {
            return Box::pin(inner.call(request.map(Body::new)));
        };
        Box::pin(async move {
            let grpc = match to_grpc(request, codec).await {
                Ok(grpc) => grpc,
                Err(error) => return Ok(error.into_response()),
            };
            let output = grpc.method.output();
            let response = inner.call(grpc.request).await?;
            Ok(from_grpc(response, codec, &output).await.unwrap_or_else(ConnectError::into_response))
        })
    }
}

/// A Connect error: its code (the gRPC code's name in snake case), message
/// and `google.rpc.Status` details.
#[derive(Debug)]
struct ConnectError {
    code: tonic::Code,
    message: String,
    details: Vec<prost_types::Any>,
    headers: HeaderMap,
}

impl ConnectError {
    fn new(code: tonic::Code, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), details: Vec::new(), headers: HeaderMap::new() }
    }

    /// An INVALID_ARGUMENT naming the field at fault, as every RPC's own
    /// validation answers.
    fn invalid(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut details = tonic_types::ErrorDetails::new();
        details.add_bad_request_violation(field, message.clone());
        let status = <tonic::Status as tonic_types::StatusExt>::with_error_details(
            tonic::Code::InvalidArgument,
            message.clone(),
            details,
        );
        let details = tonic_types::pb::Status::decode(status.details()).map(|s| s.details).unwrap_or_default();
        Self { code: tonic::Code::InvalidArgument, message, details, headers: HeaderMap::new() }
    }

    fn into_response(self) -> Response<Body> {
        let mut body = json!({ "code": code_name(self.code) });
        if !self.message.is_empty() {
            body["message"] = json!(self.message);
        }
        if !self.details.is_empty() {
            let details: Vec<Value> = self.details.iter().map(detail).collect();
            body["details"] = json!(details);
        }
        let mut response = Response::new(Body::new(http_body_util::Full::new(Bytes::from(body.to_string()))));
        *response.status_mut() = http_status(self.code);
        *response.headers_mut() = self.headers;
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }
}

/// One error detail as Connect writes it: the type's full name, its bytes in
/// base64 (standard alphabet, unpadded) and, when the type is known, its JSON.
fn detail(any: &prost_types::Any) -> Value {
    let name = any.type_url.rsplit('/').next().unwrap_or_default();
    let mut out = json!({
        "type": name,
        "value": base64::engine::general_purpose::STANDARD_NO_PAD.encode(&any.value),
    });
    if let Some(descriptor) = POOL.get_message_by_name(name)
        && let Ok(message) = DynamicMessage::decode(descriptor, any.value.as_slice())
        && let Ok(debug) = serde_json::to_value(&message)
    {
        out["debug"] = debug;
    }
    out
}

/// The Connect name of a gRPC code.
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "ok",
        Cancelled => "canceled",
        Unknown => "unknown",
        InvalidArgument => "invalid_argument",
        DeadlineExceeded => "deadline_exceeded",
        NotFound => "not_found",
        AlreadyExists => "already_exists",
        PermissionDenied => "permission_denied",
        ResourceExhausted => "resource_exhausted",
        FailedPrecondition => "failed_precondition",
        Aborted => "aborted",
        OutOfRange => "out_of_range",
        Unimplemented => "unimplemented",
        Internal => "internal",
        Unavailable => "unavailable",
        DataLoss => "data_loss",
        Unauthenticated => "unauthenticated",
    }
}

/// The HTTP status the Connect specification gives each code.
fn http_status(code: tonic::Code) -> StatusCode {
    use tonic::Code::*;
    let status = match code {
        Ok => 200,
        Cancelled => 499,
        Unknown | Internal | DataLoss => 500,
        InvalidArgument | FailedPrecondition | OutOfRange => 400,
        DeadlineExceeded => 504,
        NotFound => 404,
        AlreadyExists | Aborted => 409,
        PermissionDenied => 403,
        ResourceExhausted => 429,
        Unimplemented => 501,
        Unavailable => 503,
        Unauthenticated => 401,
    };
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

struct GrpcCall {
    request: Request<Body>,
    method: MethodDescriptor,
}

/// Headers that describe the Connect exchange itself, not the caller's
/// metadata; they do not travel into the gRPC request.
fn is_protocol_header(name: &str) -> bool {
    matches!(
        name,
        "content-type"
            | "content-length"
            | "content-encoding"
            | "accept-encoding"
            | "te"
            | "host"
            // HTTP/1.1's hop-by-hop headers (RFC 9110 §7.6.1) end at this hop.
            | "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "upgrade"
    ) || name.starts_with("connect-")
        || name.starts_with("grpc-")
}

/// The method a path names (`/scorecard.v1.RubricService/GetRubric`).
fn method_of(path: &str) -> Option<MethodDescriptor> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    POOL.get_service_by_name(service)?.methods().find(|m| m.name() == method)
}

async fn to_grpc<B>(request: Request<B>, codec: Codec) -> Result<GrpcCall, ConnectError>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError> + std::fmt::Display,
{
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let method = method_of(&path).ok_or_else(|| {
        ConnectError::new(
            tonic::Code::Unimplemented,
            format!("no procedure {}", path.chars().take(120).collect::<String>()),
        )
    })?;
    if method.is_client_streaming() || method.is_server_streaming() {
        return Err(ConnectError::new(
            tonic::Code::Unimplemented,
            format!("{} streams: call it over gRPC or gRPC-Web", method.full_name()),
        ));
    }
    if parts.method != Method::POST {
        let mut error = ConnectError::new(tonic::Code::Unimplemented, "Connect unary calls are POST");
        error.headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
        return Err(error);
    }
    if let Some(version) = parts.headers.get("connect-protocol-version")
        && version.as_bytes() != b"1"
    {
        return Err(ConnectError::invalid("connect-protocol-version", "Connect-Protocol-Version must be 1"));
    }
    if let Some(encoding) = parts.headers.get(header::CONTENT_ENCODING)
        && !encoding.as_bytes().eq_ignore_ascii_case(b"identity")
    {
        return Err(ConnectError::new(
            tonic::Code::Unimplemented,
            "compressed requests are not accepted: send the body uncompressed (Content-Encoding: identity)",
        ));
    }
    let timeout = match parts.headers.get("connect-timeout-ms") {
        None => None,
        Some(value) => {
            // At most 10 digits, as the specification allows.
            let text = value.to_str().unwrap_or_default();
            match text.parse::<u64>() {
                Ok(ms) if !text.is_empty() && text.len() <= 10 => Some(ms),
                _ => {
                    return Err(ConnectError::invalid(
                        "connect-timeout-ms",
                        "Connect-Timeout-Ms must be a whole number of milliseconds, at most 10 digits",
                    ));
                }
            }
        }
    };
    let body = read_body(body, MAX_MESSAGE_BYTES).await?;
    let input = method.input();
    let message: Bytes = match codec {
        Codec::Proto => body,
        Codec::Json => {
            let text: &[u8] = if body.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &body };
            let mut deserializer = serde_json::Deserializer::from_slice(text);
            let message = DynamicMessage::deserialize(input.clone(), &mut deserializer)
                .and_then(|m| deserializer.end().map(|()| m))
                .map_err(|e| {
                    ConnectError::invalid("", format!("the body is not a {} in proto3 JSON: {e}", input.full_name()))
                })?;
            message.encode_to_vec().into()
        }
    };
    let mut framed = BytesMut::with_capacity(5 + message.len());
    framed.put_u8(0);
    framed.put_u32(message.len() as u32);
    framed.put_slice(&message);

    let mut grpc = Request::new(Body::new(http_body_util::Full::new(framed.freeze())));
    *grpc.method_mut() = Method::POST;
    *grpc.uri_mut() = parts.uri;
    // Down the stack as HTTP/2 whatever it came in: gRPC-Web's layer refuses
    // any other HTTP/1.1 request.
    *grpc.version_mut() = Version::HTTP_2;
    *grpc.extensions_mut() = parts.extensions;
    grpc.extensions_mut().insert(ConnectCall);
    let headers = grpc.headers_mut();
    for (name, value) in &parts.headers {
        if !is_protocol_header(name.as_str()) {
            headers.append(name.clone(), value.clone());
        }
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert(header::TE, HeaderValue::from_static("trailers"));
    if let Some(ms) = timeout
        && let Ok(value) = HeaderValue::from_str(&format!("{}m", ms.min(99_999_999)))
    {
        headers.insert("grpc-timeout", value);
    }
    Ok(GrpcCall { request: grpc, method })
}

/// The whole body, refused past `limit` bytes.
async fn read_body<B>(body: B, limit: usize) -> Result<Bytes, ConnectError>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError> + std::fmt::Display,
{
    let limited = http_body_util::Limited::new(body, limit);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            Err(ConnectError::new(tonic::Code::ResourceExhausted, format!("the request body is over {limit} bytes")))
        }
        Err(e) => Err(ConnectError::new(tonic::Code::Cancelled, format!("the request body could not be read: {e}"))),
    }
}

/// The gRPC answer as Connect: the message in the request's codec, or the
/// error. Response metadata become headers, trailers `trailer-` headers.
async fn from_grpc(
    response: Response<Body>,
    codec: Codec,
    output: &prost_reflect::MessageDescriptor,
) -> Result<Response<Body>, ConnectError> {
    let (parts, body) = response.into_parts();
    let collected = body
        .collect()
        .await
        .map_err(|e| ConnectError::new(tonic::Code::Internal, format!("the response could not be read: {e}")))?;
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let data = collected.to_bytes();
    // A trailers-only answer (every error) carries its status in the headers.
    let status_from = |name: &str| trailers.get(name).or_else(|| parts.headers.get(name));
    let code = status_from("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(tonic::Code::from_i32)
        .unwrap_or(tonic::Code::Unknown);
    let mut headers = HeaderMap::new();
    for (name, value) in &parts.headers {
        if !is_protocol_header(name.as_str()) {
            headers.append(name.clone(), value.clone());
        }
    }
    for (name, value) in &trailers {
        if !is_protocol_header(name.as_str())
            && let Ok(name) = http::HeaderName::from_bytes(format!("trailer-{name}").as_bytes())
        {
            headers.append(name, value.clone());
        }
    }
    if code != tonic::Code::Ok {
        let message = status_from("grpc-message")
            .map(|v| percent_encoding::percent_decode(v.as_bytes()).decode_utf8_lossy().into_owned())
            .unwrap_or_default();
        let details = status_from("grpc-status-details-bin")
            .and_then(|v| base64::engine::general_purpose::STANDARD_NO_PAD.decode(without_padding(v.as_bytes())).ok())
            .and_then(|bytes| tonic_types::pb::Status::decode(bytes.as_slice()).ok())
            .map(|s| s.details)
            .unwrap_or_default();
        return Err(ConnectError { code, message, details, headers });
    }
    if data.len() < 5 || data[0] != 0 {
        return Err(ConnectError::new(tonic::Code::Internal, "the service answered no message"));
    }
    let length = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
    if data.len() < 5 + length {
        return Err(ConnectError::new(tonic::Code::Internal, "the service's answer was cut short"));
    }
    let message = data.slice(5..5 + length);
    let (body, content_type) = match codec {
        Codec::Proto => (message, "application/proto"),
        Codec::Json => {
            let decoded = DynamicMessage::decode(output.clone(), message)
                .map_err(|e| ConnectError::new(tonic::Code::Internal, format!("the answer does not decode: {e}")))?;
            let mut out = Vec::new();
            let mut serializer = serde_json::Serializer::new(&mut out);
            decoded
                .serialize_with_options(&mut serializer, &SerializeOptions::new())
                .map_err(|e| ConnectError::new(tonic::Code::Internal, format!("the answer does not encode: {e}")))?;
            (Bytes::from(out), "application/json")
        }
    };
    let mut response = Response::new(Body::new(http_body_util::Full::new(body)));
    *response.headers_mut() = headers;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}

/// `grpc-status-details-bin` without its base64 padding, which the unpadded
/// decoder refuses (senders may or may not pad).
fn without_padding(value: &[u8]) -> &[u8] {
    let end = value.iter().rposition(|&b| b != b'=').map_or(0, |i| i + 1);
    &value[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_the_specifications_http_statuses() {
        use tonic::Code::*;
        let table = [
            (Cancelled, 499),
            (Unknown, 500),
            (InvalidArgument, 400),
            (DeadlineExceeded, 504),
            (NotFound, 404),
            (AlreadyExists, 409),
            (PermissionDenied, 403),
            (ResourceExhausted, 429),
            (FailedPrecondition, 400),
            (Aborted, 409),
            (OutOfRange, 400),
            (Unimplemented, 501),
            (Internal, 500),
            (Unavailable, 503),
            (DataLoss, 500),
            (Unauthenticated, 401),
        ];
        for (code, status) in table {
            assert_eq!(http_status(code).as_u16(), status, "{code:?}");
        }
        assert_eq!(code_name(Cancelled), "canceled");
        assert_eq!(code_name(ResourceExhausted), "resource_exhausted");
    }

    #[test]
    fn only_connect_unary_content_types_are_taken() {
        let of = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_str(value).expect("a valid header value"));
            codec(&h)
        };
        assert_eq!(of("application/json"), Some(Codec::Json));
        assert_eq!(of("application/json; charset=utf-8"), Some(Codec::Json));
        assert_eq!(of("application/proto"), Some(Codec::Proto));
        assert_eq!(of("application/grpc"), None);
        assert_eq!(of("application/grpc-web+proto"), None);
        assert_eq!(of("application/connect+json"), None);
    }

    #[test]
    fn every_rpc_of_the_api_is_known_to_the_json_mapping() {
        let method = method_of("/scorecard.v1.ScorecardService/SubmitScorecard").expect("known");
        assert_eq!(method.input().full_name(), "scorecard.v1.SubmitScorecardRequest");
        assert!(method_of("/scorecard.v1.ScorecardService/Nope").is_none());
        assert!(method_of("/nope").is_none());
        assert!(POOL.get_message_by_name("google.rpc.BadRequest").is_some(), "error details decode to JSON");
    }

    #[test]
    fn an_invalid_argument_carries_its_field_violation() {
        let error = ConnectError::invalid("connect-timeout-ms", "bad");
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }
}
