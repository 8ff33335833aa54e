//! Token verification over real gRPC: tampering, expiry, algorithm confusion,
//! `alg: none`, key selection by `kid`, issuer and audience. Authentication does
//! not touch the database, so these run on SQLite only.

mod common;

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Db, SECRET, TestApp, req, token};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use scorecard::auth::{Claims, Verifier};
use scorecard::proto;
use tonic::Code;

fn keys(file: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keys").join(file)
}

fn claims(org: &str) -> Claims {
    let now = jsonwebtoken::get_current_timestamp();
    Claims {
        sub: "ana".into(),
        org: org.into(),
        roles: vec!["admin".into()],
        exp: now + 600,
        nbf: None,
        iat: Some(now),
        iss: None,
        aud: None,
    }
}

fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Claims) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(String::from);
    encode(&header, claims, key).expect("sign")
}

fn pem(file: &str) -> Vec<u8> {
    std::fs::read(keys(file)).expect("test key")
}

/// Asserts the token is accepted (`true`) or refused with UNAUTHENTICATED and
/// the one generic message (`false`).
async fn check(app: &TestApp, token: &str, accepted: bool, what: &str) {
    let result = app.rubrics().list_rubrics(req(token, proto::ListRubricsRequest::default())).await;
    match (result, accepted) {
        (Ok(_), true) => {}
        (Err(s), false) => {
            assert_eq!(s.code(), Code::Unauthenticated, "{what}: {s:?}");
            assert_eq!(s.message(), "missing or invalid credentials", "{what}: the reason is not disclosed");
        }
        (other, _) => panic!("{what}: expected accepted={accepted}, got {other:?}"),
    }
}

#[tokio::test]
async fn shared_secret_tokens() {
    let app = TestApp::start(Db::Sqlite).await;
    let good = token("ana", "acme", &["admin"]);
    check(&app, &good, true, "a good token").await;

    // Missing or malformed credentials.
    let anonymous = app.rubrics().list_rubrics(proto::ListRubricsRequest::default()).await;
    assert_eq!(anonymous.expect_err("no token").code(), Code::Unauthenticated);
    for header in ["Basic YWxhZGRpbjpvcGVuc2VzYW1l", "Bearer", "Bearer not.a.jwt", &good] {
        let mut r = tonic::Request::new(proto::ListRubricsRequest::default());
        r.metadata_mut().insert("authorization", header.parse().expect("header"));
        let result = app.rubrics().list_rubrics(r).await;
        assert_eq!(result.expect_err(header).code(), Code::Unauthenticated, "header {header}");
    }

    // Tampering: another org in the payload, same signature.
    let mut parts: Vec<String> = good.split('.').map(String::from).collect();
    let mut payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).expect("b64")).expect("json");
    payload["org"] = "other-org".into();
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).expect("json"));
    check(&app, &parts.join("."), false, "tampered payload").await;
    // A flipped signature byte.
    let mut sig = URL_SAFE_NO_PAD.decode(good.split('.').nth(2).expect("sig")).expect("b64");
    sig[0] ^= 1;
    let flipped = format!("{}.{}.{}", parts[0], good.split('.').nth(1).expect("payload"), URL_SAFE_NO_PAD.encode(sig));
    check(&app, &flipped, false, "flipped signature").await;

    // alg: none, unsigned.
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = good.split('.').nth(1).expect("payload");
    check(&app, &format!("{none_header}.{body}."), false, "alg none").await;

    let secret = EncodingKey::from_secret(SECRET.as_bytes());
    let mut expired = claims("acme");
    expired.exp = jsonwebtoken::get_current_timestamp() - 120;
    check(&app, &sign(Algorithm::HS256, None, &secret, &expired), false, "expired").await;
    let mut early = claims("acme");
    early.nbf = Some(jsonwebtoken::get_current_timestamp() + 3600);
    check(&app, &sign(Algorithm::HS256, None, &secret, &early), false, "not yet valid").await;
    let mut future = claims("acme");
    future.iat = Some(jsonwebtoken::get_current_timestamp() + 3600);
    check(&app, &sign(Algorithm::HS256, None, &secret, &future), false, "issued in the future").await;
    let mut unknown_role = claims("acme");
    unknown_role.roles = vec!["superuser".into()];
    check(&app, &sign(Algorithm::HS256, None, &secret, &unknown_role), false, "unknown role").await;
    let mut no_org = claims("");
    no_org.org = String::new();
    check(&app, &sign(Algorithm::HS256, None, &secret, &no_org), false, "no org").await;
    let mut huge = claims("acme");
    huge.sub = "x".repeat(10_000);
    check(&app, &sign(Algorithm::HS256, None, &secret, &huge), false, "oversized").await;
    // HS384 with the right secret is still refused: only HS256 is configured.
    check(&app, &sign(Algorithm::HS384, None, &secret, &claims("acme")), false, "HS384").await;
    // Another secret.
    let wrong = EncodingKey::from_secret(b"another-secret-of-sufficient-length-000");
    check(&app, &sign(Algorithm::HS256, None, &wrong, &claims("acme")), false, "wrong secret").await;
}

#[tokio::test]
async fn public_key_tokens_pin_their_algorithm() {
    let verifier = Verifier::new(None, Some(&keys("rsa_public.pem")), None, None).expect("verifier");
    let app = TestApp::start_with(Db::Sqlite, verifier).await;
    let rsa = EncodingKey::from_rsa_pem(&pem("rsa_private.pem")).expect("rsa key");
    check(&app, &sign(Algorithm::RS256, None, &rsa, &claims("acme")), true, "RS256").await;
    // Algorithm confusion: HS256 signed with the RSA public key as the secret.
    let confused = EncodingKey::from_secret(&pem("rsa_public.pem"));
    check(&app, &sign(Algorithm::HS256, None, &confused, &claims("acme")), false, "HS256 with the public key").await;
    // Any HS256 token: no secret is configured.
    let secret = EncodingKey::from_secret(SECRET.as_bytes());
    check(&app, &sign(Algorithm::HS256, None, &secret, &claims("acme")), false, "HS256 without a secret").await;
    // RS512 with the right key: the key accepts RS256 only.
    check(&app, &sign(Algorithm::RS512, None, &rsa, &claims("acme")), false, "RS512").await;
}

#[tokio::test]
async fn jwks_keys_are_chosen_by_kid() {
    let verifier = Verifier::new(None, Some(&keys("jwks.json")), None, None).expect("verifier");
    let app = TestApp::start_with(Db::Sqlite, verifier).await;
    let rsa = EncodingKey::from_rsa_pem(&pem("rsa_private.pem")).expect("rsa");
    let ec = EncodingKey::from_ec_pem(&pem("ec_private.pem")).expect("ec");
    let ed = EncodingKey::from_ed_pem(&pem("ed_private.pem")).expect("ed");
    check(&app, &sign(Algorithm::RS256, Some("rsa-1"), &rsa, &claims("acme")), true, "RS256 rsa-1").await;
    check(&app, &sign(Algorithm::ES256, Some("ec-1"), &ec, &claims("acme")), true, "ES256 ec-1").await;
    check(&app, &sign(Algorithm::EdDSA, Some("ed-1"), &ed, &claims("acme")), true, "EdDSA ed-1").await;
    check(&app, &sign(Algorithm::RS256, Some("ec-1"), &rsa, &claims("acme")), false, "RS256 under the EC kid").await;
    check(&app, &sign(Algorithm::ES256, Some("rsa-1"), &ec, &claims("acme")), false, "ES256 under the RSA kid").await;
    check(&app, &sign(Algorithm::RS256, Some("nope"), &rsa, &claims("acme")), false, "unknown kid").await;
    check(&app, &sign(Algorithm::RS256, None, &rsa, &claims("acme")), false, "no kid among several keys").await;
}

#[tokio::test]
async fn issuer_and_audience_are_enforced_when_configured() {
    let verifier = Verifier::new(Some(SECRET), None, Some("https://idp.example".into()), Some("scorecard".into()))
        .expect("verifier");
    let app = TestApp::start_with(Db::Sqlite, verifier).await;
    let secret = EncodingKey::from_secret(SECRET.as_bytes());
    let with = |iss: Option<&str>, aud: Option<&str>| {
        let mut c = claims("acme");
        c.iss = iss.map(String::from);
        c.aud = aud.map(String::from);
        sign(Algorithm::HS256, None, &secret, &c)
    };
    check(&app, &with(Some("https://idp.example"), Some("scorecard")), true, "right iss and aud").await;
    check(&app, &with(Some("https://idp.example"), Some("other")), false, "wrong aud").await;
    check(&app, &with(Some("https://idp.example"), None), false, "missing aud").await;
    check(&app, &with(Some("https://evil.example"), Some("scorecard")), false, "wrong iss").await;
    check(&app, &with(None, Some("scorecard")), false, "missing iss").await;
    // `aud` may be an array (RFC 7519 §4.1.3): accepted when it names us.
    let with_audiences = |audiences: &[&str]| {
        let mut c = serde_json::to_value(claims("acme")).expect("claims");
        c["iss"] = serde_json::json!("https://idp.example");
        c["aud"] = serde_json::json!(audiences);
        encode(&Header::new(Algorithm::HS256), &c, &secret).expect("sign")
    };
    check(&app, &with_audiences(&["billing", "scorecard"]), true, "an aud array naming us").await;
    check(&app, &with_audiences(&["billing"]), false, "an aud array without us").await;
}

/// A JWKS file holding only the keys of `jwks.json` whose `kid` is listed.
fn jwks_with(kids: &[&str]) -> String {
    let all: serde_json::Value =
        serde_json::from_slice(&std::fs::read(keys("jwks.json")).expect("jwks")).expect("json");
    let keys: Vec<serde_json::Value> = all["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter(|k| kids.contains(&k["kid"].as_str().unwrap_or_default()))
        .cloned()
        .collect();
    serde_json::json!({ "keys": keys }).to_string()
}

/// Tokens for acme signed under the `rsa-1` and `ec-1` keys of `jwks.json`.
fn rsa_and_ec_tokens() -> (String, String) {
    let rsa = sign(
        Algorithm::RS256,
        Some("rsa-1"),
        &EncodingKey::from_rsa_pem(&pem("rsa_private.pem")).unwrap(),
        &claims("acme"),
    );
    let ec = sign(
        Algorithm::ES256,
        Some("ec-1"),
        &EncodingKey::from_ec_pem(&pem("ec_private.pem")).unwrap(),
        &claims("acme"),
    );
    (rsa, ec)
}

/// Writes atomically (a rename), as a key-distribution tool would.
fn install(path: &Path, content: &str) {
    let staging = path.with_extension("new");
    std::fs::write(&staging, content).expect("write keys");
    std::fs::rename(&staging, path).expect("install keys");
}

async fn eventually(app: &TestApp, token: &str, accepted: bool, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let ok = app.rubrics().list_rubrics(req(token, proto::ListRubricsRequest::default())).await.is_ok();
        if ok == accepted {
            return check(app, token, accepted, what).await;
        }
        assert!(std::time::Instant::now() < deadline, "{what}: still accepted={ok}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn keys_rotate_through_the_jwks_file_without_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("jwks.json");
    install(&file, &jwks_with(&["rsa-1"]));
    let verifier = Verifier::new(None, Some(&file), None, None).expect("verifier");
    let app = TestApp::start_with(Db::Sqlite, verifier).await;
    let (rsa, ec) = rsa_and_ec_tokens();
    check(&app, &rsa, true, "the first key").await;
    check(&app, &ec, false, "a key not yet published").await;

    // Rotation, step 1: publish the new key beside the old one.
    install(&file, &jwks_with(&["rsa-1", "ec-1"]));
    eventually(&app, &ec, true, "the new key once published").await;
    check(&app, &rsa, true, "the old key during the overlap").await;

    // A broken file (half-written by a careless tool) changes nothing.
    let failures = scorecard::metrics::global().key_reload_failures();
    std::fs::write(&file, "{\"keys\": [").expect("break the file");
    // Wait until the server has looked at the broken file (and refused it).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while scorecard::metrics::global().key_reload_failures() == failures {
        assert!(std::time::Instant::now() < deadline, "the broken key file was never looked at");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    check(&app, &rsa, true, "old key kept when the file is broken").await;
    check(&app, &ec, true, "new key kept when the file is broken").await;

    // Step 2: retire the old key.
    install(&file, &jwks_with(&["ec-1"]));
    eventually(&app, &rsa, false, "the retired key").await;
    check(&app, &ec, true, "the new key after retirement").await;
}

/// A local identity provider: serves a JWKS it can rotate, with the
/// Cache-Control it is told to send, counts the fetches, and can go down.
#[derive(Clone)]
struct Provider {
    jwks: std::sync::Arc<std::sync::Mutex<String>>,
    cache_control: std::sync::Arc<std::sync::Mutex<&'static str>>,
    fetches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    attempts: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Provider {
    async fn start(jwks: String, cache_control: &'static str) -> (Provider, String) {
        use axum::response::IntoResponse;
        let provider = Provider {
            jwks: std::sync::Arc::new(std::sync::Mutex::new(jwks)),
            cache_control: std::sync::Arc::new(std::sync::Mutex::new(cache_control)),
            fetches: Default::default(),
            attempts: Default::default(),
            down: Default::default(),
        };
        let state = provider.clone();
        let app = axum::Router::new().route(
            "/.well-known/jwks.json",
            axum::routing::get(move || {
                let p = state.clone();
                async move {
                    use std::sync::atomic::Ordering::SeqCst;
                    p.attempts.fetch_add(1, SeqCst);
                    if p.down.load(SeqCst) {
                        return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
                    }
                    p.fetches.fetch_add(1, SeqCst);
                    let cache = *p.cache_control.lock().unwrap();
                    let body = p.jwks.lock().unwrap().clone();
                    ([("content-type", "application/json"), ("cache-control", cache)], body).into_response()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/.well-known/jwks.json", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await.expect("provider") });
        (provider, url)
    }

    fn fetches(&self) -> usize {
        self.fetches.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn attempts(&self) -> usize {
        self.attempts.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[tokio::test]
async fn keys_follow_an_identity_providers_jwks_url() {
    use std::time::{Duration, Instant};
    let (provider, url) = Provider::start(jwks_with(&["rsa-1"]), "public, max-age=3600").await;
    let min_refresh = Duration::from_secs(2);
    let verifier = Verifier::with_jwks_url(None, &url, None, None, min_refresh).await.expect("verifier");
    assert_eq!(provider.fetches(), 1, "fetched at start");
    let app = TestApp::start_with(Db::Sqlite, verifier).await;
    let (rsa, ec) = rsa_and_ec_tokens();
    check(&app, &rsa, true, "the published key").await;
    assert_eq!(provider.fetches(), 1, "a known key needs no fetch; max-age=3600 means no periodic one");

    // A token under an unknown kid fetches again: the key is not there yet.
    let asked = Instant::now();
    check(&app, &ec, false, "a key not yet published").await;
    assert_eq!(provider.fetches(), 2, "an unknown kid fetches the JWKS again");

    // The provider rotates: the new key in, the old one out. Within
    // min_refresh of the last such fetch, unknown kids cause none.
    *provider.jwks.lock().unwrap() = jwks_with(&["ec-1"]);
    *provider.cache_control.lock().unwrap() = "max-age=1";
    check(&app, &ec, false, "rate limited: no second fetch within min_refresh").await;
    assert!(asked.elapsed() < min_refresh, "the machine was too slow for this check to mean anything");
    assert_eq!(provider.fetches(), 2);
    tokio::time::sleep(min_refresh.saturating_sub(asked.elapsed()) + Duration::from_millis(100)).await;
    check(&app, &ec, true, "the new key, at its first token after the window").await;
    assert_eq!(provider.fetches(), 3);
    check(&app, &rsa, false, "the retired key").await;

    // Cache-Control: max-age=1 (held to min_refresh) brings periodic fetches.
    let deadline = Instant::now() + Duration::from_secs(10);
    while provider.fetches() < 4 {
        assert!(Instant::now() < deadline, "the JWKS was not fetched again when its lifetime ran out");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The provider goes down: the keys held stay.
    provider.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let attempts = provider.attempts();
    let deadline = Instant::now() + Duration::from_secs(10);
    while provider.attempts() == attempts {
        assert!(Instant::now() < deadline, "no fetch was tried while the provider was down");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check(&app, &ec, true, "stale keys kept while the provider is unreachable").await;

    // A provider unreachable at start is an error that names it.
    let err = Verifier::with_jwks_url(None, &url, None, None, min_refresh).await.expect_err("down");
    assert!(err.to_string().contains(&url) && err.to_string().contains("503"), "{err}");
}
