//! Overload protection, as a tower layer inside authentication:
//!
//! - **Per-token rate limit**: a token bucket per (organisation, user); an empty
//!   bucket answers `RESOURCE_EXHAUSTED` with a `RetryInfo` detail saying when
//!   a token will be available.
//! - **Concurrency limit**: at most `max_concurrent` requests are handled at
//!   once; the next is answered `RESOURCE_EXHAUSTED` at once (with `RetryInfo`)
//!   instead of queueing without bound.
//! - **Deadlines**: the client's `grpc-timeout`, capped by the server's default
//!   deadline (not applied to streaming methods, whose length the client
//!   decides). When it passes, the handler is dropped (its work cancelled, an
//!   open transaction rolled back) and the answer is `DEADLINE_EXCEEDED`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tonic_types::{ErrorDetails, StatusExt};
use tower::{Layer, Service};

use crate::auth::Caller;

/// Limits; from the serve flags.
#[derive(Debug, Clone)]
pub struct GuardSettings {
    /// Requests per second each (organisation, user) may make on average.
    pub rate_per_second: f64,
    /// How many requests a token may make in a burst.
    pub burst: f64,
    /// Requests handled at once, over all callers.
    pub max_concurrent: usize,
    /// Deadline of a unary call when the client sets none (or a longer one).
    pub default_deadline: Duration,
}

impl Default for GuardSettings {
    fn default() -> Self {
        Self { rate_per_second: 200.0, burst: 400.0, max_concurrent: 512, default_deadline: Duration::from_secs(30) }
    }
}

/// Methods whose response is a stream or that read a client stream: only the
/// client's own deadline applies.
fn is_streaming(method: &str) -> bool {
    let rpc = method.rsplit('/').next().unwrap_or_default();
    rpc.starts_with("Watch") || rpc == "ImportScorecards"
}

/// Parses a `grpc-timeout` header value: digits and a unit (H, M, S, m, u, n).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3_600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets by (organisation, user).
struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<(String, String), Bucket>>,
}

/// Most buckets kept before idle (full) ones are dropped.
const MAX_BUCKETS: usize = 100_000;

impl RateLimiter {
    /// Takes a token, or says how long until one is there.
    fn take(&self, org: &str, user: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > MAX_BUCKETS {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| b.tokens + now.duration_since(b.updated).as_secs_f64() * rate < burst);
        }
        let bucket =
            buckets.entry((org.to_string(), user.to_string())).or_insert(Bucket { tokens: self.burst, updated: now });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate.max(1e-9)))
        }
    }
}

#[derive(Clone)]
pub struct GuardLayer {
    settings: Arc<GuardSettings>,
    limiter: Arc<RateLimiter>,
    permits: Arc<tokio::sync::Semaphore>,
}

impl GuardLayer {
    pub fn new(settings: GuardSettings) -> Self {
        Self {
            limiter: Arc::new(RateLimiter {
                rate: settings.rate_per_second,
                burst: settings.burst.max(1.0),
                buckets: Mutex::new(HashMap::new()),
            }),
            permits: Arc::new(tokio::sync::Semaphore::new(settings.max_concurrent.max(1))),
            settings: Arc::new(settings),
        }
    }
}

impl<S> Layer<S> for GuardLayer {
    type Service = GuardService<S>;
    fn layer(&self, inner: S) -> GuardService<S> {
        GuardService { inner, guard: self.clone() }
    }
}

#[derive(Clone)]
pub struct GuardService<S> {
    inner: S,
    guard: GuardLayer,
}

fn refuse<B: Default>(status: tonic::Status) -> http::Response<B> {
    let (parts, _) = status.into_http::<B>().into_parts();
    http::Response::from_parts(parts, B::default())
}

fn exhausted(message: &str, retry_after: Duration) -> tonic::Status {
    let details = ErrorDetails::with_retry_info(Some(retry_after));
    tonic::Status::with_error_details(tonic::Code::ResourceExhausted, message, details)
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for GuardService<S>
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

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let guard = self.guard.clone();
        // Health checks and reflection carry no caller and are not limited.
        let Some(caller) = request.extensions().get::<Caller>().cloned() else {
            let clone = self.inner.clone();
            let mut inner = std::mem::replace(&mut self.inner, clone);
            return Box::pin(async move { inner.call(request).await });
        };
        if let Err(wait) = guard.limiter.take(&caller.org, &caller.user, Instant::now()) {
            let status = exhausted("rate limit: too many requests for this token; retry after the delay given", wait);
            return Box::pin(std::future::ready(Ok(refuse(status))));
        }
        let Ok(permit) = guard.permits.clone().try_acquire_owned() else {
            let status = exhausted("the server is at capacity; retry shortly", Duration::from_millis(100));
            return Box::pin(std::future::ready(Ok(refuse(status))));
        };
        let method = request.uri().path().to_string();
        let client_deadline =
            request.headers().get("grpc-timeout").and_then(|v| v.to_str().ok()).and_then(parse_grpc_timeout);
        // Answer a little before the client's own timer fires (it started
        // earlier, and tonic's transport cancels at that instant with a bare
        // CANCELLED), so the client hears DEADLINE_EXCEEDED.
        let client_deadline = client_deadline.map(|d| d.saturating_sub((d / 10).min(Duration::from_millis(50))));
        let deadline = if is_streaming(&method) {
            client_deadline
        } else {
            Some(client_deadline.map_or(guard.settings.default_deadline, |d| d.min(guard.settings.default_deadline)))
        };
        // Below the timer's resolution a deadline cannot be met: it has passed.
        if deadline.is_some_and(|d| d < Duration::from_millis(1)) {
            let status = tonic::Status::deadline_exceeded("the request's deadline passed before it could start");
            return Box::pin(std::future::ready(Ok(refuse(status))));
        }
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let response = match deadline {
                None => inner.call(request).await,
                Some(deadline) => match tokio::time::timeout(deadline, inner.call(request)).await {
                    Ok(response) => response,
                    Err(_) => {
                        tracing::info!(%method, ?deadline, "deadline passed; request cancelled");
                        Ok(refuse(tonic::Status::deadline_exceeded(
                            "the request's deadline passed; its work was cancelled",
                        )))
                    }
                },
            };
            drop(permit);
            response
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_as_the_spec_writes_them() {
        assert_eq!(parse_grpc_timeout("100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7_200)));
        assert_eq!(parse_grpc_timeout("250u"), Some(Duration::from_micros(250)));
        assert_eq!(parse_grpc_timeout("1x"), None);
        assert_eq!(parse_grpc_timeout("S"), None);
        assert_eq!(parse_grpc_timeout("1234567890S"), None, "at most 8 digits");
    }

    #[test]
    fn buckets_refill_at_the_rate_and_say_when_to_retry() {
        let limiter = RateLimiter { rate: 10.0, burst: 3.0, buckets: Mutex::new(HashMap::new()) };
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take("o", "u", t0).is_ok());
        }
        let wait = limiter.take("o", "u", t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-6, "{wait:?}");
        assert!(limiter.take("o", "other", t0).is_ok(), "buckets are per user");
        assert!(limiter.take("o", "u", t0 + Duration::from_millis(100)).is_ok());
    }
}
