//! Webhook delivery: a background dispatcher that POSTs each organisation's
//! events, in sequence order, to the endpoints its admins registered.
//!
//! - **Signed**: `Scorecard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
//!   "<t>.<body>">` with the webhook's secret, and `Scorecard-Event-Id`.
//! - **At least once, in order**: a webhook's place in the log advances only
//!   after its event was answered 2xx (or dead-lettered), so later events wait
//!   behind a failing one. Receivers de-duplicate by event id.
//! - **Retried** with exponential backoff and full jitter until the retry
//!   window (24 h by default) has passed since the first attempt; then the
//!   event becomes a dead letter, visible through `ListDeliveries` and sent
//!   again by `RedeliverEvent`.
//! - **SSRF guard**: URLs are checked when registered and every connection is
//!   resolved through [`GuardedResolver`], which refuses private, loopback,
//!   link-local and other non-public addresses (unless allowed for tests and
//!   private deployments); redirects are not followed and proxies not used.
//! - **Replicas**: a lease on the webhook row makes one replica at a time
//!   deliver for a webhook.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::{Micros, now_micros};
use crate::error::Error;
use crate::store::{DeliveryAttempt, DeliveryState, EventRow, Store, WebhookRow};

/// How deliveries behave; from the serve flags.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Allow targets on private, loopback and link-local addresses, and plain
    /// `http` (tests, or a deployment whose receivers live on its own network).
    pub allow_private: bool,
    /// First retry delay; doubles with each failure up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// How long after the first attempt an event is retried before it becomes
    /// a dead letter.
    pub retry_window: Duration,
    /// Per attempt, connection and answer together.
    pub timeout: Duration,
    /// How often the dispatcher looks for work besides being woken by local
    /// commits (events written by other replicas).
    pub poll_interval: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_private: false,
            retry_base: Duration::from_secs(10),
            retry_max: Duration::from_secs(3_600),
            retry_window: Duration::from_secs(24 * 3_600),
            timeout: Duration::from_secs(10),
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// Events a webhook run delivers before it yields its lease to others.
const EVENTS_PER_RUN: usize = 200;
/// Webhooks delivered to concurrently by one replica.
const CONCURRENT_WEBHOOKS: usize = 16;
/// How long a lease lasts; renewed before each attempt.
const LEASE: Duration = Duration::from_secs(60);

/// Whether `ip` is a public unicast address a webhook may be sent to.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            // NAT64 well-known prefix 64:ff9b::/96 embeds an IPv4 address.
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return is_public_v4(Ipv4Addr::new(a, b, c, d));
            }
            !(v6.is_unspecified()
                || v6.is_loopback()
                || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 0x0001) // local-use NAT64 64:ff9b:1::/48 (RFC 8215)
                || s[0] == 0x2002 // 6to4 2002::/16: relays reach any IPv4 address, private ones too
                || (s[0] == 0x2001 && s[1] == 0x0000) // Teredo 2001::/32: tunnels to a private network
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard 100::/64
                || s[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible ::/96
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240) // reserved
}

/// A webhook URL as logs may show it: without its query string or fragment,
/// where receivers put tokens.
pub fn loggable_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            parsed.set_query(None);
            parsed.set_fragment(None);
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        Err(_) => "<invalid url>".into(),
    }
}

/// Checks a webhook URL when it is registered. Returns what is wrong with it.
pub async fn check_url(url: &str, allow_private: bool) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("is not a valid URL: {e}"))?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_private => {}
        "http" => return Err("must use https".into()),
        other => return Err(format!("scheme `{other}` is not allowed; use https")),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not carry credentials; sign-in is by the signature header".into());
    }
    if parsed.fragment().is_some() {
        return Err("must not have a fragment".into());
    }
    let host = parsed.host_str().ok_or("must have a host")?;
    if allow_private {
        return Ok(());
    }
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addrs = resolve_public(host.trim_start_matches('[').trim_end_matches(']'), port).await?;
    if addrs.is_empty() {
        return Err(format!("host `{host}` has no address"));
    }
    Ok(())
}

/// Resolves `host` and refuses it if any of its addresses is not public (an
/// attacker's DNS name may mix public and private answers).
async fn resolve_public(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("host `{host}` cannot be resolved: {e}"))?
            .collect(),
    };
    // Which address is not said: the answer would map the inside of the
    // network for whoever registers names that resolve into it.
    if addrs.iter().any(|a| !is_public(a.ip())) {
        return Err(format!(
            "host `{host}` resolves to a private, loopback or reserved address; webhooks go only to public \
             addresses unless SCORECARD_WEBHOOK_ALLOW_PRIVATE=true"
        ));
    }
    Ok(addrs)
}

/// The HTTP client's resolver: every connection's addresses pass the same
/// check as registration, so a DNS answer that changed since (rebinding)
/// cannot reach an internal host.
struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs = resolve_public(&host, 0).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &str, unix_seconds: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(unix_seconds.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={unix_seconds},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The JSON body of a delivery.
pub fn event_json(e: &EventRow) -> serde_json::Value {
    let payload: serde_json::Value = serde_json::from_str(&e.payload).unwrap_or(serde_json::Value::Null);
    serde_json::json!({
        "id": format!("events/{}", e.sequence),
        "sequence": e.sequence,
        "type": e.kind,
        "resource": e.resource,
        "time": crate::domain::time::rfc3339(e.created_at),
        "payload": payload,
    })
}

/// Delay before attempt `attempts + 1`: exponential, capped, with full jitter
/// (uniform in [delay/2, delay]) so that receivers coming back are not hit by
/// every sender at once.
fn backoff(settings: &WebhookSettings, attempts: i64, jitter: f64) -> Duration {
    let exp = attempts.clamp(1, 30) - 1;
    let delay = settings.retry_base.saturating_mul(1u32 << exp.min(20)).min(settings.retry_max);
    delay.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// Runs webhook deliveries until `shutdown` turns true.
pub struct Dispatcher {
    store: Store,
    settings: WebhookSettings,
    client: reqwest::Client,
    /// This replica's lease owner name.
    owner: String,
    running: Mutex<HashSet<(String, String)>>,
}

impl Dispatcher {
    pub fn new(store: Store, settings: WebhookSettings) -> Result<Arc<Self>, Error> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .user_agent(concat!("scorecard-webhooks/", env!("CARGO_PKG_VERSION")));
        if !settings.allow_private {
            builder = builder.dns_resolver(Arc::new(GuardedResolver));
        }
        let client = builder.build().map_err(|e| Error::Internal(format!("webhook HTTP client: {e}")))?;
        Ok(Arc::new(Self {
            store,
            settings,
            client,
            owner: crate::domain::new_id(),
            running: Mutex::new(HashSet::new()),
        }))
    }

    /// The dispatcher loop: wakes on local commits and every poll interval.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut commits = self.store.watch_events();
        let permits = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_WEBHOOKS));
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.store.webhooks_with_work(&self.owner, now_micros()).await {
                Ok(work) => {
                    for key in work {
                        if !self.running.lock().unwrap_or_else(|p| p.into_inner()).insert(key.clone()) {
                            continue;
                        }
                        let Ok(permit) = permits.clone().acquire_owned().await else { return };
                        let me = self.clone();
                        tokio::spawn(async move {
                            if let Err(e) = me.deliver_for(&key.0, &key.1).await {
                                tracing::warn!(org = %key.0, webhook = %key.1, error = %e, "webhook run failed");
                            }
                            me.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
                            drop(permit);
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot look for webhook work"),
            }
            tokio::select! {
                _ = shutdown.changed() => {}
                _ = commits.changed() => {}
                () = tokio::time::sleep(self.settings.poll_interval) => {}
            }
        }
    }

    /// One run for one webhook: queued redeliveries, then ordered events.
    async fn deliver_for(&self, org: &str, id: &str) -> Result<(), Error> {
        let now = now_micros();
        if !self.store.lease_webhook(org, id, &self.owner, now, now + micros_of(LEASE)).await? {
            return Ok(());
        }
        let result = self.deliver_leased(org, id).await;
        self.store.release_webhook(org, id, &self.owner).await?;
        result
    }

    async fn deliver_leased(&self, org: &str, id: &str) -> Result<(), Error> {
        let Some(hook) = self.store.get_webhook(org, id).await? else { return Ok(()) };
        for queued in self.store.due_redeliveries(org, id, now_micros()).await? {
            let Some(event) = self.event(org, queued.sequence).await? else { continue };
            let now = now_micros();
            let attempts = queued.attempts + 1;
            let (state, error) = match self.post(&hook, &event).await {
                Ok(()) => (DeliveryState::Delivered, String::new()),
                // A hand-queued delivery is tried once; if it fails it goes back
                // to the dead letters, to be queued again when the receiver is fixed.
                Err(e) => (DeliveryState::Dead, e),
            };
            let first = if queued.attempts == 0 { now } else { queued.first_attempt_at };
            self.store
                .record_delivery(&DeliveryAttempt {
                    org,
                    webhook: id,
                    sequence: queued.sequence,
                    state,
                    attempts,
                    first_attempt_at: first,
                    next_attempt_at: now,
                    last_error: &error,
                    advance_to: None,
                    now,
                })
                .await?;
        }

        let types = hook.event_types();
        let mut place = hook.delivered_sequence;
        for _ in 0..EVENTS_PER_RUN {
            let latest = self.store.latest_sequence(org).await?;
            let next = self.store.list_events(org, place, &types, 0).await?.into_iter().next();
            let Some(event) = next.filter(|e| e.sequence <= latest) else {
                // Nothing this webhook wants up to `latest`: skip past it.
                if latest > place {
                    self.store.advance_webhook(org, id, latest, now_micros()).await?;
                }
                return Ok(());
            };
            let prior = self.store.get_delivery(org, id, event.sequence).await?;
            let now = now_micros();
            if let Some(p) = &prior
                && p.state == DeliveryState::Retrying.as_str()
                && p.next_attempt_at > now
            {
                return Ok(()); // waiting for its next attempt; later events wait behind it
            }
            let now_lease = now_micros();
            if !self.store.lease_webhook(org, id, &self.owner, now_lease, now_lease + micros_of(LEASE)).await? {
                return Ok(());
            }
            let attempts = prior.as_ref().map_or(0, |p| p.attempts) + 1;
            let first = prior.as_ref().filter(|p| p.attempts > 0).map_or(now, |p| p.first_attempt_at);
            match self.post(&hook, &event).await {
                Ok(()) => {
                    let done = now_micros();
                    self.store
                        .record_delivery(&DeliveryAttempt {
                            org,
                            webhook: id,
                            sequence: event.sequence,
                            state: DeliveryState::Delivered,
                            attempts,
                            first_attempt_at: first,
                            next_attempt_at: done,
                            last_error: "",
                            advance_to: Some(event.sequence),
                            now: done,
                        })
                        .await?;
                    place = event.sequence;
                }
                Err(error) => {
                    let done = now_micros();
                    let window_over = done - first >= micros_of(self.settings.retry_window);
                    if window_over {
                        tracing::warn!(org, webhook = id, sequence = event.sequence, %error, "webhook event dead-lettered");
                        self.store
                            .record_delivery(&DeliveryAttempt {
                                org,
                                webhook: id,
                                sequence: event.sequence,
                                state: DeliveryState::Dead,
                                attempts,
                                first_attempt_at: first,
                                next_attempt_at: done,
                                last_error: &error,
                                advance_to: Some(event.sequence),
                                now: done,
                            })
                            .await?;
                        place = event.sequence;
                    } else {
                        let delay = backoff(&self.settings, attempts, rand::random::<f64>());
                        self.store
                            .record_delivery(&DeliveryAttempt {
                                org,
                                webhook: id,
                                sequence: event.sequence,
                                state: DeliveryState::Retrying,
                                attempts,
                                first_attempt_at: first,
                                next_attempt_at: done + micros_of(delay),
                                last_error: &error,
                                advance_to: None,
                                now: done,
                            })
                            .await?;
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }

    async fn event(&self, org: &str, sequence: i64) -> Result<Option<EventRow>, Error> {
        let found = self.store.list_events(org, sequence - 1, &[], 0).await?;
        Ok(found.into_iter().next().filter(|e| e.sequence == sequence))
    }

    /// One attempt. `Err` carries a short reason for the delivery record.
    async fn post(&self, hook: &WebhookRow, event: &EventRow) -> Result<(), String> {
        let url = reqwest::Url::parse(&hook.url).map_err(|e| format!("bad URL: {e}"))?;
        if !self.settings.allow_private {
            // IP literals never reach the resolver: check them here.
            if let Some(ip) = url.host_str().and_then(|h| h.trim_matches(['[', ']']).parse::<IpAddr>().ok())
                && !is_public(ip)
            {
                return Err(format!("{ip} is not a public address"));
            }
        }
        let body = serde_json::to_vec(&event_json(event)).map_err(|e| e.to_string())?;
        let t = now_micros().div_euclid(1_000_000);
        let response = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("scorecard-event-id", format!("events/{}", event.sequence))
            .header("scorecard-event-type", &event.kind)
            .header("scorecard-signature", signature(&hook.secret, t, &body))
            .body(body)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else if status.is_redirection() {
            Err(format!("answered {status}; redirects are not followed"))
        } else {
            Err(format!("answered {status}"))
        }
    }
}

/// A reqwest error with its causes, short.
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut text = kind.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text.chars().take(500).collect()
}

fn micros_of(d: Duration) -> Micros {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_and_private_addresses() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b:1::a00:1",
            "2002:a00:1::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:db8::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private} must not count as public");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(public.parse().unwrap()), "{public} is public");
        }
    }

    #[tokio::test]
    async fn a_private_answer_is_refused_without_naming_the_address() {
        let why = check_url("https://localhost/hook", false).await.expect_err("localhost is refused");
        assert!(why.contains("resolves to a private"), "{why}");
        assert!(!why.contains("127.0.0.1") && !why.contains("::1"), "the address is not told: {why}");
    }

    #[test]
    fn logged_urls_keep_no_query_or_credentials() {
        assert_eq!(
            loggable_url("https://user:pw@ats.example.com:8443/hooks/sc?token=s3cret#x"),
            "https://ats.example.com:8443/hooks/sc"
        );
        assert_eq!(loggable_url("not a url"), "<invalid url>");
    }

    #[test]
    fn signature_matches_an_independent_hmac() {
        // HMAC-SHA256 test case 2 of RFC 4231: key "Jefe", data
        // "what do ya want for nothing?"; here the data is "<t>.<body>".
        let sig = signature("Jefe", 0, b"what do ya want for nothing?");
        assert!(sig.starts_with("t=0,v1="));
        let direct = {
            let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
            mac.update(b"0.what do ya want for nothing?");
            hex::encode(mac.finalize().into_bytes())
        };
        assert_eq!(sig, format!("t=0,v1={direct}"));
        let mut rfc = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        rfc.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(rfc.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let s = WebhookSettings {
            retry_base: Duration::from_secs(10),
            retry_max: Duration::from_secs(3_600),
            ..WebhookSettings::default()
        };
        assert_eq!(backoff(&s, 1, 1.0), Duration::from_secs(10));
        assert_eq!(backoff(&s, 3, 1.0), Duration::from_secs(40));
        assert_eq!(backoff(&s, 3, 0.0), Duration::from_secs(20));
        assert_eq!(backoff(&s, 30, 1.0), Duration::from_secs(3_600));
        // Attempts over a day: the window, not the count, ends retries.
        let mut total = Duration::ZERO;
        let mut n = 0;
        while total < Duration::from_secs(24 * 3_600) {
            n += 1;
            total += backoff(&s, n, 0.0);
        }
        assert!(n > 20, "{n} attempts fit in a day at the slowest jitter");
    }

    #[tokio::test]
    async fn urls_are_checked_on_registration() {
        assert!(check_url("http://example.com/hook", false).await.unwrap_err().contains("https"));
        assert!(check_url("https://127.0.0.1/hook", false).await.unwrap_err().contains("private"));
        assert!(check_url("https://[::1]:8443/hook", false).await.unwrap_err().contains("private"));
        assert!(check_url("https://169.254.169.254/latest", false).await.is_err());
        assert!(check_url("https://localhost/hook", false).await.is_err());
        assert!(check_url("https://user:pw@8.8.8.8/hook", false).await.unwrap_err().contains("credentials"));
        assert!(check_url("ftp://8.8.8.8/", false).await.is_err());
        assert!(check_url("not a url", false).await.is_err());
        assert_eq!(check_url("https://8.8.8.8/hook", false).await, Ok(()));
        assert_eq!(check_url("http://127.0.0.1:9/hook", true).await, Ok(()));
    }
}
