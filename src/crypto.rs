//! Secrets: the application key, encryption at rest for secrets that must be
//! recovered (subscriber and router passwords, webhook secrets), and a string type that never
//! prints its contents.

use std::fmt;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use rand::RngCore;

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
/// Marks the ciphertext format, so that a later change of algorithm can
/// still read what an older version wrote.
const CIPHERTEXT_PREFIX: &str = "v1:";

/// A string that must not reach logs: `Debug` and `Display` print `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// APP_KEY: 32 random bytes, written as base64.
#[derive(Clone, PartialEq, Eq)]
pub struct AppKey([u8; KEY_LEN]);

impl fmt::Debug for AppKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AppKey([redacted])")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the stored secret is not in a format this version can read")]
    Malformed,
    #[error("the stored secret does not decrypt with this APP_KEY (was the key changed?)")]
    WrongKey,
}

impl AppKey {
    pub fn generate() -> Self {
        let mut bytes = [0u8; KEY_LEN];
        rand::rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Parses a key; the error message never contains the value.
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let text = text.strip_prefix("base64:").unwrap_or(text);
        let bytes = BASE64.decode(text).map_err(|_| {
            "is not valid base64 (generate one with `ispd key generate`)".to_string()
        })?;
        let bytes: [u8; KEY_LEN] = bytes.try_into().map_err(|bytes: Vec<u8>| {
            format!(
                "must decode to {KEY_LEN} bytes, but decodes to {} (generate one with `ispd key generate`)",
                bytes.len()
            )
        })?;
        Ok(Self(bytes))
    }

    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0)
    }

    /// Reads the key file in the data directory, creating it (mode 0600) on
    /// first use. An existing file is never overwritten: losing the key
    /// would make every stored secret unreadable.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        use anyhow::Context;
        if path.exists() {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the key file {}", path.display()))?;
            return Self::from_base64(&text)
                .map_err(|problem| anyhow::anyhow!("key file {}: {problem}", path.display()));
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the data directory {}", dir.display()))?;
        }
        let key = Self::generate();
        Self::write_key_file(path, &key)
            .with_context(|| format!("writing the key file {}", path.display()))?;
        Ok(key)
    }

    /// Writes `key` to a new file (mode 0600) that must not exist yet.
    pub fn write_key_file(path: &Path, key: &Self) -> std::io::Result<()> {
        write_new_private_file(path, format!("{}\n", key.to_base64()).as_bytes())
    }

    /// Encrypts with AES-256-GCM under a fresh random nonce.
    pub fn encrypt(&self, plaintext: &str) -> String {
        let cipher = Aes256Gcm::new_from_slice(&self.0).expect("key length is fixed");
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = cipher
            .encrypt(Nonce::from_slice(&nonce), plaintext.as_bytes())
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        format!("{CIPHERTEXT_PREFIX}{}", BASE64.encode(sealed))
    }

    pub fn decrypt(&self, stored: &str) -> Result<Secret, CryptoError> {
        let encoded = stored
            .strip_prefix(CIPHERTEXT_PREFIX)
            .ok_or(CryptoError::Malformed)?;
        let sealed = BASE64.decode(encoded).map_err(|_| CryptoError::Malformed)?;
        if sealed.len() < NONCE_LEN {
            return Err(CryptoError::Malformed);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let cipher = Aes256Gcm::new_from_slice(&self.0).expect("key length is fixed");
        let plaintext = cipher
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| CryptoError::WrongKey)?;
        String::from_utf8(plaintext)
            .map(Secret)
            .map_err(|_| CryptoError::Malformed)
    }
}

fn write_new_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    // create_new: never overwrite, even if another process raced us here.
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// A random password of `len` characters from an alphabet without look-alike
/// characters, for first-run and reset passwords that people type.
pub fn random_password(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| {
            let i = (rng.next_u32() as usize) % ALPHABET.len();
            ALPHABET[i] as char
        })
        .collect()
}

/// A random token of `bytes` bytes, URL-safe base64 without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypted_secrets_round_trip_and_differ_each_time() {
        let key = AppKey::generate();
        let a = key.encrypt("pppoe-pass");
        let b = key.encrypt("pppoe-pass");
        assert_ne!(a, b, "a fresh nonce each time");
        assert!(!a.contains("pppoe-pass"));
        assert_eq!(key.decrypt(&a).unwrap().expose(), "pppoe-pass");
    }

    #[test]
    fn another_key_cannot_decrypt() {
        let sealed = AppKey::generate().encrypt("secret");
        assert!(matches!(
            AppKey::generate().decrypt(&sealed),
            Err(CryptoError::WrongKey)
        ));
        assert!(matches!(
            AppKey::generate().decrypt("garbage"),
            Err(CryptoError::Malformed)
        ));
    }

    #[test]
    fn keys_parse_only_at_32_bytes() {
        let key = AppKey::generate();
        assert_eq!(AppKey::from_base64(&key.to_base64()).unwrap(), key);
        assert!(AppKey::from_base64("c2hvcnQ=")
            .unwrap_err()
            .contains("32 bytes"));
        assert!(AppKey::from_base64("not base64!").is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{:?}", AppKey::generate()), "AppKey([redacted])");
    }

    #[test]
    fn key_file_is_created_once_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("app.key");
        let first = AppKey::load_or_create(&path).unwrap();
        let second = AppKey::load_or_create(&path).unwrap();
        assert_eq!(first, second);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
