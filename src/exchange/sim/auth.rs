//! Request authentication as Binance performs it: the API-key header,
//! the signature over the percent-encoded query string immediately followed by the body (as
//! received, before decoding), HMAC-SHA256 (hex, case-insensitive) and Ed25519 (base64), and
//! the three `timestamp`/`recvWindow` checks. The WebSocket API variant signs the parameters
//! sorted by name, not percent-encoded (§2.6).
//!
//! Owns: the verification arithmetic. Must not: log or return key material; messages never
//! contain the secret or the signature.

use base64::Engine as _;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use hmac::{KeyInit, Mac};
use sha2::Sha256;

use super::engine::ApiError;
use crate::secret::SecretString;

/// How a key proves a request.
#[derive(Debug, Clone)]
pub enum SimAuth {
    /// Shared secret; signatures are hex HMAC-SHA256.
    Hmac(SecretString),
    /// Ed25519 public key (32 bytes); signatures are base64.
    Ed25519([u8; 32]),
}

/// The payload a REST signature covers and the raw (still percent-encoded) signature value.
///
/// Every `signature=` pair is removed from the query string and from the body; what is left of
/// the query is immediately followed by what is left of the body (no separator).
pub fn rest_payload(raw_query: &str, raw_body: &str) -> (String, Option<String>) {
    let mut sig = None;
    let mut strip = |raw: &str| -> String {
        raw.split('&')
            .filter(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                if k == "signature" {
                    if sig.is_none() {
                        sig = Some(v.to_string());
                    }
                    false
                } else {
                    true
                }
            })
            .collect::<Vec<_>>()
            .join("&")
    };
    let q = if raw_query.is_empty() {
        String::new()
    } else {
        strip(raw_query)
    };
    let b = if raw_body.is_empty() {
        String::new()
    } else {
        strip(raw_body)
    };
    (format!("{q}{b}"), sig)
}

/// Verifies `signature` (as sent: hex for HMAC; base64, possibly percent-encoded, for Ed25519).
pub fn verify(auth: &SimAuth, payload: &[u8], signature: &str) -> bool {
    match auth {
        SimAuth::Hmac(secret) => {
            let Ok(bytes) = hex::decode(signature) else {
                return false;
            };
            let Ok(mut mac) = hmac::Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) else {
                return false;
            };
            mac.update(payload);
            mac.verify_slice(&bytes).is_ok()
        }
        SimAuth::Ed25519(public) => {
            let decoded = percent_encoding::percent_decode_str(signature)
                .decode_utf8_lossy()
                .to_string();
            let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(decoded.trim()) else {
                return false;
            };
            let Ok(bytes) = <[u8; 64]>::try_from(raw.as_slice()) else {
                return false;
            };
            let Ok(key) = VerifyingKey::from_bytes(public) else {
                return false;
            };
            key.verify(payload, &Signature::from_bytes(&bytes)).is_ok()
        }
    }
}

/// HMAC-SHA256 hex of `payload` (used by tests and by the sim's own helpers).
pub fn hmac_hex(secret: &str, payload: &str) -> String {
    match hmac::Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(payload.as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// The WebSocket API payload: every parameter but `signature`, sorted by name, `k=v` joined
/// with `&`, values as sent (strings unquoted), no percent-encoding (§2.6).
pub fn ws_payload(params: &serde_json::Map<String, serde_json::Value>) -> String {
    let mut keys: Vec<&String> = params.keys().filter(|k| k.as_str() != "signature").collect();
    keys.sort();
    keys.iter()
        .map(|k| {
            let v = match &params[k.as_str()] {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// API-key format as Binance issues them: 64 ASCII letters and digits.
pub fn key_format_ok(key: &str) -> bool {
    key.len() == 64 && key.chars().all(|c| c.is_ascii_alphanumeric())
}

/// The timing rule of Binance's "timing security": a request is processed only when
/// `timestamp < serverTime + 1000 ms` and `serverTime - timestamp <= recvWindow`. `timestamp`
/// is in milliseconds, or in microseconds when it has 16 digits; `recvWindow` is in
/// milliseconds, at most 60000, with up to three decimals (microsecond precision).
///
/// Everything is computed in microseconds with checked arithmetic: a timestamp whose distance
/// to the server clock does not fit in an `i64` is as far outside the window as a timestamp can
/// be, and is refused; a wrapped subtraction would otherwise let `i64::MIN` pass forever.
/// `now_ms` is the server's clock.
pub fn check_timestamp(
    timestamp: Option<&str>,
    recv_window: Option<&str>,
    now_ms: i64,
) -> Result<(), ApiError> {
    use rust_decimal::Decimal;
    use rust_decimal::prelude::ToPrimitive;
    let ts_raw = timestamp
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::mandatory("timestamp"))?;
    let ts: i64 = ts_raw.parse().map_err(|_| ApiError::mandatory("timestamp"))?;
    let outside = || ApiError::bad(-1021, "Timestamp for this request is outside of the recvWindow.");
    let ahead = || {
        ApiError::bad(
            -1021,
            "Timestamp for this request was 1000ms ahead of the server's time.",
        )
    };
    const MICROS_FROM: i64 = 1_000_000_000_000_000;
    let ts_us = if ts >= MICROS_FROM {
        ts
    } else {
        // Negative or overflowing: no clock ever showed it.
        ts.checked_mul(1000).ok_or_else(outside)?
    };
    let rw_us: i64 = match recv_window.filter(|r| !r.is_empty()) {
        None => 5_000_000,
        Some(r) => {
            // Plain decimal digits only: `Decimal::from_str` would also take `1e3` or `-5`.
            let illegal = || ApiError::bad(-1100, "Illegal characters found in parameter 'recvWindow'.");
            let (int, frac) = r.split_once('.').unwrap_or((r, "0"));
            let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
            if !digits(int) || !digits(frac) {
                return Err(illegal());
            }
            let d: Decimal = r.parse().map_err(|_| illegal())?;
            if d.fract().round_dp(3) != d.fract() {
                return Err(ApiError::bad(
                    -1111,
                    "Parameter 'recvWindow' has too much precision.",
                ));
            }
            if d > Decimal::from(60_000) || d <= Decimal::ZERO {
                return Err(ApiError::bad(-1131, "recvWindow must be less than 60000"));
            }
            // In (0, 60000] with at most three decimals: the product is exact and small.
            d.checked_mul(Decimal::from(1000))
                .and_then(|us| us.trunc().to_i64())
                .ok_or_else(|| ApiError::bad(-1131, "recvWindow must be less than 60000"))?
        }
    };
    let now_us = now_ms.checked_mul(1000).ok_or_else(outside)?;
    let limit = now_us.checked_add(1_000_000).ok_or_else(ahead)?;
    if ts_us >= limit {
        return Err(ahead());
    }
    let age = now_us.checked_sub(ts_us).ok_or_else(outside)?;
    if age > rw_us {
        return Err(outside());
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
    const KEY: &str = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";

    fn hmac() -> SimAuth {
        SimAuth::Hmac(SecretString::from(SECRET))
    }

    #[test]
    fn accepts_vector_a_ascii_query() {
        let q = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559&signature=c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71";
        let (payload, sig) = rest_payload(q, "");
        assert_eq!(
            payload,
            "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
        );
        assert!(verify(&hmac(), payload.as_bytes(), &sig.unwrap_or_default()));
    }

    #[test]
    fn accepts_uppercase_hex_signature() {
        let q = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559";
        let sig = "C8DB56825AE71D6D79447849E617115F4A920FA2ACDCAB2B053C4B2838BD6B71";
        assert!(verify(&hmac(), q.as_bytes(), sig));
    }

    #[test]
    fn accepts_vector_b_percent_encoded_symbol_and_rejects_the_unencoded_form() {
        let q = "symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559&signature=e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3";
        let (payload, sig) = rest_payload(q, "");
        let sig = sig.unwrap_or_default();
        assert!(verify(&hmac(), payload.as_bytes(), &sig));
        let unencoded = "symbol=１２３４５６&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559";
        assert!(!verify(&hmac(), unencoded.as_bytes(), &sig));
    }

    #[test]
    fn accepts_vector_c_query_followed_by_body_without_separator() {
        let q = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC";
        let b = "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559&signature=0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77";
        let (payload, sig) = rest_payload(q, b);
        assert_eq!(
            payload,
            "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTCquantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
        );
        assert!(verify(&hmac(), payload.as_bytes(), &sig.unwrap_or_default()));
    }

    #[test]
    fn rejects_a_tampered_payload() {
        let q = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=2&price=0.1&recvWindow=5000&timestamp=1499827319559";
        assert!(!verify(
            &hmac(),
            q.as_bytes(),
            "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
        ));
        assert!(!verify(&hmac(), q.as_bytes(), "not-hex"));
    }

    #[test]
    fn accepts_the_ws_api_vector_with_sorted_unencoded_params() {
        let params = serde_json::json!({
            "symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC",
            "quantity": "0.01000000", "price": "52000.00", "recvWindow": 100,
            "timestamp": 1645423376532i64, "apiKey": KEY,
            "signature": "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"
        });
        let map = params.as_object().cloned().unwrap_or_default();
        let payload = ws_payload(&map);
        assert_eq!(
            payload,
            format!(
                "apiKey={KEY}&price=52000.00&quantity=0.01000000&recvWindow=100&side=SELL&symbol=BTCUSDT&timeInForce=GTC&timestamp=1645423376532&type=LIMIT"
            )
        );
        assert!(verify(
            &hmac(),
            payload.as_bytes(),
            "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"
        ));
    }

    #[test]
    fn accepts_the_session_logon_vector() {
        let params = serde_json::json!({"apiKey": KEY, "timestamp": 1649729878532i64});
        let payload = ws_payload(params.as_object().unwrap_or(&serde_json::Map::new()));
        assert!(verify(
            &hmac(),
            payload.as_bytes(),
            "1cf54395b336b0a9727ef27d5d98987962bc47aca6e13fe978612d0adee066ed"
        ));
    }

    #[test]
    fn verifies_ed25519_signatures_percent_encoded_or_not() {
        use ed25519_dalek::{Signer, SigningKey};
        let sk = SigningKey::from_bytes(&[7u8; 32]);
        let auth = SimAuth::Ed25519(sk.verifying_key().to_bytes());
        let payload = "symbol=BTCUSDT&timestamp=1";
        let sig = base64::engine::general_purpose::STANDARD.encode(sk.sign(payload.as_bytes()).to_bytes());
        let encoded: String = url::form_urlencoded::byte_serialize(sig.as_bytes()).collect();
        assert!(verify(&auth, payload.as_bytes(), &sig));
        assert!(verify(&auth, payload.as_bytes(), &encoded));
        assert!(!verify(&auth, b"symbol=BTCUSDT&timestamp=2", &sig));
    }

    #[test]
    fn timestamp_checks_follow_the_three_rules() {
        let now = 1_700_000_000_000i64;
        assert!(check_timestamp(Some(&now.to_string()), None, now).is_ok());
        let ahead = check_timestamp(Some(&(now + 1000).to_string()), None, now);
        assert_eq!(ahead.map_err(|e| e.code), Err(-1021));
        assert!(check_timestamp(Some(&(now + 999).to_string()), None, now).is_ok());
        let stale = check_timestamp(Some(&(now - 5001).to_string()), None, now);
        assert_eq!(stale.map_err(|e| e.code), Err(-1021));
        assert!(check_timestamp(Some(&(now - 5001).to_string()), Some("6000"), now).is_ok());
        let big = check_timestamp(Some(&now.to_string()), Some("60001"), now);
        assert_eq!(big.map_err(|e| e.code), Err(-1131));
        assert_eq!(check_timestamp(None, None, now).map_err(|e| e.code), Err(-1102));
        assert!(check_timestamp(Some(&((now - 100) * 1000).to_string()), Some("6000.346"), now).is_ok());
    }

    #[test]
    fn timestamps_whose_distance_overflows_are_outside_the_window() {
        let now = 1_700_000_000_000i64;
        for ts in [
            i64::MIN,
            i64::MIN + 1,
            -1,
            0,
            i64::MAX,
            i64::MAX - 999,
            now * 1000 + 1_000_000,
        ] {
            for rw in [None, Some("60000")] {
                let r = check_timestamp(Some(&ts.to_string()), rw, now);
                assert_eq!(r.map_err(|e| e.code), Err(-1021), "{ts} {rw:?}");
            }
        }
        let bad_windows = [
            ("0", -1131),
            ("-1", -1100),
            ("99999999999999999999", -1131),
            ("1.", -1100),
            ("60000.001", -1131),
            ("1e3", -1100),
            ("1.0001", -1111),
        ];
        for (rw, code) in bad_windows {
            let r = check_timestamp(Some(&now.to_string()), Some(rw), now);
            assert_eq!(r.map_err(|e| e.code), Err(code), "{rw}");
        }
    }
}
