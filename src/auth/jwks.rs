//! Signing keys an identity provider publishes at a JWKS URL (Okta, Auth0,
//! Keycloak and Entra ID all do, and rotate them): fetched at start, kept for
//! as long as the response's `Cache-Control` allows, fetched again when a
//! token names a key id not seen yet (at most once per `min_refresh`, so that
//! tokens with made-up ids cannot make scorecard hammer the provider), and
//! kept while the provider cannot be reached: a provider outage must not log
//! everyone out.

use std::time::{Duration, Instant};

use super::keys::{KeyError, PublicKey, parse_jwks};

/// Longest a fetched key set is trusted without asking again, whatever its
/// `Cache-Control` says.
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3_600);
/// How long a key set without `Cache-Control: max-age` is kept.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// Longest wait between retries while the provider cannot be reached.
const MAX_RETRY: Duration = Duration::from_secs(5 * 60);
/// A JWKS larger than this is refused (real ones are a few KB).
const MAX_BYTES: usize = 1 << 20;
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) struct RemoteJwks {
    url: reqwest::Url,
    client: reqwest::Client,
    min_refresh: Duration,
    state: std::sync::Mutex<State>,
    /// One fetch at a time: concurrent requests with a new key id share it.
    fetching: tokio::sync::Mutex<()>,
}

struct State {
    /// When the periodic refresh is due (the cache lifetime, or the next retry).
    due: Instant,
    /// When a token's unknown key id last caused a fetch.
    last_unknown_kid_fetch: Option<Instant>,
    /// Fetches failed in a row.
    failures: u32,
}

impl RemoteJwks {
    /// `https://…`, or `http://` to a loopback address (a sidecar, a test):
    /// keys fetched in the clear from elsewhere could be anyone's.
    pub(super) fn new(url: &str, min_refresh: Duration) -> Result<Self, KeyError> {
        let bad = |cause: &str| KeyError::Jwks { url: url.to_string(), cause: cause.to_string() };
        let parsed = reqwest::Url::parse(url).map_err(|e| bad(&format!("not a URL: {e}")))?;
        let host = parsed.host_str().unwrap_or_default().trim_matches(['[', ']']);
        let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        match parsed.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => return Err(bad("must be https:// (plain http:// only to a loopback address)")),
        }
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            // A redirect could lead to plain http or another host: the
            // configured URL is the one trusted, so none is followed.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| bad(&e.to_string()))?;
        Ok(Self {
            url: parsed,
            client,
            min_refresh,
            state: std::sync::Mutex::new(State { due: Instant::now(), last_unknown_kid_fetch: None, failures: 0 }),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    pub(super) fn url(&self) -> &str {
        self.url.as_str()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Time until the periodic refresh is due.
    pub(super) fn due_in(&self) -> Duration {
        self.state().due.saturating_duration_since(Instant::now())
    }

    /// Whether a token's unknown key id may cause a fetch now; if so, counts
    /// it as the one of this `min_refresh` window.
    pub(super) fn claim_unknown_kid_fetch(&self) -> bool {
        let mut state = self.state();
        let now = Instant::now();
        if state.last_unknown_kid_fetch.is_some_and(|at| now.duration_since(at) < self.min_refresh) {
            return false;
        }
        state.last_unknown_kid_fetch = Some(now);
        true
    }

    /// Fetches the key set. On success the next periodic refresh is due after
    /// its cache lifetime; on failure after a backoff, and the caller keeps the
    /// keys it has.
    pub(super) async fn fetch(&self) -> Result<Vec<PublicKey>, KeyError> {
        let _one = self.fetching.lock().await;
        let result = self.fetch_once().await;
        let mut state = self.state();
        match &result {
            Ok((_, lifetime)) => {
                state.failures = 0;
                state.due = Instant::now() + *lifetime;
            }
            Err(_) => {
                state.failures = state.failures.saturating_add(1);
                let backoff = self.min_refresh.saturating_mul(1 << state.failures.min(10)).min(MAX_RETRY);
                state.due = Instant::now() + backoff.max(Duration::from_secs(1));
            }
        }
        result.map(|(keys, _)| keys)
    }

    async fn fetch_once(&self) -> Result<(Vec<PublicKey>, Duration), KeyError> {
        let error = |cause: String| KeyError::Jwks { url: self.url.to_string(), cause };
        let mut response = self
            .client
            .get(self.url.clone())
            .header(reqwest::header::ACCEPT, "application/json, application/jwk-set+json")
            .send()
            .await
            .map_err(|e| error(format!("cannot fetch: {e}")))?;
        if !response.status().is_success() {
            return Err(error(format!("answered HTTP {}", response.status())));
        }
        let lifetime = lifetime(
            response.headers().get(reqwest::header::CACHE_CONTROL).and_then(|v| v.to_str().ok()),
            self.min_refresh,
        );
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| error(format!("cannot read: {e}")))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_BYTES {
                return Err(error(format!("more than {MAX_BYTES} bytes")));
            }
        }
        let keys = parse_jwks(&body, self.url.as_str(), false)?;
        Ok((keys, lifetime))
    }
}

/// How long a response may be kept, from its `Cache-Control` (RFC 9111):
/// `max-age`, or no time at all (`no-cache`, `no-store`), held between
/// `min_refresh` and a day; a response without either is kept 15 minutes.
fn lifetime(cache_control: Option<&str>, min_refresh: Duration) -> Duration {
    let mut lifetime = DEFAULT_LIFETIME;
    for directive in cache_control.unwrap_or_default().split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-cache" || lower == "no-store" {
            lifetime = Duration::ZERO;
            break;
        }
        if let Some(seconds) = lower.strip_prefix("max-age=")
            && let Ok(seconds) = seconds.trim_matches('"').parse::<u64>()
        {
            lifetime = Duration::from_secs(seconds);
        }
    }
    lifetime.clamp(min_refresh.min(MAX_LIFETIME), MAX_LIFETIME)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_sets_the_lifetime_within_bounds() {
        let min = Duration::from_secs(30);
        assert_eq!(lifetime(Some("public, max-age=3600"), min), Duration::from_secs(3600));
        assert_eq!(lifetime(Some("max-age=5"), min), min, "never more often than min_refresh");
        assert_eq!(lifetime(Some("no-store"), min), min);
        assert_eq!(lifetime(Some("max-age=31536000"), min), MAX_LIFETIME);
        assert_eq!(lifetime(None, min), DEFAULT_LIFETIME);
        assert_eq!(lifetime(Some("max-age=oops"), min), DEFAULT_LIFETIME);
    }

    #[test]
    fn only_https_or_loopback_http() {
        let min = Duration::from_secs(30);
        assert!(RemoteJwks::new("https://idp.example.com/.well-known/jwks.json", min).is_ok());
        assert!(RemoteJwks::new("http://127.0.0.1:8081/jwks", min).is_ok());
        assert!(RemoteJwks::new("http://localhost/jwks", min).is_ok());
        assert!(RemoteJwks::new("http://idp.example.com/jwks", min).is_err());
        assert!(RemoteJwks::new("file:///etc/jwks.json", min).is_err());
        assert!(RemoteJwks::new("not a url", min).is_err());
    }

    #[test]
    fn unknown_key_ids_fetch_at_most_once_per_window() {
        let remote = RemoteJwks::new("https://idp.example.com/jwks", Duration::from_secs(60)).expect("url");
        assert!(remote.claim_unknown_kid_fetch());
        assert!(!remote.claim_unknown_kid_fetch());
        let quick = RemoteJwks::new("https://idp.example.com/jwks", Duration::ZERO).expect("url");
        assert!(quick.claim_unknown_kid_fetch() && quick.claim_unknown_kid_fetch());
    }
}
