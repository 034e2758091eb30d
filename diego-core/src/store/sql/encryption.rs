//! Encryption at rest for the SQL stores: AES-256-GCM over each row's payload, with the
//! key's label stored beside it. See [`KeyRing`].

use std::collections::HashMap;
use std::fmt;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::models::validation::ValidationErrors;

const NONCE_LEN: usize = 12;

/// One labelled AES-256 key. Its `Debug` output shows the label only.
#[derive(Clone)]
pub struct EncryptionKey {
    label: String,
    key: [u8; 32],
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptionKey")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl EncryptionKey {
    /// A key from 32 raw bytes.
    pub fn new(label: impl Into<String>, key: [u8; 32]) -> Self {
        EncryptionKey {
            label: label.into(),
            key,
        }
    }

    /// A key from standard base64 (with padding) of exactly 32 bytes; anything else is
    /// `InvalidRequest` naming the key's label.
    pub fn from_base64(label: impl Into<String>, encoded: &str) -> Result<Self> {
        let label = label.into();
        let field = format!("encryption_keys[{label}]");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|e| invalid(&field, format!("is not valid base64: {e}")))?;
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            invalid(
                &field,
                format!("must decode to 32 bytes, got {}", bytes.len()),
            )
        })?;
        Ok(EncryptionKey { label, key })
    }

    /// A key derived from a passphrase: SHA-256 of its UTF-8 bytes (no salt, no
    /// stretching — the passphrase itself must be long and random).
    pub fn from_passphrase(label: impl Into<String>, passphrase: &str) -> Self {
        EncryptionKey {
            label: label.into(),
            key: Sha256::digest(passphrase.as_bytes()).into(),
        }
    }

    /// The key's label.
    pub fn label(&self) -> &str {
        &self.label
    }
}

/// The keys a SQL store encrypts and decrypts payloads with (AES-256-GCM).
///
/// A `KeyRing` holds several labelled 32-byte keys and names one of them *active*:
/// writes encrypt under the active key; reads decrypt with the key named by the row's
/// label, so rows written under an older key stay readable while it is configured. The
/// stores' `rotate()` re-encrypts every row that is not under the active key, after which
/// the old key can be removed. Without keys ([`KeyRing::plaintext`]) payloads are stored
/// in the clear with an empty label.
///
/// Stored form of an encrypted payload: a fresh random 96-bit nonce followed by the
/// ciphertext and its 128-bit tag. Keys come as 32 raw bytes, as standard base64 of 32
/// bytes ([`EncryptionKey::from_base64`]), or from a passphrase
/// ([`EncryptionKey::from_passphrase`]: the key is SHA-256 of the passphrase's UTF-8
/// bytes, with no salt or stretching — so use a long random passphrase).
///
/// ```
/// use diego_core::store::sql::{EncryptionKey, KeyRing};
/// let ring = KeyRing::new(
///     vec![
///         EncryptionKey::from_passphrase("2026-01", "a long random passphrase"),
///         EncryptionKey::from_base64("2026-02", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap(),
///     ],
///     "2026-02",
/// )
/// .unwrap();
/// let (label, sealed) = ring.encrypt(b"secret").unwrap();
/// assert_eq!(label, "2026-02");
/// assert_eq!(ring.decrypt(&label, &sealed).unwrap(), b"secret");
/// ```
#[derive(Clone, Default)]
pub struct KeyRing {
    ciphers: HashMap<String, Aes256Gcm>,
    active: Option<(String, Aes256Gcm)>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut labels: Vec<&String> = self.ciphers.keys().collect();
        labels.sort();
        f.debug_struct("KeyRing")
            .field("labels", &labels)
            .field("active", &self.active_label())
            .finish()
    }
}

fn invalid(field: &str, reason: impl Into<String>) -> Error {
    let mut v = ValidationErrors::new();
    v.add(field, reason);
    v.into()
}

impl KeyRing {
    /// No keys: payloads are written in the clear (label `""`), and encrypted rows
    /// cannot be read.
    pub fn plaintext() -> Self {
        Self::default()
    }

    /// A ring of `keys` writing under the key labelled `active`.
    ///
    /// Errors (`InvalidRequest`, naming the field): no keys, an empty or repeated label,
    /// or an `active` label that is not among the keys.
    pub fn new(keys: Vec<EncryptionKey>, active: &str) -> Result<Self> {
        let mut errors = ValidationErrors::new();
        if keys.is_empty() {
            errors.add("encryption_keys", "must not be empty when encryption is on");
        }
        let mut ciphers = HashMap::with_capacity(keys.len());
        for k in keys {
            if k.label.is_empty() {
                errors.add("encryption_keys", "a key has an empty label");
                continue;
            }
            let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&k.key));
            if ciphers.insert(k.label.clone(), cipher).is_some() {
                errors.add(
                    format!("encryption_keys[{}]", k.label),
                    "label is used by more than one key",
                );
            }
        }
        let active_cipher = ciphers.get(active).cloned();
        if active_cipher.is_none() && !ciphers.is_empty() {
            errors.add(
                "active_key_label",
                format!("{active:?} is not the label of a configured key"),
            );
        }
        errors.into_result()?;
        Ok(KeyRing {
            active: active_cipher.map(|c| (active.to_owned(), c)),
            ciphers,
        })
    }

    /// The label new rows are written under (`""` without encryption).
    pub fn active_label(&self) -> &str {
        self.active.as_ref().map_or("", |(l, _)| l.as_str())
    }

    /// Whether payloads are encrypted.
    pub fn is_encrypting(&self) -> bool {
        self.active.is_some()
    }

    /// Whether a key labelled `label` is configured (`""`, plaintext, always is).
    pub fn has_label(&self, label: &str) -> bool {
        label.is_empty() || self.ciphers.contains_key(label)
    }

    /// Encrypts `plaintext` under the active key: `(label, nonce ‖ ciphertext)`, or the
    /// plaintext itself with label `""` without encryption.
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<(String, Vec<u8>)> {
        let Some((label, cipher)) = &self.active else {
            return Ok((String::new(), plaintext.to_vec()));
        };
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(&nonce, plaintext)
            .map_err(|_| Error::unavailable(format!("cannot encrypt under key {label:?}")))?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok((label.clone(), out))
    }

    /// Decrypts a payload stored under `label` (`""`: stored in the clear).
    ///
    /// Errors (`InvalidRecord`): no key with that label is configured, or the payload
    /// does not authenticate under it (a wrong key with the same label, or corruption).
    pub fn decrypt(&self, label: &str, payload: &[u8]) -> Result<Vec<u8>> {
        if label.is_empty() {
            return Ok(payload.to_vec());
        }
        let cipher = self.ciphers.get(label).ok_or_else(|| {
            Error::invalid_record(format!(
                "record is encrypted under key {label:?}, which is not configured"
            ))
        })?;
        if payload.len() < NONCE_LEN {
            return Err(Error::invalid_record(format!(
                "record encrypted under key {label:?} is too short ({} bytes)",
                payload.len()
            )));
        }
        let (nonce, sealed) = payload.split_at(NONCE_LEN);
        cipher
            .decrypt(Nonce::from_slice(nonce), sealed)
            .map_err(|_| {
                Error::invalid_record(format!(
                    "record does not decrypt under key {label:?} (wrong key or corrupt data)"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip_and_labels() {
        let a = EncryptionKey::from_passphrase("a", "pass a");
        let b = EncryptionKey::new("b", [7; 32]);
        let ring_a = KeyRing::new(vec![a.clone()], "a").unwrap();
        let (label, sealed) = ring_a.encrypt(b"hello world").unwrap();
        assert_eq!(label, "a");
        assert!(!sealed.windows(5).any(|w| w == b"hello"));
        let ring_ab = KeyRing::new(vec![a, b], "b").unwrap();
        assert_eq!(ring_ab.decrypt("a", &sealed).unwrap(), b"hello world");
        let err = KeyRing::new(vec![EncryptionKey::new("b", [7; 32])], "b")
            .unwrap()
            .decrypt("a", &sealed)
            .unwrap_err();
        assert!(err.to_string().contains("\"a\""), "{err}");
        let wrong = KeyRing::new(vec![EncryptionKey::new("a", [9; 32])], "a").unwrap();
        let err = wrong.decrypt("a", &sealed).unwrap_err();
        assert_eq!(err.kind(), "InvalidRecord");
        assert!(err.to_string().contains("wrong key"), "{err}");
        assert_eq!(
            KeyRing::plaintext().encrypt(b"x").unwrap(),
            ("".into(), b"x".to_vec())
        );
    }

    #[test]
    fn bad_configuration_names_the_field() {
        let e = EncryptionKey::from_base64("k1", "not base64!").unwrap_err();
        assert!(e
            .validation_errors()
            .unwrap()
            .has_field("encryption_keys[k1]"));
        let e = EncryptionKey::from_base64("k1", "AAAA").unwrap_err();
        assert!(e.to_string().contains("32 bytes, got 3"), "{e}");
        let e = KeyRing::new(vec![EncryptionKey::new("a", [1; 32])], "b").unwrap_err();
        assert!(e.validation_errors().unwrap().has_field("active_key_label"));
        let e = KeyRing::new(
            vec![
                EncryptionKey::new("a", [1; 32]),
                EncryptionKey::new("a", [2; 32]),
            ],
            "a",
        )
        .unwrap_err();
        assert!(e
            .validation_errors()
            .unwrap()
            .has_field("encryption_keys[a]"));
        assert!(KeyRing::new(vec![], "a").is_err());
        let dbg = format!("{:?}", EncryptionKey::new("a", [0x41; 32]));
        assert!(!dbg.contains("65"), "{dbg}");
    }
}
