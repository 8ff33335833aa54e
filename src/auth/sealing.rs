//! Sealing special-category data at rest (self-identification): ChaCha20-
//! Poly1305 (RustCrypto) under an operator's 32-byte key, a fresh random nonce
//! per value, and the row it belongs to as associated data, so a sealed value
//! copied to another candidate's row does not open. Values sealed under an
//! older key stay readable while that key is listed among the old ones.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use sha2::Digest;

const NONCE_BYTES: usize = 12;

/// One key and its id (the first 8 bytes of its SHA-256, in hex: names the
/// key in each row without revealing it).
struct SealingKey {
    id: String,
    cipher: ChaCha20Poly1305,
}

/// The current key and the older ones still accepted for opening.
pub struct SealingKeys {
    current: SealingKey,
    old: Vec<SealingKey>,
}

impl std::fmt::Debug for SealingKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let old: Vec<&str> = self.old.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("SealingKeys").field("current", &self.current.id).field("old", &old).finish()
    }
}

fn key(base64_key: &str, what: &str) -> Result<SealingKey, String> {
    let bytes = STANDARD
        .decode(base64_key.trim())
        .map_err(|_| format!("{what} is not base64 (generate one with `openssl rand -base64 32`)"))?;
    if bytes.len() != 32 {
        return Err(format!("{what} must be 32 bytes once decoded, not {}", bytes.len()));
    }
    let id = hex::encode(&sha2::Sha256::digest(&bytes)[..8]);
    let cipher = ChaCha20Poly1305::new_from_slice(&bytes).map_err(|_| format!("{what} must be 32 bytes"))?;
    Ok(SealingKey { id, cipher })
}

impl SealingKeys {
    /// The current key (base64 of 32 bytes) and older ones (comma-separated).
    pub fn new(current: &str, old: &str) -> Result<Self, String> {
        let current = key(current, "SCORECARD_SELF_ID_KEY")?;
        let old = old
            .split(',')
            .filter(|k| !k.trim().is_empty())
            .map(|k| key(k, "a key of SCORECARD_SELF_ID_OLD_KEYS"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SealingKeys { current, old })
    }

    /// The id of the key new values are sealed under.
    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    /// Seals `plain` for the row named by `context`: base64 of nonce and ciphertext.
    pub fn seal(&self, plain: &[u8], context: &str) -> String {
        let nonce: [u8; NONCE_BYTES] = rand::random();
        let sealed = self
            .current
            .cipher
            .encrypt(&Nonce::from(nonce), Payload { msg: plain, aad: context.as_bytes() })
            .expect("ChaCha20-Poly1305 encryption of a short message cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        STANDARD.encode(out)
    }

    /// Opens a value sealed under key `key_id` for `context`; `None` when the
    /// key is not configured or the value does not open (tampered, or moved).
    pub fn open(&self, key_id: &str, sealed: &str, context: &str) -> Option<Vec<u8>> {
        let key = std::iter::once(&self.current).chain(&self.old).find(|k| k.id == key_id)?;
        let bytes = STANDARD.decode(sealed).ok()?;
        if bytes.len() < NONCE_BYTES {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().ok()?;
        key.cipher.decrypt(&Nonce::from(nonce), Payload { msg: ciphertext, aad: context.as_bytes() }).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_key() -> String {
        STANDARD.encode(rand::random::<[u8; 32]>())
    }

    #[test]
    fn values_open_under_their_key_and_context_only() {
        let (a, b) = (random_key(), random_key());
        let keys = SealingKeys::new(&a, "").expect("keys");
        let sealed = keys.seal(b"\x01\x05", "org/c1");
        assert_ne!(keys.seal(b"\x01\x05", "org/c1"), sealed, "a fresh nonce each time");
        assert_eq!(keys.open(keys.current_id(), &sealed, "org/c1").as_deref(), Some(&b"\x01\x05"[..]));
        assert_eq!(keys.open(keys.current_id(), &sealed, "org/c2"), None, "moved to another row");
        let mut tampered = STANDARD.decode(&sealed).expect("b64");
        *tampered.last_mut().expect("byte") ^= 1;
        assert_eq!(keys.open(keys.current_id(), &STANDARD.encode(tampered), "org/c1"), None);

        // After rotation: the old key still opens what it sealed.
        let rotated = SealingKeys::new(&b, &format!("{a}, ")).expect("rotated");
        assert_ne!(rotated.current_id(), keys.current_id());
        assert_eq!(rotated.open(keys.current_id(), &sealed, "org/c1").as_deref(), Some(&b"\x01\x05"[..]));
        let without = SealingKeys::new(&b, "").expect("new key only");
        assert_eq!(without.open(keys.current_id(), &sealed, "org/c1"), None);
    }

    #[test]
    fn malformed_keys_are_refused_with_a_reason() {
        assert!(SealingKeys::new("not base64!", "").unwrap_err().contains("base64"));
        assert!(SealingKeys::new(&STANDARD.encode([0u8; 16]), "").unwrap_err().contains("32 bytes"));
        assert!(SealingKeys::new(&random_key(), "short").is_err());
    }
}
