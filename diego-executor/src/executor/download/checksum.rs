//! Checksums of downloads: md5, sha1 or sha256 (any case), compared as hex.
//!
//! It knows bytes and digests only.

use md5::Digest as _;

/// A checksum algorithm a download may verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChecksumAlgorithm {
    /// MD5.
    Md5,
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
}

impl ChecksumAlgorithm {
    /// Parses `md5`, `sha1` or `sha256` in any case.
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "md5" => Some(ChecksumAlgorithm::Md5),
            "sha1" => Some(ChecksumAlgorithm::Sha1),
            "sha256" => Some(ChecksumAlgorithm::Sha256),
            _ => None,
        }
    }
}

/// An expected checksum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checksum {
    /// The algorithm.
    pub algorithm: ChecksumAlgorithm,
    /// The expected digest, hex (compared in lowercase).
    pub value: String,
}

/// A running digest.
pub(crate) enum Hasher {
    Md5(md5::Md5),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl Hasher {
    pub(crate) fn new(algorithm: ChecksumAlgorithm) -> Self {
        match algorithm {
            ChecksumAlgorithm::Md5 => Hasher::Md5(md5::Md5::new()),
            ChecksumAlgorithm::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            ChecksumAlgorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
        }
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Md5(h) => h.update(bytes),
            Hasher::Sha1(h) => h.update(bytes),
            Hasher::Sha256(h) => h.update(bytes),
        }
    }

    pub(crate) fn hex(self) -> String {
        match self {
            Hasher::Md5(h) => hex(&h.finalize()),
            Hasher::Sha1(h) => hex(&h.finalize()),
            Hasher::Sha256(h) => hex(&h.finalize()),
        }
    }
}

/// Lowercase hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0xf) as usize] as char);
    }
    out
}

/// `Ok` when `actual` matches `expected`, else Diego-style mismatch text.
pub(crate) fn verify(expected: &Checksum, actual: &str) -> Result<(), String> {
    if expected.value.eq_ignore_ascii_case(actual) {
        Ok(())
    } else {
        Err(format!(
            "checksum mismatch: expected {}, got {actual}",
            expected.value.to_ascii_lowercase()
        ))
    }
}

/// The sha256 hex of a string (names cache files after their keys).
pub(crate) fn sha256_hex(text: &str) -> String {
    let mut h = Hasher::new(ChecksumAlgorithm::Sha256);
    h.update(text.as_bytes());
    h.hex()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(algorithm: ChecksumAlgorithm, data: &[u8]) -> String {
        let mut h = Hasher::new(algorithm);
        h.update(data);
        h.hex()
    }

    #[test]
    fn known_digests() {
        assert_eq!(
            digest(ChecksumAlgorithm::Md5, b"abc"),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            digest(ChecksumAlgorithm::Sha1, b"abc"),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            digest(ChecksumAlgorithm::Sha256, b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            ChecksumAlgorithm::parse("SHA256"),
            Some(ChecksumAlgorithm::Sha256)
        );
        assert_eq!(ChecksumAlgorithm::parse("crc32"), None);
        let expected = Checksum {
            algorithm: ChecksumAlgorithm::Md5,
            value: "900150983CD24FB0D6963F7D28E17F72".into(),
        };
        assert!(verify(&expected, "900150983cd24fb0d6963f7d28e17f72").is_ok());
        assert_eq!(
            verify(&expected, "00").unwrap_err(),
            "checksum mismatch: expected 900150983cd24fb0d6963f7d28e17f72, got 00"
        );
    }
}
