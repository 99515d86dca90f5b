//! The decoded request at the engine's edge: its parameters with Binance's grammar for
//! decimals, integers and client ids, and the error a client is answered with.
//!
//! Owns: reading one parameter and the exact code and message of each malformed one. Must not:
//! know what an operation does with a parameter (that is the operation's module), or a
//! transport (query strings and WebSocket params both arrive here already decoded).

use rust_decimal::Decimal;
use serde_json::{Value, json};

/// An error answered to the client: HTTP status, Binance code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {msg}")]
pub struct ApiError {
    pub status: u16,
    pub code: i64,
    pub msg: String,
    /// A `data` object some errors carry (cancelReplace's partial failures).
    pub data: Option<Box<Value>>,
}

impl ApiError {
    pub fn new(status: u16, code: i64, msg: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            msg: msg.into(),
            data: None,
        }
    }
    pub fn bad(code: i64, msg: impl Into<String>) -> Self {
        Self::new(400, code, msg)
    }
    pub fn mandatory(name: &str) -> Self {
        Self::bad(
            -1102,
            format!("Mandatory parameter '{name}' was not sent, was empty/null, or malformed."),
        )
    }
    pub fn filter(name: &str) -> Self {
        Self::bad(-1013, format!("Filter failure: {name}"))
    }
    pub fn rejected(msg: &str) -> Self {
        Self::bad(-2010, msg)
    }
    pub fn insufficient() -> Self {
        Self::rejected("Account has insufficient balance for requested action.")
    }
    pub fn bad_symbol() -> Self {
        Self::bad(-1121, "Invalid symbol.")
    }
    pub fn to_json(&self) -> Value {
        match &self.data {
            None => json!({"code": self.code, "msg": self.msg}),
            Some(d) => json!({"code": self.code, "msg": self.msg, "data": d}),
        }
    }
}

/// Request parameters after decoding (query string first, then body; the first wins).
#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
    pub fn req(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name).ok_or_else(|| ApiError::mandatory(name))
    }
    /// A decimal parameter; `None` when absent.
    ///
    /// The grammar is Binance's own, `^([0-9]{1,20})(\.[0-9]{1,20})?$`, and at most 8
    /// significant decimals. Twenty integer digits keep every value far below `Decimal::MAX`
    /// (about 7.9e28), so a product of a parameter with a price or a quotient by a tick can be
    /// computed with checked arithmetic that does not fail for any value a client can send.
    pub fn dec(&self, name: &str) -> Result<Option<Decimal>, ApiError> {
        let Some(v) = self.get(name) else { return Ok(None) };
        let illegal = || {
            ApiError::bad(
                -1100,
                format!(
                    "Illegal characters found in parameter '{name}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'."
                ),
            )
        };
        let (int, frac) = match v.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (v, None),
        };
        let digits = |s: &str| (1..=20).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || frac.is_some_and(|f| !digits(f)) {
            return Err(illegal());
        }
        if frac.map(|f| f.trim_end_matches('0').len()).unwrap_or(0) > 8 {
            return Err(ApiError::bad(
                -1111,
                format!("Parameter '{name}' has too much precision."),
            ));
        }
        v.parse::<Decimal>().map(Some).map_err(|_| illegal())
    }
    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        let Some(v) = self.get(name) else { return Ok(None) };
        v.parse::<i64>().map(Some).map_err(|_| {
            ApiError::bad(
                -1100,
                format!(
                    "Illegal characters found in parameter '{name}'; legal range is '^(-?[0-9]{{1,19}})$'."
                ),
            )
        })
    }
}

/// `^[a-zA-Z0-9-_]{1,36}$`.
pub fn check_client_id(name: &str, v: &str) -> Result<(), ApiError> {
    let ok = !v.is_empty()
        && v.len() <= 36
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad(
            -1100,
            format!(
                "Illegal characters found in parameter '{name}'; legal range is '^[a-zA-Z0-9-_]{{1,36}}$'."
            ),
        ))
    }
}
