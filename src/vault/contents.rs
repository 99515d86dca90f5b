//! The decrypted vault contents and their JSON form (the plaintext inside the AES-GCM envelope).
//!
//! Owns: the per-mode entries and the created/updated dates, and their (de)serialisation.
//! Must not: let a secret live in a plain `String` longer than the move into a `SecretString`,
//! or let serialised plaintext outlive the buffer handed to the cipher (it is `Zeroizing`).
//!
//! Why no serde enums: internally tagged enums buffer every string in an intermediate value
//! that is never wiped; flat structs move each parsed `String` straight into a secret type.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{KeyKind, KeySecret, ModeKeys};
use crate::domain::Mode;
use crate::secret::{SecretBytes, SecretString};

/// The modes whose keys can be stored, in file order.
pub const KEYED_MODES: [Mode; 3] = [Mode::Demo, Mode::Testnet, Mode::Live];

/// What a vault holds once unlocked.
#[derive(Debug, Clone, Default)]
pub struct VaultContents {
    /// When `vault init` created the vault (Unix ms).
    pub created_ms: i64,
    /// Last `set-keys` or `rotate` (Unix ms).
    pub updated_ms: i64,
    entries: Vec<(Mode, ModeKeys)>,
}

#[derive(Serialize)]
struct PayloadOut<'a> {
    created_ms: i64,
    updated_ms: i64,
    entries: Vec<EntryOut<'a>>,
}

#[derive(Serialize)]
struct EntryOut<'a> {
    mode: &'static str,
    kind: &'static str,
    api_key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    private_key_hex: Option<&'a str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PayloadIn {
    created_ms: i64,
    updated_ms: i64,
    entries: Vec<EntryIn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryIn {
    mode: String,
    kind: String,
    api_key: Secret,
    #[serde(default)]
    secret: Option<Secret>,
    #[serde(default)]
    private_key_hex: Option<Secret>,
}

/// A JSON string parsed straight into a [`SecretString`]: from the input buffer (which is
/// wiped) into the one allocation that becomes the secret, with no `String` in between that
/// would be freed unwiped, also when a later field fails to parse. (A string with JSON escapes
/// goes through `serde_json`'s scratch buffer first; the vault's own writer never escapes a key,
/// they are printable ASCII.)
struct Secret(SecretString);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Secret;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret(SecretString::from(v)))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Secret, E> {
                Ok(Secret(SecretString::new(v)))
            }
        }
        d.deserialize_str(Visit)
    }
}

impl VaultContents {
    pub fn new(now_ms: i64) -> Self {
        Self {
            created_ms: now_ms,
            updated_ms: now_ms,
            entries: Vec::new(),
        }
    }

    pub fn get(&self, mode: Mode) -> Option<&ModeKeys> {
        self.entries.iter().find(|(m, _)| *m == mode).map(|(_, k)| k)
    }

    /// Replaces (or adds) the keys of `mode`.
    pub fn set(&mut self, mode: Mode, keys: ModeKeys, now_ms: i64) {
        self.entries.retain(|(m, _)| *m != mode);
        self.entries.push((mode, keys));
        self.entries
            .sort_by_key(|(m, _)| KEYED_MODES.iter().position(|k| k == m));
        self.updated_ms = now_ms;
    }

    /// The modes present, in demo, testnet, live order.
    pub fn entries(&self) -> impl Iterator<Item = (Mode, &ModeKeys)> {
        self.entries.iter().map(|(m, k)| (*m, k))
    }

    /// The plaintext JSON, in a buffer wiped on drop.
    pub fn to_json(&self) -> Result<Zeroizing<Vec<u8>>, String> {
        // Hex of the Ed25519 keys, wiped when this function returns.
        let hexes: Vec<Zeroizing<String>> = self
            .entries
            .iter()
            .map(|(_, k)| match &k.secret {
                KeySecret::Ed25519(b) => Zeroizing::new(hex::encode(b.expose())),
                KeySecret::Hmac(_) => Zeroizing::new(String::new()),
            })
            .collect();
        let entries = self
            .entries
            .iter()
            .zip(&hexes)
            .map(|((mode, keys), hx)| EntryOut {
                mode: mode.as_str(),
                kind: keys.kind().as_str(),
                api_key: keys.api_key.expose(),
                secret: match &keys.secret {
                    KeySecret::Hmac(s) => Some(s.expose()),
                    KeySecret::Ed25519(_) => None,
                },
                private_key_hex: match &keys.secret {
                    KeySecret::Ed25519(_) => Some(hx.as_str()),
                    KeySecret::Hmac(_) => None,
                },
            })
            .collect();
        let out = PayloadOut {
            created_ms: self.created_ms,
            updated_ms: self.updated_ms,
            entries,
        };
        // Reserve generously so the writer never reallocates (a reallocation would leave an
        // unwiped copy of the plaintext in freed memory).
        let mut buf = Zeroizing::new(Vec::with_capacity(64 * 1024));
        serde_json::to_writer(&mut *buf, &out).map_err(|e| format!("cannot serialise the vault: {e}"))?;
        Ok(buf)
    }

    /// Parses the plaintext JSON. The error is a reason for "damaged" and never quotes input.
    pub fn from_json(plain: &[u8]) -> Result<Self, String> {
        let parsed: PayloadIn = serde_json::from_slice(plain).map_err(|e| {
            format!(
                "its contents are not valid (line {}, column {})",
                e.line(),
                e.column()
            )
        })?;
        let mut contents = VaultContents {
            created_ms: parsed.created_ms,
            updated_ms: parsed.updated_ms,
            entries: Vec::new(),
        };
        for e in parsed.entries {
            let mode_name = Zeroizing::new(e.mode);
            let mode = KEYED_MODES
                .into_iter()
                .find(|m| m.as_str() == mode_name.as_str())
                .ok_or_else(|| "it holds an entry for an unknown mode".to_string())?;
            let api_key = e.api_key.0;
            let secret = match (e.kind.as_str(), e.secret, e.private_key_hex) {
                ("hmac", Some(s), None) => KeySecret::Hmac(s.0),
                ("ed25519", None, Some(h)) => {
                    let bytes = hex::decode(h.0.expose())
                        .map_err(|_| "it holds an Ed25519 key that is not hex".to_string())?;
                    let bytes = SecretBytes::new(bytes);
                    if bytes.expose().len() != 32 {
                        return Err("it holds an Ed25519 key that is not 32 bytes".into());
                    }
                    KeySecret::Ed25519(bytes)
                }
                _ => return Err(format!("the {} entry has an invalid key type", mode.as_str())),
            };
            if contents.get(mode).is_some() {
                return Err(format!("it holds two entries for {}", mode.as_str()));
            }
            contents.entries.push((mode, ModeKeys { api_key, secret }));
        }
        Ok(contents)
    }
}

impl KeyKind {
    /// Parses `hmac` / `ed25519`.
    pub fn parse(s: &str) -> Option<KeyKind> {
        match s {
            "hmac" => Some(KeyKind::Hmac),
            "ed25519" => Some(KeyKind::Ed25519),
            _ => None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hmac(key: &str, secret: &str) -> ModeKeys {
        ModeKeys {
            api_key: key.into(),
            secret: KeySecret::Hmac(secret.into()),
        }
    }

    #[test]
    fn json_round_trip_keeps_every_entry_and_date() {
        let mut c = VaultContents::new(1_000);
        c.set(Mode::Live, hmac("LIVEKEY", "LIVESECRET"), 2_000);
        c.set(
            Mode::Testnet,
            ModeKeys {
                api_key: "EDKEY".into(),
                secret: KeySecret::Ed25519(SecretBytes::new(vec![5; 32])),
            },
            3_000,
        );
        let json = c.to_json().unwrap();
        let back = VaultContents::from_json(&json).unwrap();
        assert_eq!((back.created_ms, back.updated_ms), (1_000, 3_000));
        let modes: Vec<Mode> = back.entries().map(|(m, _)| m).collect();
        assert_eq!(modes, vec![Mode::Testnet, Mode::Live]);
        let live = back.get(Mode::Live).unwrap();
        assert_eq!(live.api_key.expose(), "LIVEKEY");
        assert!(matches!(&live.secret, KeySecret::Hmac(s) if s.expose() == "LIVESECRET"));
        let t = back.get(Mode::Testnet).unwrap();
        assert_eq!(t.kind(), KeyKind::Ed25519);
        assert!(matches!(&t.secret, KeySecret::Ed25519(b) if b.expose() == [5; 32]));
    }

    #[test]
    fn set_replaces_the_keys_of_a_mode() {
        let mut c = VaultContents::new(0);
        c.set(Mode::Demo, hmac("A", "B"), 1);
        c.set(Mode::Demo, hmac("C", "D"), 2);
        assert_eq!(c.entries().count(), 1);
        assert_eq!(c.get(Mode::Demo).unwrap().api_key.expose(), "C");
    }

    #[test]
    fn invalid_json_errors_do_not_quote_the_input() {
        let err = VaultContents::from_json(b"{\"created_ms\":1,\"TOPSECRET\":2}").unwrap_err();
        assert!(!err.contains("TOPSECRET"), "{err}");
        let err = VaultContents::from_json(
            br#"{"created_ms":1,"updated_ms":1,"entries":[{"mode":"sim","kind":"hmac","api_key":"K","secret":"S"}]}"#,
        )
        .unwrap_err();
        assert!(err.contains("unknown mode"), "{err}");
    }
}
