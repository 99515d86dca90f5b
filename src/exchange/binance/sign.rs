//! Request signing for the REST API and the WebSocket API.
//!
//! Owns: the credentials type, the percent-encoded query string exactly as it is sent, and the
//! HMAC-SHA256 / Ed25519 signatures over it. Must not: log, format or return a secret, or let
//! anything re-serialise a query after it was signed (byte equality of signed and sent text is
//! the whole contract). The secret is exposed only inside [`sign_bytes`].

use std::fmt;

use base64::Engine as _;
use ed25519_dalek::Signer as _;
use hmac::{KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use zeroize::Zeroizing;

use crate::secret::{SealedSecret, SecretBytes, SecretString};

/// Everything but the RFC 3986 unreserved characters is escaped, as UTF-8, upper-case hex.
/// A test vector (non-ASCII in a parameter value) pins this (`１` → `%EF%BC%91`).
const QUERY_ESCAPE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Why a request could not be signed. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("the HMAC secret is empty")]
    EmptySecret,
    #[error("the Ed25519 private key must be 32 bytes (got {0})")]
    Ed25519KeyLength(usize),
    #[error("the Ed25519 private key file is not a PKCS#8 PEM or DER key")]
    Ed25519KeyFormat,
}

/// The private half of an API key: an HMAC secret or an Ed25519 private key (32-byte seed),
/// held sealed ([`SealedSecret`]: encrypted under the process's key) and opened only inside
/// [`sign_bytes`]. Clones copy ciphertext.
#[derive(Clone)]
pub enum KeyMaterial {
    /// The HMAC secret's UTF-8 bytes, sealed.
    Hmac(SealedSecret),
    /// The 32-byte Ed25519 seed, sealed.
    Ed25519(SealedSecret),
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyMaterial::Hmac(_) => f.write_str("Hmac(***)"),
            KeyMaterial::Ed25519(_) => f.write_str("Ed25519(***)"),
        }
    }
}

impl KeyMaterial {
    /// Seals an HMAC secret (the plaintext is wiped as it is dropped here).
    pub fn hmac(secret: SecretString) -> Self {
        KeyMaterial::Hmac(SealedSecret::from_string(secret))
    }

    /// Seals an Ed25519 seed (the plaintext is wiped as it is dropped here).
    pub fn ed25519(seed: SecretBytes) -> Self {
        KeyMaterial::Ed25519(SealedSecret::from_bytes(seed))
    }

    /// Reads an Ed25519 private key from PKCS#8 (`-----BEGIN PRIVATE KEY-----` PEM, or DER),
    /// the format Binance's key generator writes.
    pub fn ed25519_from_pkcs8(file: &[u8]) -> Result<Self, SignError> {
        use ed25519_dalek::pkcs8::DecodePrivateKey as _;
        let der: Zeroizing<Vec<u8>> = match std::str::from_utf8(file) {
            Ok(text) if text.contains("-----BEGIN") => {
                let body: Zeroizing<String> = Zeroizing::new(
                    text.lines()
                        .filter(|l| !l.starts_with("-----"))
                        .map(str::trim)
                        .collect(),
                );
                Zeroizing::new(
                    base64::engine::general_purpose::STANDARD
                        .decode(body.as_bytes())
                        .map_err(|_| SignError::Ed25519KeyFormat)?,
                )
            }
            _ => Zeroizing::new(file.to_vec()),
        };
        let key = ed25519_dalek::SigningKey::from_pkcs8_der(&der).map_err(|_| SignError::Ed25519KeyFormat)?;
        let seed = Zeroizing::new(key.to_bytes());
        Ok(KeyMaterial::Ed25519(SealedSecret::seal(seed.as_slice())))
    }

    /// Which kind of key this is, for display (`HMAC`, `Ed25519`).
    pub fn kind(&self) -> &'static str {
        match self {
            KeyMaterial::Hmac(_) => "HMAC",
            KeyMaterial::Ed25519(_) => "Ed25519",
        }
    }
}

/// An API key and its private half. `Debug` shows nothing secret.
#[derive(Clone)]
pub struct Credentials {
    pub api_key: SecretString,
    pub key: KeyMaterial,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("api_key", &self.api_key.masked())
            .field("key", &self.key)
            .finish()
    }
}

impl Credentials {
    pub fn hmac(api_key: &str, secret: &str) -> Self {
        Credentials {
            api_key: SecretString::from(api_key),
            key: KeyMaterial::Hmac(SealedSecret::seal(secret.as_bytes())),
        }
    }
}

/// A signature in its transport-neutral text form: lower-case hex for HMAC, standard base64 for
/// Ed25519 (which contains `+ / =` and so must be percent-encoded inside a URL).
#[derive(Clone, PartialEq, Eq)]
pub struct Signature(String);

impl Signature {
    /// The text as it goes into a WebSocket API JSON `params` object (no escaping).
    pub fn as_raw(&self) -> &str {
        &self.0
    }

    /// The text as it goes into a REST query string (percent-encoded).
    pub fn for_query(&self) -> String {
        utf8_percent_encode(&self.0, QUERY_ESCAPE).to_string()
    }
}

impl fmt::Debug for Signature {
    // A signature is not a secret, but a logged one plus the payload replays a request within
    // recvWindow; keep it out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signature(***)")
    }
}

/// Percent-encodes one key or value for a query string.
pub fn escape(text: &str) -> String {
    utf8_percent_encode(text, QUERY_ESCAPE).to_string()
}

/// Builds `k=v&k=v` from the parameters in the given order, each key and value percent-encoded.
/// This is the exact text that is both signed and sent.
pub fn encode_query(params: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(params.len() * 24);
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.extend(utf8_percent_encode(k, QUERY_ESCAPE));
        out.push('=');
        out.extend(utf8_percent_encode(v, QUERY_ESCAPE));
    }
    out
}

/// Signs the payload bytes with the key. HMAC-SHA256 → hex; Ed25519 → base64.
/// The only place where key material is opened: the plaintext exists in a wiped buffer for the
/// length of this call ([`SealedSecret::with_plain`], which also wipes the stack the hash and
/// key schedule used).
pub fn sign_bytes(key: &KeyMaterial, payload: &[u8]) -> Result<Signature, SignError> {
    match key {
        KeyMaterial::Hmac(sealed) => sealed.with_plain(|secret| {
            if secret.is_empty() {
                return Err(SignError::EmptySecret);
            }
            // The HMAC state (the key's inner and outer pads) is wiped on drop: hmac and sha2
            // are built with their `zeroize` feature.
            let mut mac =
                hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).map_err(|_| SignError::EmptySecret)?;
            mac.update(payload);
            let tag = mac.finalize().into_bytes();
            Ok(Signature(hex::encode(tag.as_slice())))
        }),
        KeyMaterial::Ed25519(sealed) => sealed.with_plain(|raw| {
            let seed: Zeroizing<[u8; 32]> = Zeroizing::new(
                raw.try_into()
                    .map_err(|_| SignError::Ed25519KeyLength(raw.len()))?,
            );
            // SigningKey zeroizes itself on drop (ed25519-dalek's default `zeroize` feature).
            let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
            let sig = signing.sign(payload);
            Ok(Signature(
                base64::engine::general_purpose::STANDARD.encode(sig.to_bytes()),
            ))
        }),
    }
}

/// A REST query ready to send: `query` is the encoded parameter text followed by
/// `&signature=…`. Build the URL as `{origin}{path}?{query}` and never re-encode it.
#[derive(Clone)]
pub struct SignedQuery {
    pub query: String,
}

impl fmt::Debug for SignedQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SignedQuery(***)")
    }
}

/// Encodes the parameters (which must already include `timestamp` and, if wanted,
/// `recvWindow`), signs the encoded text and appends the signature.
pub fn sign_rest(key: &KeyMaterial, params: &[(&str, String)]) -> Result<SignedQuery, SignError> {
    let mut query = encode_query(params);
    let sig = sign_bytes(key, query.as_bytes())?;
    query.push_str("&signature=");
    query.push_str(&sig.for_query());
    Ok(SignedQuery { query })
}

/// The WebSocket API payload: parameters sorted by name, `k=v` joined by `&`, values as plain
/// UTF-8 with **no** percent-encoding. `signature` must not be included.
pub fn ws_payload(params: &[(&str, String)]) -> String {
    let mut sorted: Vec<&(&str, String)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = String::with_capacity(params.len() * 24);
    for (i, (k, v)) in sorted.into_iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Signs WebSocket API parameters; the signature goes raw into `params.signature`.
pub fn sign_ws(key: &KeyMaterial, params: &[(&str, String)]) -> Result<Signature, SignError> {
    sign_bytes(key, ws_payload(params).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Verifier as _;

    const API_KEY: &str = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
    const SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";

    fn hmac() -> KeyMaterial {
        KeyMaterial::hmac(SecretString::from(SECRET))
    }

    fn order_params(symbol: &str) -> Vec<(&'static str, String)> {
        vec![
            ("symbol", symbol.to_string()),
            ("side", "BUY".into()),
            ("type", "LIMIT".into()),
            ("timeInForce", "GTC".into()),
            ("quantity", "1".into()),
            ("price", "0.1".into()),
            ("recvWindow", "5000".into()),
            ("timestamp", "1499827319559".into()),
        ]
    }

    #[test]
    fn rest_vector_a_ascii_matches_the_official_signature() {
        let q = sign_rest(&hmac(), &order_params("LTCBTC")).expect("sign");
        assert_eq!(
            q.query,
            "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000\
             &timestamp=1499827319559&signature=c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
        );
    }

    #[test]
    fn rest_vector_b_non_ascii_symbol_is_percent_encoded_before_signing() {
        let params = order_params("１２３４５６");
        let payload = encode_query(&params);
        assert_eq!(
            payload,
            "symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96&side=BUY&type=LIMIT\
             &timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
        );
        let sig = sign_bytes(&hmac(), payload.as_bytes()).expect("sign");
        assert_eq!(
            sig.as_raw(),
            "e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3"
        );
    }

    #[test]
    fn rest_vector_c_query_and_body_are_concatenated_without_separator() {
        let query = encode_query(&order_params("LTCBTC")[..4]);
        let body = encode_query(&order_params("LTCBTC")[4..]);
        let payload = format!("{query}{body}");
        let sig = sign_bytes(&hmac(), payload.as_bytes()).expect("sign");
        assert_eq!(
            sig.as_raw(),
            "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"
        );
    }

    #[test]
    fn ws_api_vector_sorts_params_and_does_not_escape() {
        let params = vec![
            ("symbol", "BTCUSDT".to_string()),
            ("side", "SELL".into()),
            ("type", "LIMIT".into()),
            ("timeInForce", "GTC".into()),
            ("quantity", "0.01000000".into()),
            ("price", "52000.00".into()),
            ("recvWindow", "100".into()),
            ("timestamp", "1645423376532".into()),
            ("apiKey", API_KEY.into()),
        ];
        assert_eq!(
            ws_payload(&params),
            format!(
                "apiKey={API_KEY}&price=52000.00&quantity=0.01000000&recvWindow=100&side=SELL\
                 &symbol=BTCUSDT&timeInForce=GTC&timestamp=1645423376532&type=LIMIT"
            )
        );
        let sig = sign_ws(&hmac(), &params).expect("sign");
        assert_eq!(
            sig.as_raw(),
            "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"
        );
    }

    #[test]
    fn ws_logon_vector_signs_api_key_and_timestamp() {
        let params = vec![
            ("timestamp", "1649729878532".to_string()),
            ("apiKey", API_KEY.to_string()),
        ];
        let sig = sign_ws(&hmac(), &params).expect("sign");
        assert_eq!(
            sig.as_raw(),
            "1cf54395b336b0a9727ef27d5d98987962bc47aca6e13fe978612d0adee066ed"
        );
    }

    #[test]
    fn ws_payload_keeps_non_ascii_raw() {
        let params = vec![("symbol", "这是测试币456".to_string())];
        assert_eq!(ws_payload(&params), "symbol=这是测试币456");
    }

    #[test]
    fn ed25519_signature_verifies_and_is_escaped_in_the_query() {
        let seed = [7u8; 32];
        let key = KeyMaterial::ed25519(SecretBytes::new(seed.to_vec()));
        let params = order_params("LTCBTC");
        let q = sign_rest(&key, &params).expect("sign");
        let payload = encode_query(&params);
        let sig = sign_bytes(&key, payload.as_bytes()).expect("sign");
        // Standard base64 of 64 bytes is 88 chars, ending in "==".
        assert_eq!(sig.as_raw().len(), 88);
        assert!(q.query.ends_with(&format!("&signature={}", sig.for_query())));
        assert!(!sig.for_query().contains('+') && !sig.for_query().contains('/'));
        assert!(sig.for_query().ends_with("%3D%3D"));
        let raw = base64::engine::general_purpose::STANDARD
            .decode(sig.as_raw())
            .expect("base64");
        let sig_bytes: [u8; 64] = raw.as_slice().try_into().expect("64 bytes");
        let verifying = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
        verifying
            .verify(
                payload.as_bytes(),
                &ed25519_dalek::Signature::from_bytes(&sig_bytes),
            )
            .expect("signature verifies");
        let tampered = payload.replace("quantity=1", "quantity=2");
        assert!(
            verifying
                .verify(
                    tampered.as_bytes(),
                    &ed25519_dalek::Signature::from_bytes(&sig_bytes)
                )
                .is_err()
        );
    }

    #[test]
    fn ed25519_key_of_wrong_length_is_refused() {
        let key = KeyMaterial::ed25519(SecretBytes::new(vec![1; 31]));
        assert_eq!(sign_bytes(&key, b"x"), Err(SignError::Ed25519KeyLength(31)));
    }

    #[test]
    fn ed25519_key_reads_from_pkcs8_pem() {
        // RFC 8410 §10.3 example private key.
        let pem = "-----BEGIN PRIVATE KEY-----\n\
                   MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
                   -----END PRIVATE KEY-----\n";
        let key = KeyMaterial::ed25519_from_pkcs8(pem.as_bytes()).expect("pem");
        assert_eq!(key.kind(), "Ed25519");
        assert!(sign_bytes(&key, b"payload").is_ok());
        assert_eq!(
            KeyMaterial::ed25519_from_pkcs8(b"garbage").err(),
            Some(SignError::Ed25519KeyFormat)
        );
    }

    #[test]
    fn debug_output_hides_every_secret() {
        let creds = Credentials::hmac(API_KEY, SECRET);
        let text = format!("{creds:?}");
        assert!(!text.contains(SECRET) && !text.contains(API_KEY), "{text}");
        let q = sign_rest(&creds.key, &order_params("LTCBTC")).expect("sign");
        assert_eq!(format!("{q:?}"), "SignedQuery(***)");
    }

    #[test]
    fn empty_hmac_secret_is_refused() {
        let key = KeyMaterial::hmac(SecretString::from(""));
        assert_eq!(sign_bytes(&key, b"x"), Err(SignError::EmptySecret));
    }
}
