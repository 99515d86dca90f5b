//! Rate limits of the local exchange: `REQUEST_WEIGHT` per minute and
//! `ORDERS` per 10 seconds and per day, counted in fixed windows aligned to the clock; a 429
//! with `Retry-After` over a limit, and a 418 ban for a client that keeps sending while told
//! to back off.
//!
//! Owns: the counters. Must not: know about HTTP; callers turn a `Refusal` into a response.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Limit values (small ones make tests quick).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimits {
    pub weight_per_minute: u64,
    pub orders_per_10s: u64,
    pub orders_per_day: u64,
    /// Length of the IP ban after a request during a 429 back-off, in ms.
    pub ban_ms: i64,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            weight_per_minute: 6000,
            orders_per_10s: 50,
            orders_per_day: 160_000,
            ban_ms: 120_000,
        }
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub code: i64,
    pub msg: String,
    pub retry_after_secs: i64,
    pub retry_after_ms: i64,
}

/// The counters (one IP and one account: the sim serves loopback).
#[derive(Debug, Clone, Default)]
pub struct RateState {
    pub limits: RateLimits,
    weight_window: i64,
    pub weight_used: u64,
    o10_window: i64,
    pub orders_10s: u64,
    day_window: i64,
    pub orders_day: u64,
    backoff_until: i64,
    /// Requests already answered 429 during the current back-off.
    backoff_strikes: u32,
    ban_until: i64,
}

/// Requests tolerated during a back-off (answered 429 again) before the ban. Binance bans for
/// *repeatedly* failing to back off; one request already in flight when the 429 was sent (a
/// concurrent cancel, say) is not that.
const BACKOFF_GRACE: u32 = 1;

fn ceil_secs(ms: i64) -> i64 {
    (ms.max(0) + 999) / 1000
}

impl RateState {
    pub fn new(limits: RateLimits) -> Self {
        RateState {
            limits,
            ..Default::default()
        }
    }

    fn roll(&mut self, now: i64) {
        let w = now - now.rem_euclid(60_000);
        if w != self.weight_window {
            self.weight_window = w;
            self.weight_used = 0;
        }
        let o = now - now.rem_euclid(10_000);
        if o != self.o10_window {
            self.o10_window = o;
            self.orders_10s = 0;
        }
        let d = now - now.rem_euclid(86_400_000);
        if d != self.day_window {
            self.day_window = d;
            self.orders_day = 0;
        }
    }

    fn ban(&self, now: i64) -> Refusal {
        Refusal {
            status: 418,
            code: -1003,
            msg: format!(
                "Way too much request weight used; IP banned until {}. Please use WebSocket Streams for live updates to avoid bans.",
                self.ban_until
            ),
            retry_after_secs: ceil_secs(self.ban_until - now),
            retry_after_ms: self.ban_until,
        }
    }

    /// Counts a request's weight. A request during a back-off turns into a ban.
    pub fn admit(&mut self, weight: u64, now: i64, forced_429: bool) -> Result<(), Refusal> {
        self.roll(now);
        if now < self.ban_until {
            return Err(self.ban(now));
        }
        if now < self.backoff_until {
            if self.backoff_strikes < BACKOFF_GRACE {
                self.backoff_strikes += 1;
                return Err(Refusal {
                    status: 429,
                    code: -1003,
                    msg: "Too many requests; back off until the Retry-After time, or the IP will be banned."
                        .to_string(),
                    retry_after_secs: ceil_secs(self.backoff_until - now).max(1),
                    retry_after_ms: self.backoff_until,
                });
            }
            self.ban_until = now + self.limits.ban_ms;
            return Err(self.ban(now));
        }
        self.backoff_strikes = 0;
        self.weight_used += weight;
        if forced_429 || self.weight_used > self.limits.weight_per_minute {
            let end = if forced_429 {
                now + 1000
            } else {
                self.weight_window + 60_000
            };
            self.backoff_until = end;
            return Err(Refusal {
                status: 429,
                code: -1003,
                msg: format!(
                    "Too much request weight used; current limit is {} request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.",
                    self.limits.weight_per_minute
                ),
                retry_after_secs: ceil_secs(end - now).max(1),
                retry_after_ms: end,
            });
        }
        Ok(())
    }

    /// Gives back the weight of a successful order request (it costs 0 since 2026-04-02).
    pub fn refund(&mut self, weight: u64) {
        self.weight_used = self.weight_used.saturating_sub(weight);
    }

    /// Counts `n` new orders; refuses with `-1015` over either window.
    pub fn admit_orders(&mut self, n: u64, now: i64) -> Result<(), Refusal> {
        self.roll(now);
        let (limit, name, end) = if self.orders_day + n > self.limits.orders_per_day {
            (self.limits.orders_per_day, "1 DAY", self.day_window + 86_400_000)
        } else if self.orders_10s + n > self.limits.orders_per_10s {
            (self.limits.orders_per_10s, "10 SECOND", self.o10_window + 10_000)
        } else {
            self.orders_10s += n;
            self.orders_day += n;
            return Ok(());
        };
        self.backoff_until = end;
        Err(Refusal {
            status: 429,
            code: -1015,
            msg: format!("Too many new orders; current limit is {limit} orders per {name}."),
            retry_after_secs: ceil_secs(end - now).max(1),
            retry_after_ms: end,
        })
    }

    /// `rateLimits` of exchangeInfo.
    pub fn exchange_info_json(&self) -> Value {
        json!([
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": self.limits.weight_per_minute},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": self.limits.orders_per_10s},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": self.limits.orders_per_day},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 300000}
        ])
    }

    /// Current counts, as `rateLimit/order` and the WebSocket API's `rateLimits` show them.
    pub fn orders_json(&mut self, now: i64) -> Value {
        self.roll(now);
        json!([
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": self.limits.orders_per_10s, "count": self.orders_10s},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": self.limits.orders_per_day, "count": self.orders_day}
        ])
    }

    pub fn weight_json(&mut self, now: i64) -> Value {
        self.roll(now);
        json!({"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
               "limit": self.limits.weight_per_minute, "count": self.weight_used})
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn small() -> RateState {
        RateState::new(RateLimits {
            weight_per_minute: 10,
            orders_per_10s: 2,
            orders_per_day: 5,
            ban_ms: 120_000,
        })
    }

    #[test]
    fn weight_over_the_minute_limit_gives_429_then_418() {
        let mut r = small();
        let t = 1_700_000_040_000;
        assert!(r.admit(10, t, false).is_ok());
        let e = r.admit(1, t + 1, false).err();
        assert_eq!(e.as_ref().map(|e| (e.status, e.code)), Some((429, -1003)));
        assert_eq!(e.map(|e| e.retry_after_secs), Some(60));
        let again = r.admit(1, t + 2, false).err();
        assert_eq!(
            again.map(|e| e.status),
            Some(429),
            "one request in flight is tolerated"
        );
        let ban = r.admit(1, t + 3, false).err();
        assert_eq!(ban.map(|e| e.status), Some(418));
    }

    #[test]
    fn weight_window_resets_on_the_minute() {
        let mut r = small();
        let t = 1_700_000_040_000; // a whole minute
        assert!(r.admit(10, t + 59_000, false).is_ok());
        assert!(r.admit(10, t + 60_000, false).is_ok());
    }

    #[test]
    fn orders_over_ten_seconds_give_1015() {
        let mut r = small();
        let t = 1_700_000_000_000;
        assert!(r.admit_orders(2, t).is_ok());
        assert_eq!(
            r.admit_orders(1, t).err().map(|e| (e.status, e.code)),
            Some((429, -1015))
        );
    }
}
