//! The secret's fields, as both services store them: `{"api_key", "api_secret"}` for an HMAC
//! key, `{"api_key", "ed25519_private_key_pem"}` for an Ed25519 key.
//!
//! Owns: deserialising those fields straight into zeroizing containers and checking them.
//! Must not: quote a value in an error (serde's own messages can: `invalid type: string "…"`,
//! so they are never shown), or keep a plain `String` of a value.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use zeroize::Zeroizing;

use crate::secret::{SecretBytes, SecretString};
use crate::vault::{KeySecret, ModeKeys};

/// One string field, deserialised into a [`SecretString`]: serde hands the visitor either a
/// borrowed slice of the (zeroizing) input or a `String` it owns, which is moved in, not copied.
pub struct Field(pub SecretString);

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(FieldVisitor)
    }
}

struct FieldVisitor;

impl Visitor<'_> for FieldVisitor {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
        Ok(Field(SecretString::from(v)))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Field, E> {
        Ok(Field(SecretString::new(v)))
    }
}

impl fmt::Debug for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The secret's fields as stored; any other field is ignored.
#[derive(Debug, Default, Deserialize)]
pub struct KeyFields {
    api_key: Option<Field>,
    api_secret: Option<Field>,
    ed25519_private_key_pem: Option<Field>,
}

impl KeyFields {
    /// The keys, or what is wrong with the fields (never a value).
    pub fn into_keys(self) -> Result<ModeKeys, String> {
        let api_key = match self.api_key {
            Some(Field(k)) if !k.expose().trim().is_empty() => k,
            Some(_) => return Err("has an empty \"api_key\"".into()),
            None => return Err("has no \"api_key\" field".into()),
        };
        if api_key
            .expose()
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err("has an \"api_key\" with spaces or control characters".into());
        }
        let secret = match (self.api_secret, self.ed25519_private_key_pem) {
            (Some(_), Some(_)) => {
                return Err(
                    "has both \"api_secret\" and \"ed25519_private_key_pem\": keep the one of this key's kind"
                        .into(),
                );
            }
            (Some(Field(s)), None) if s.is_empty() => return Err("has an empty \"api_secret\"".into()),
            (Some(Field(s)), None) => KeySecret::Hmac(s),
            (None, Some(Field(pem))) => KeySecret::Ed25519(ed25519_seed(&pem)?),
            (None, None) => {
                return Err(
                    "has neither \"api_secret\" (HMAC key) nor \"ed25519_private_key_pem\" (Ed25519 key)"
                        .into(),
                );
            }
        };
        Ok(ModeKeys { api_key, secret })
    }
}

/// Parses a secret's JSON text into keys. The caller owns (and wipes) `text`.
pub fn parse_keys(text: &[u8]) -> Result<ModeKeys, String> {
    let fields: KeyFields = serde_json::from_slice(text).map_err(|e| json_problem(&e))?;
    fields.into_keys()
}

/// What is wrong with a JSON text, by position only (serde's message may quote a value).
pub fn json_problem(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => format!(
            "is not a JSON object of strings {{\"api_key\", \"api_secret\"}} or {{\"api_key\", \"ed25519_private_key_pem\"}} (line {}, column {})",
            e.line(),
            e.column()
        ),
        Category::Eof | Category::Syntax | Category::Io => format!(
            "is not valid JSON (line {}, column {}): it must be {{\"api_key\": \"…\", \"api_secret\": \"…\"}}",
            e.line(),
            e.column()
        ),
    }
}

/// The 32-byte seed of an Ed25519 private key in PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
fn ed25519_seed(pem: &SecretString) -> Result<SecretBytes, String> {
    use base64::Engine as _;
    use ed25519_dalek::pkcs8::DecodePrivateKey as _;
    let text = pem.expose();
    if text.contains("ENCRYPTED") {
        return Err("has an encrypted \"ed25519_private_key_pem\": store it unencrypted".into());
    }
    let mut inside = false;
    let mut body = Zeroizing::new(String::with_capacity(text.len()));
    // Stored PEMs often have their newlines escaped once more (`\n` typed into a form).
    for line in text
        .split(['\n', '\r'])
        .flat_map(|l| l.split("\\n"))
        .map(str::trim)
    {
        match line {
            "-----BEGIN PRIVATE KEY-----" => inside = true,
            "-----END PRIVATE KEY-----" => break,
            l if inside => body.push_str(l),
            _ => {}
        }
    }
    let not_pem =
        || "has an \"ed25519_private_key_pem\" that is not a PKCS#8 PEM (BEGIN PRIVATE KEY)".to_string();
    if body.is_empty() {
        return Err(not_pem());
    }
    let der = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|_| not_pem())?,
    );
    let key = ed25519_dalek::SigningKey::from_pkcs8_der(&der)
        .map_err(|_| "has an \"ed25519_private_key_pem\" that is not an Ed25519 private key".to_string())?;
    let seed = Zeroizing::new(key.to_bytes());
    Ok(SecretBytes::new(seed.to_vec()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// RFC 8410's example Ed25519 private key.
    const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";

    #[test]
    fn an_hmac_secret_is_read() {
        let keys = parse_keys(br#"{"api_key":"KEYabc","api_secret":"s3cr3t","note":1}"#).unwrap();
        assert_eq!(keys.api_key.expose(), "KEYabc");
        assert!(matches!(&keys.secret, KeySecret::Hmac(s) if s.expose() == "s3cr3t"));
    }

    #[test]
    fn an_ed25519_pem_is_read_with_real_or_escaped_newlines() {
        for pem in [PEM.to_string(), PEM.replace('\n', "\\n")] {
            let doc = serde_json::json!({"api_key": "KEYabc", "ed25519_private_key_pem": pem});
            let keys = parse_keys(doc.to_string().as_bytes()).unwrap();
            let KeySecret::Ed25519(seed) = &keys.secret else {
                panic!("not ed25519")
            };
            assert_eq!(hex::encode(seed.expose())[..8], *"d4ee72db");
        }
    }

    #[test]
    fn errors_name_the_field_and_never_quote_a_value() {
        let cases: [(&[u8], &str); 7] = [
            (br#"{"api_secret":"VALUE1"}"#, "no \"api_key\""),
            (br#"{"api_key":"VALUE1"}"#, "neither"),
            (br#"{"api_key":"VALUE1","api_secret":""}"#, "empty \"api_secret\""),
            (
                br#"{"api_key":"VALUE1","api_secret":7}"#,
                "not a JSON object of strings",
            ),
            (br#""VALUE1""#, "not a JSON object"),
            (br#"{"api_key":"VALUE1","api_secret":"VALUE2"#, "not valid JSON"),
            (
                br#"{"api_key":"VALUE1","ed25519_private_key_pem":"VALUE2"}"#,
                "not a PKCS#8 PEM",
            ),
        ];
        for (text, want) in cases {
            let err = parse_keys(text).expect_err("refused");
            assert!(err.contains(want), "{err}");
            assert!(!err.contains("VALUE"), "{err}");
        }
    }
}
