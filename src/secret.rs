//! Containers for secrets (API keys, API secrets, private keys, passphrases).
//!
//! Owns: the one type every secret travels in. Must not: ever print, log, serialise or
//! compare its contents in a way that leaks them. `Debug` and `Display` print `***`; the
//! memory is wiped on drop (`zeroize`). Read the value only through `expose`, for as short a
//! time as possible (computing a signature, writing the encrypted vault).

use std::fmt;

use zeroize::{Zeroize, Zeroizing};

/// A secret string, wiped from memory on drop, redacted in `Debug`/`Display`.
#[derive(Clone, Default)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The plain text. Keep the borrow short; never log or format it.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first and last 4 characters with the middle hidden (`vmPU…Eh8A`), for API keys only
    /// (never for a secret). Short values are fully hidden.
    pub fn masked(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        if chars.len() < 12 {
            return "***".to_string();
        }
        let head: String = chars[..4].iter().collect();
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{head}…{tail}")
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        Self::new(value.to_string())
    }
}

/// Constant-time in the contents (the length aside), so a comparison never tells how many
/// leading characters matched. Lets messages that carry a secret (the screen's re-arm command)
/// keep deriving `PartialEq`.
impl PartialEq for SecretString {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.expose().as_bytes(), other.expose().as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl Eq for SecretString {}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Secret bytes (an Ed25519 private key, a derived key), wiped on drop, redacted in `Debug`.
#[derive(Clone, Default)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    pub fn new(value: Vec<u8>) -> Self {
        Self(Zeroizing::new(value))
    }

    pub fn expose(&self) -> &[u8] {
        self.0.as_slice()
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Drop for SecretString {
    fn drop(&mut self) {
        // Zeroizing already wipes; this makes the intent explicit for readers.
        self.0.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = SecretString::from("NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{:?}", Some(&s)), "Some(***)");
        assert_eq!(format!("{:?}", SecretBytes::new(vec![1, 2, 3])), "***");
    }

    #[test]
    fn equality_compares_the_whole_value() {
        assert_eq!(SecretString::from("same value"), SecretString::from("same value"));
        assert_ne!(SecretString::from("same value"), SecretString::from("same valuf"));
        assert_ne!(
            SecretString::from("same value"),
            SecretString::from("same value ")
        );
        assert_ne!(SecretString::from(""), SecretString::from("x"));
    }

    #[test]
    fn masked_shows_only_the_ends_of_long_values() {
        let k = SecretString::from("vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A");
        assert_eq!(k.masked(), "vmPU…Eh8A");
        assert_eq!(SecretString::from("short").masked(), "***");
    }
}
