//! Token verification keys and rules.
//!
//! An HS256 shared secret (`SCORECARD_JWT_SECRET`) and/or public keys
//! (`SCORECARD_JWT_PUBLIC_KEYS`: one PEM key, or a JWKS with `kid`s). Each key
//! accepts exactly one algorithm, fixed by its type (RSA → RS256, P-256 → ES256,
//! Ed25519 → EdDSA, secret → HS256), so a token cannot choose how it is checked:
//! an HS256 token is refused when no secret is configured, whatever key it was
//! signed with, and `alg: none` is never accepted. Public keys may instead come
//! from an identity provider's JWKS URL (`SCORECARD_JWT_JWKS_URL`, `jwks.rs`).

use std::collections::BTreeSet;
use std::path::Path;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode};
use serde::{Deserialize, Serialize};

use super::Caller;
use crate::domain::Role;

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECONDS: u64 = 30;
/// Shortest HS256 secret accepted (RFC 7518 §3.2: at least the hash size).
pub const MIN_SECRET_BYTES: usize = 32;

/// The claims scorecard reads. `iss`/`aud` are checked by the validator when
/// configured; the validator reads `aud` from the token itself, a string or
/// an array of strings (RFC 7519 §4.1.3), so it is only written here.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub org: String,
    pub roles: Vec<String>,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Written when minting a token; not read back when verifying one.
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no token verification key configured: set SCORECARD_JWT_SECRET or SCORECARD_JWT_PUBLIC_KEYS")]
    NoKeys,
    #[error("SCORECARD_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes")]
    WeakSecret,
    #[error("cannot read public keys from {path}: {cause}")]
    Read { path: String, cause: String },
    #[error("public key file {path}: {cause}")]
    Parse { path: String, cause: String },
    #[error("JWKS {url}: {cause}")]
    Jwks { url: String, cause: String },
    #[error("SCORECARD_JWT_PUBLIC_KEYS and SCORECARD_JWT_JWKS_URL are two sources of the same keys: set one")]
    TwoKeySources,
    #[error("cannot sign the token: {0}")]
    Sign(String),
}

pub(super) struct PublicKey {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

/// Checks bearer tokens against the configured keys and rules.
pub struct Verifier {
    secret: Option<DecodingKey>,
    /// Swapped whole when the key file changes (rotation without restart).
    public: std::sync::RwLock<std::sync::Arc<Vec<PublicKey>>>,
    /// The PEM or JWKS file and the modification time of what was loaded.
    public_file: Option<(std::path::PathBuf, std::sync::Mutex<Option<std::time::SystemTime>>)>,
    /// The identity provider's JWKS URL, when the public keys come from there.
    remote: Option<super::jwks::RemoteJwks>,
    issuer: Option<String>,
    audience: Option<String>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("public_keys", &self.public_keys().len())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

impl Verifier {
    pub fn new(
        secret: Option<&str>,
        public_keys: Option<&Path>,
        issuer: Option<String>,
        audience: Option<String>,
    ) -> Result<Self, KeyError> {
        let secret = match secret {
            Some(s) if s.len() < MIN_SECRET_BYTES => return Err(KeyError::WeakSecret),
            Some(s) => Some(DecodingKey::from_secret(s.as_bytes())),
            None => None,
        };
        let public = match public_keys {
            Some(path) => load_public_keys(path)?,
            None => Vec::new(),
        };
        if secret.is_none() && public.is_empty() {
            return Err(KeyError::NoKeys);
        }
        let public_file = public_keys.map(|p| (p.to_path_buf(), std::sync::Mutex::new(modified(p))));
        Ok(Self {
            secret,
            public: std::sync::RwLock::new(std::sync::Arc::new(public)),
            public_file,
            remote: None,
            issuer,
            audience,
        })
    }

    /// A verifier whose public keys come from an identity provider's JWKS
    /// URL, fetched now (three tries, a second or two apart: a provider that
    /// cannot be reached at start is a configuration to fix, not one to start
    /// without). `min_refresh` is the least time between fetches that tokens
    /// with an unknown key id cause.
    pub async fn with_jwks_url(
        secret: Option<&str>,
        url: &str,
        issuer: Option<String>,
        audience: Option<String>,
        min_refresh: std::time::Duration,
    ) -> Result<Self, KeyError> {
        let secret = match secret {
            Some(s) if s.len() < MIN_SECRET_BYTES => return Err(KeyError::WeakSecret),
            Some(s) => Some(DecodingKey::from_secret(s.as_bytes())),
            None => None,
        };
        let remote = super::jwks::RemoteJwks::new(url, min_refresh)?;
        let mut tries = 0;
        let keys = loop {
            match remote.fetch().await {
                Ok(keys) => break keys,
                Err(e) if tries == 2 => return Err(e),
                Err(e) => {
                    tries += 1;
                    tracing::warn!(error = %e, "JWKS fetch failed; trying again");
                    tokio::time::sleep(std::time::Duration::from_millis(500 * (1 << tries))).await;
                }
            }
        };
        Ok(Self {
            secret,
            public: std::sync::RwLock::new(std::sync::Arc::new(keys)),
            public_file: None,
            remote: Some(remote),
            issuer,
            audience,
        })
    }

    /// The JWKS URL keys come from, if any.
    pub fn jwks_url(&self) -> Option<&str> {
        self.remote.as_ref().map(|r| r.url())
    }

    /// Time until the JWKS is due to be fetched again (`None`: no JWKS URL).
    pub fn jwks_due_in(&self) -> Option<std::time::Duration> {
        self.remote.as_ref().map(|r| r.due_in())
    }

    /// Fetches the JWKS again and takes its keys; when the provider cannot be
    /// reached or answers nonsense, the current keys stay. Returns whether
    /// keys were taken (`Ok(false)`: no JWKS URL).
    pub async fn refresh_jwks(&self) -> Result<bool, KeyError> {
        let Some(remote) = &self.remote else { return Ok(false) };
        let keys = remote.fetch().await?;
        *self.public.write().unwrap_or_else(|p| p.into_inner()) = std::sync::Arc::new(keys);
        Ok(true)
    }

    /// [`Verifier::verify`]; when the token names a key id the JWKS did not
    /// have, the JWKS is fetched again first (rate limited) and the token
    /// checked against the new keys: a provider that starts signing with a
    /// new key is followed at its first token.
    pub async fn verify_or_refresh(&self, token: &str) -> Option<Caller> {
        if let Some(caller) = self.verify(token) {
            return Some(caller);
        }
        let remote = self.remote.as_ref()?;
        let kid = decode_header(token).ok()?.kid?;
        if self.public_keys().iter().any(|k| k.kid.as_deref() == Some(kid.as_str()))
            || !remote.claim_unknown_kid_fetch()
        {
            return None;
        }
        match self.refresh_jwks().await {
            Ok(_) => tracing::info!("JWKS fetched again for a token with a new key id"),
            Err(e) => tracing::warn!(error = %e, "JWKS fetch for a new key id failed; keeping the current keys"),
        }
        self.verify(token)
    }

    /// How many public keys are loaded (for `scorecard doctor`).
    pub fn public_key_count(&self) -> usize {
        self.public_keys().len()
    }

    fn public_keys(&self) -> std::sync::Arc<Vec<PublicKey>> {
        self.public.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reloads the public key file if it changed since it was loaded: keys can
    /// be rotated (a new `kid` added, an old one removed) without a restart. A
    /// file that does not load (half-written, invalid, empty with no secret)
    /// leaves the current keys in place and is retried at the next call.
    /// Returns whether new keys were taken.
    pub fn reload_if_changed(&self) -> Result<bool, KeyError> {
        let Some((path, loaded)) = &self.public_file else { return Ok(false) };
        let now = modified(path);
        let mut loaded = loaded.lock().unwrap_or_else(|p| p.into_inner());
        if now == *loaded {
            return Ok(false);
        }
        let keys = load_public_keys(path)?;
        if keys.is_empty() && self.secret.is_none() {
            return Err(KeyError::NoKeys);
        }
        *self.public.write().unwrap_or_else(|p| p.into_inner()) = std::sync::Arc::new(keys);
        *loaded = now;
        Ok(true)
    }

    /// The caller a token proves, or `None`. Why a token was refused is logged at
    /// debug level and never told to the client.
    pub fn verify(&self, token: &str) -> Option<Caller> {
        self.verify_with_expiry(token).map(|(caller, _)| caller)
    }

    /// [`Verifier::verify`], with the token's expiry (`exp`, seconds since the epoch).
    pub fn verify_with_expiry(&self, token: &str) -> Option<(Caller, u64)> {
        match self.try_verify(token) {
            Ok(verified) => Some(verified),
            Err(why) => {
                tracing::debug!(why, "token refused");
                None
            }
        }
    }

    fn try_verify(&self, token: &str) -> Result<(Caller, u64), &'static str> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err("token too large");
        }
        let header = decode_header(token).map_err(|_| "malformed header")?;
        let public = self.public_keys();
        let (algorithm, key) = if header.alg == Algorithm::HS256 {
            (Algorithm::HS256, self.secret.as_ref().ok_or("HS256 token but no secret configured")?)
        } else {
            let key = match &header.kid {
                Some(kid) => public.iter().find(|k| k.kid.as_deref() == Some(kid.as_str())),
                None if public.len() == 1 => public.first(),
                None => None,
            }
            .ok_or("no key for this token")?;
            if key.algorithm != header.alg {
                return Err("algorithm does not match the key");
            }
            (key.algorithm, &key.key)
        };

        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        match &self.issuer {
            Some(iss) => {
                validation.set_issuer(&[iss]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        match &self.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);

        let claims = decode::<Claims>(token, key, &validation).map_err(|_| "signature or claims invalid")?.claims;
        if let Some(iat) = claims.iat
            && iat > jsonwebtoken::get_current_timestamp() + LEEWAY_SECONDS
        {
            return Err("issued in the future");
        }
        if claims.sub.trim().is_empty() || claims.sub.len() > 200 {
            return Err("bad sub");
        }
        if claims.org.trim().is_empty() || claims.org.len() > 200 {
            return Err("bad org");
        }
        let mut roles = BTreeSet::new();
        for word in &claims.roles {
            roles.insert(Role::parse(word).ok_or("unknown role")?);
        }
        if roles.is_empty() {
            return Err("no roles");
        }
        Ok((Caller { user: claims.sub, org: claims.org, roles }, claims.exp))
    }
}

/// The file's modification time (with its length folded in, for file systems
/// with coarse timestamps), if it can be read.
fn modified(path: &Path) -> Option<std::time::SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    Some(meta.modified().ok()? + std::time::Duration::from_nanos(meta.len()))
}

fn load_public_keys(path: &Path) -> Result<Vec<PublicKey>, KeyError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| KeyError::Read { path: shown.clone(), cause: e.to_string() })?;
    let parse_error = |cause: String| KeyError::Parse { path: shown.clone(), cause };
    if bytes.trim_ascii_start().starts_with(b"{") {
        parse_jwks(&bytes, &shown, true)
    } else {
        let (algorithm, key) = if let Ok(k) = DecodingKey::from_rsa_pem(&bytes) {
            (Algorithm::RS256, k)
        } else if let Ok(k) = DecodingKey::from_ec_pem(&bytes) {
            (Algorithm::ES256, k)
        } else if let Ok(k) = DecodingKey::from_ed_pem(&bytes) {
            (Algorithm::EdDSA, k)
        } else {
            return Err(parse_error("not a PEM RSA, EC (P-256) or Ed25519 public key, nor a JWKS".into()));
        };
        Ok(vec![PublicKey { kid: None, algorithm, key }])
    }
}

/// The keys of a JWKS document (`source` names it in errors). A file an
/// operator wrote is `strict`: a key scorecard cannot use is an error. An
/// identity provider's published set is not: providers list encryption keys
/// and other algorithms beside their signing keys, and those are skipped.
pub(super) fn parse_jwks(bytes: &[u8], source: &str, strict: bool) -> Result<Vec<PublicKey>, KeyError> {
    use jsonwebtoken::jwk::PublicKeyUse;
    let parse_error = |cause: String| KeyError::Parse { path: source.to_string(), cause };
    let set: JwkSet = serde_json::from_slice(bytes).map_err(|e| parse_error(format!("not a JWKS: {e}")))?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        if !strict && matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let algorithm = match (&jwk.algorithm, &jwk.common.key_algorithm) {
            (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
            (AlgorithmParameters::EllipticCurve(p), None | Some(KeyAlgorithm::ES256))
                if p.curve == EllipticCurve::P256 =>
            {
                Algorithm::ES256
            }
            (AlgorithmParameters::OctetKeyPair(p), None | Some(KeyAlgorithm::EdDSA))
                if p.curve == EllipticCurve::Ed25519 =>
            {
                Algorithm::EdDSA
            }
            _ if !strict => {
                tracing::debug!(kid = ?jwk.common.key_id, "JWKS key skipped: not RS256, ES256 or EdDSA");
                continue;
            }
            _ => {
                return Err(parse_error(format!(
                    "key {:?}: only RSA (RS256), P-256 (ES256) and Ed25519 (EdDSA) public keys are accepted",
                    jwk.common.key_id
                )));
            }
        };
        match DecodingKey::from_jwk(jwk) {
            Ok(key) => keys.push(PublicKey { kid: jwk.common.key_id.clone(), algorithm, key }),
            Err(e) if strict => return Err(parse_error(e.to_string())),
            Err(e) => tracing::debug!(kid = ?jwk.common.key_id, error = %e, "JWKS key skipped"),
        }
    }
    if keys.is_empty() {
        return Err(parse_error("the JWKS has no RS256, ES256 or EdDSA signing keys".into()));
    }
    Ok(keys)
}

/// Signs an HS256 token, for `scorecard token` and tests.
pub fn mint_token(secret: &str, claims: &Claims) -> Result<String, KeyError> {
    encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret.as_bytes()))
        .map_err(|e| KeyError::Sign(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a-test-secret-that-is-long-enough-0123456789";

    fn claims(roles: &[&str]) -> Claims {
        Claims {
            sub: "ana".into(),
            org: "acme".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            exp: jsonwebtoken::get_current_timestamp() + 600,
            nbf: None,
            iat: None,
            iss: None,
            aud: None,
        }
    }

    fn verifier() -> Verifier {
        Verifier::new(Some(SECRET), None, None, None).expect("valid config")
    }

    #[test]
    fn accepts_a_good_token() {
        let token = mint_token(SECRET, &claims(&["admin", "recruiter"])).expect("sign");
        let caller = verifier().verify(&token).expect("accepted");
        assert_eq!(caller.org, "acme");
        assert!(caller.has(Role::Admin) && caller.has(Role::Recruiter) && !caller.has(Role::Interviewer));
    }

    #[test]
    fn refuses_unknown_roles_empty_roles_and_expired_tokens() {
        let v = verifier();
        assert!(v.verify(&mint_token(SECRET, &claims(&["admin", "root"])).expect("sign")).is_none());
        assert!(v.verify(&mint_token(SECRET, &claims(&[])).expect("sign")).is_none());
        let mut old = claims(&["admin"]);
        old.exp = jsonwebtoken::get_current_timestamp() - LEEWAY_SECONDS - 5;
        assert!(v.verify(&mint_token(SECRET, &old).expect("sign")).is_none());
        let mut early = claims(&["admin"]);
        early.nbf = Some(jsonwebtoken::get_current_timestamp() + 3600);
        assert!(v.verify(&mint_token(SECRET, &early).expect("sign")).is_none());
    }

    #[test]
    fn refuses_a_weak_secret_and_no_keys() {
        assert!(matches!(Verifier::new(Some("short"), None, None, None), Err(KeyError::WeakSecret)));
        assert!(matches!(Verifier::new(None, None, None, None), Err(KeyError::NoKeys)));
    }

    #[test]
    fn refuses_oversized_tokens() {
        let mut c = claims(&["admin"]);
        c.sub = "x".repeat(MAX_TOKEN_BYTES);
        assert!(verifier().verify(&mint_token(SECRET, &c).expect("sign")).is_none());
    }
}
