//! Errors of the Binance client and the three-way outcome of an order request.
//!
//! Owns: `ClientError` (one variant per way a request can fail, timeouts distinct) and
//! `OrderOutcome`, which makes "we do not know whether the exchange acted" its own case so
//! that no caller can mistake it for a failure and resend. Must not: carry a secret, a
//! signature or a signed URL in any message.

use std::time::Duration;

use super::sign::SignError;

/// Codes whose meaning is "execution status unknown".
pub const UNKNOWN_CODES: [i64; 4] = [-1000, -1001, -1006, -1007];
/// `INVALID_TIMESTAMP`: the clock offset needs a refresh.
pub const CODE_INVALID_TIMESTAMP: i64 = -1021;
/// `NO_SUCH_ORDER` on a query.
pub const CODE_NO_SUCH_ORDER: i64 = -2013;
/// `CANCEL_REJECTED` ("Unknown order sent." — usually already terminal).
pub const CODE_CANCEL_REJECTED: i64 = -2011;

/// An epoch-ms time as UTC text, for messages.
fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| format!("{ms} (epoch ms)"))
}

/// A failed request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The exchange answered `{"code":…,"msg":…}` with a 4xx status.
    #[error("exchange refused the request (HTTP {http_status}, code {code}): {msg}")]
    Api {
        http_status: u16,
        code: i64,
        msg: String,
    },
    /// HTTP 429, or a client-side hold after one: only cancels go out until it passes.
    #[error("rate limited: retry after {retry_after:?}")]
    RateLimited { retry_after: Duration },
    /// HTTP 418: the IP is banned; nothing is sent until `until_ms` (epoch ms).
    #[error("IP banned by the exchange until {}; nothing is sent to it until then", utc(*until_ms))]
    Banned { until_ms: i64 },
    /// The client gave up waiting for an answer.
    #[error("request timed out")]
    Timeout,
    /// The connection could not be opened: the request never left.
    #[error("could not connect: {0}")]
    Connect(String),
    /// The connection failed after the request may have been sent.
    #[error("network error: {0}")]
    Network(String),
    /// A 5xx answer: the exchange may or may not have acted.
    #[error("exchange server error (HTTP {status}): {msg}")]
    Server5xx { status: u16, msg: String },
    /// The answer could not be read as the documented JSON.
    #[error("could not decode the exchange's answer: {0}")]
    Decode(String),
    #[error("could not sign the request: {0}")]
    Sign(#[from] SignError),
    #[error("this request needs API keys and none are configured")]
    NoCredentials,
    /// The exchange's clock and this machine's disagree by more than
    /// [`MAX_CLOCK_OFFSET_MS`](super::clock::MAX_CLOCK_OFFSET_MS): nothing signed is sent.
    #[error(
        "clock offset too large: the exchange's clock is {} ms {} this machine's (at most {} ms is accepted); set the system clock (e.g. `timedatectl set-ntp true`, chrony or ntpd) and check that BINANCE_REST_URL is the exchange you expect",
        offset_ms.unsigned_abs(),
        if *offset_ms >= 0 { "ahead of" } else { "behind" },
        super::clock::MAX_CLOCK_OFFSET_MS
    )]
    ClockOffset { offset_ms: i64 },
}

impl ClientError {
    /// The Binance error code, if the exchange sent one.
    pub fn code(&self) -> Option<i64> {
        match self {
            ClientError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// True when a GET may be retried automatically (transient, idempotent).
    pub fn is_retryable_for_get(&self) -> bool {
        match self {
            ClientError::Timeout
            | ClientError::Connect(_)
            | ClientError::Network(_)
            | ClientError::Server5xx { .. } => true,
            ClientError::Api { code, .. } => UNKNOWN_CODES.contains(code) || *code == -1008,
            _ => false,
        }
    }

    /// True when, for an order placement or cancel, this error leaves the outcome unknown:
    /// a 5xx, `-1000`, `-1001`, `-1006`, `-1007`, a client timeout, a connection dropped
    /// after sending, or an unreadable success answer.
    pub fn leaves_order_unknown(&self) -> bool {
        match self {
            ClientError::Server5xx { .. }
            | ClientError::Timeout
            | ClientError::Network(_)
            | ClientError::Decode(_) => true,
            ClientError::Api { code, .. } => UNKNOWN_CODES.contains(code),
            ClientError::RateLimited { .. }
            | ClientError::Banned { .. }
            | ClientError::Connect(_)
            | ClientError::Sign(_)
            | ClientError::NoCredentials
            | ClientError::ClockOffset { .. } => false,
        }
    }
}

/// What happened to an order placement or cancel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderOutcome<T> {
    /// The exchange acted and said so.
    Done(T),
    /// The exchange definitely did not act (or the request never left).
    Rejected(ClientError),
    /// The exchange may have acted. Never resend: reconcile with the user-data stream and
    /// `resolve_unknown`.
    Unknown { reason: String },
}

impl<T> OrderOutcome<T> {
    /// Sorts a request's result into the three outcomes.
    pub fn from_result(result: Result<T, ClientError>) -> Self {
        match result {
            Ok(v) => OrderOutcome::Done(v),
            Err(e) if e.leaves_order_unknown() => OrderOutcome::Unknown {
                reason: e.to_string(),
            },
            Err(e) => OrderOutcome::Rejected(e),
        }
    }

    pub fn is_unknown(&self) -> bool {
        matches!(self, OrderOutcome::Unknown { .. })
    }

    pub fn done(self) -> Option<T> {
        match self {
            OrderOutcome::Done(v) => Some(v),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: i64) -> ClientError {
        ClientError::Api {
            http_status: 400,
            code,
            msg: "m".into(),
        }
    }

    #[test]
    fn server_errors_timeouts_and_unknown_codes_leave_an_order_unknown() {
        for e in [
            ClientError::Server5xx {
                status: 503,
                msg: "x".into(),
            },
            ClientError::Timeout,
            ClientError::Network("reset".into()),
            ClientError::Decode("bad json".into()),
            api(-1000),
            api(-1001),
            api(-1006),
            api(-1007),
        ] {
            assert!(
                OrderOutcome::<()>::from_result(Err(e.clone())).is_unknown(),
                "{e}"
            );
        }
    }

    #[test]
    fn definite_refusals_are_rejections_not_unknowns() {
        for e in [
            api(-2010),
            api(-1013),
            api(-1021),
            api(-2011),
            ClientError::RateLimited {
                retry_after: Duration::from_secs(1),
            },
            ClientError::Banned { until_ms: 1 },
            ClientError::Connect("refused".into()),
        ] {
            assert!(
                matches!(
                    OrderOutcome::<()>::from_result(Err(e.clone())),
                    OrderOutcome::Rejected(_)
                ),
                "{e}"
            );
        }
    }

    #[test]
    fn only_transient_errors_are_retryable_for_gets() {
        assert!(ClientError::Timeout.is_retryable_for_get());
        assert!(api(-1007).is_retryable_for_get());
        assert!(!api(-1121).is_retryable_for_get());
        assert!(!ClientError::Banned { until_ms: 0 }.is_retryable_for_get());
        assert!(
            !ClientError::RateLimited {
                retry_after: Duration::ZERO
            }
            .is_retryable_for_get()
        );
    }
}
