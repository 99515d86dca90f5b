//! Client-side rate limiting (binance-spot.md §5).
//!
//! Owns: the request-weight, raw-request and order-count budgets (seeded from
//! `exchangeInfo.rateLimits`, corrected from the `X-MBX-USED-WEIGHT-*` and
//! `X-MBX-ORDER-COUNT-*` headers), the hold after a 429 and the ban after a 418. Must not:
//! sleep, do I/O, or ever delay a cancel: cancels bypass every throttle so the kill switch
//! can always cut through; only a 418 ban stops them, because the exchange would refuse them
//! anyway and sending more extends the ban.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use super::error::ClientError;

/// Persists the ban-until time so a restart does not hammer a banned IP (the journal's meta
/// table implements this in the app).
pub trait BanStore: Send + Sync + fmt::Debug {
    fn load(&self) -> Option<i64>;
    fn save(&self, until_ms: i64);
}

/// A store that forgets (tests, one-shot commands before the journal is open).
#[derive(Debug, Default)]
pub struct NoBanStore;

impl BanStore for NoBanStore {
    fn load(&self) -> Option<i64> {
        None
    }
    fn save(&self, _until_ms: i64) {}
}

/// Which budget a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    RequestWeight,
    RawRequests,
    Orders,
}

/// One entry of `exchangeInfo.rateLimits`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    pub kind: LimitKind,
    pub interval_ms: i64,
    /// The header suffix, e.g. `1M`, `10S`, `1D`.
    pub label: String,
    pub limit: u32,
}

/// `exchangeInfo.rateLimits[]` as sent.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitWire {
    pub rate_limit_type: String,
    pub interval: String,
    pub interval_num: u32,
    pub limit: u32,
}

impl RateLimit {
    /// `None` for limiter types or intervals crbot does not know (ignored, not fatal).
    pub fn from_wire(w: &RateLimitWire) -> Option<RateLimit> {
        let kind = match w.rate_limit_type.as_str() {
            "REQUEST_WEIGHT" => LimitKind::RequestWeight,
            "RAW_REQUESTS" => LimitKind::RawRequests,
            "ORDERS" => LimitKind::Orders,
            _ => return None,
        };
        let (unit_ms, letter) = match w.interval.as_str() {
            "SECOND" => (1_000, 'S'),
            "MINUTE" => (60_000, 'M'),
            "HOUR" => (3_600_000, 'H'),
            "DAY" => (86_400_000, 'D'),
            _ => return None,
        };
        Some(RateLimit {
            kind,
            interval_ms: unit_ms * i64::from(w.interval_num.max(1)),
            label: format!("{}{letter}", w.interval_num),
            limit: w.limit,
        })
    }

    /// Binance's documented defaults, used until `exchangeInfo` has been read.
    pub fn defaults() -> Vec<RateLimit> {
        let l = |kind, interval_ms, label: &str, limit| RateLimit {
            kind,
            interval_ms,
            label: label.into(),
            limit,
        };
        vec![
            l(LimitKind::RequestWeight, 60_000, "1M", 6000),
            l(LimitKind::RawRequests, 300_000, "5M", 300_000),
            l(LimitKind::Orders, 10_000, "10S", 50),
            l(LimitKind::Orders, 86_400_000, "1D", 160_000),
        ]
    }
}

/// What a request is, for the throttle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestClass {
    /// Cancels: never delayed, allowed during a 429 hold.
    Cancel,
    /// New orders: count toward the ORDERS budgets.
    Order,
    /// Everything else.
    Query,
}

/// The throttle's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Go,
    /// Budget exhausted until the window rolls over.
    Wait(Duration),
    Refuse(ClientError),
}

#[derive(Debug, Clone)]
struct Counter {
    limit: RateLimit,
    window_start_ms: i64,
    used: u32,
}

impl Counter {
    fn roll(&mut self, now_ms: i64) {
        // Binance windows are fixed and aligned to the clock (a minute resets at :00).
        let start = now_ms - now_ms.rem_euclid(self.limit.interval_ms.max(1));
        if start != self.window_start_ms {
            self.window_start_ms = start;
            self.used = 0;
        }
    }

    fn until_reset(&self, now_ms: i64) -> Duration {
        let end = self.window_start_ms + self.limit.interval_ms;
        Duration::from_millis(u64::try_from((end - now_ms).max(1)).unwrap_or(1))
    }
}

/// Usage for the screen and `health`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateUsage {
    pub weight_used: u32,
    pub weight_limit: u32,
    pub orders_10s: u32,
    pub orders_10s_limit: u32,
    pub orders_1d: u32,
    pub orders_1d_limit: u32,
    /// A 429 hold is in force until this time (epoch ms).
    pub hold_until_ms: Option<i64>,
    /// A 418 ban is in force until this time (epoch ms).
    pub banned_until_ms: Option<i64>,
}

/// The throttle: fixed-window counters per limit, a 429 hold and a 418 ban.
#[derive(Debug, Clone)]
pub struct RateGovernor {
    counters: Vec<Counter>,
    hold_until_ms: Option<i64>,
    banned_until_ms: Option<i64>,
    /// Share of the weight budget non-cancel requests may use; the rest is kept for cancels.
    headroom_pct: u32,
}

impl RateGovernor {
    pub fn new(limits: Vec<RateLimit>) -> Self {
        let mut g = Self {
            counters: Vec::new(),
            hold_until_ms: None,
            banned_until_ms: None,
            headroom_pct: 90,
        };
        g.set_limits(limits);
        g
    }

    /// Replaces the budgets (after an `exchangeInfo` refresh), keeping current counts.
    pub fn set_limits(&mut self, limits: Vec<RateLimit>) {
        let old = std::mem::take(&mut self.counters);
        self.counters = limits
            .into_iter()
            .map(|limit| {
                let prev = old
                    .iter()
                    .find(|c| c.limit.kind == limit.kind && c.limit.label == limit.label);
                Counter {
                    window_start_ms: prev.map_or(0, |c| c.window_start_ms),
                    used: prev.map_or(0, |c| c.used),
                    limit,
                }
            })
            .collect();
    }

    /// Decides whether a request may go now, and if so counts it.
    pub fn admit(&mut self, class: RequestClass, weight: u32, now_ms: i64) -> Admission {
        if let Some(until) = self.banned_until_ms {
            if now_ms < until {
                return Admission::Refuse(ClientError::Banned { until_ms: until });
            }
            self.banned_until_ms = None;
        }
        if let Some(until) = self.hold_until_ms {
            if now_ms < until {
                if class != RequestClass::Cancel {
                    return Admission::Refuse(ClientError::RateLimited {
                        retry_after: Duration::from_millis(u64::try_from(until - now_ms).unwrap_or(0)),
                    });
                }
            } else {
                self.hold_until_ms = None;
            }
        }
        for c in &mut self.counters {
            c.roll(now_ms);
        }
        if class != RequestClass::Cancel {
            let headroom = self.headroom_pct;
            for c in &self.counters {
                let need = match c.limit.kind {
                    LimitKind::RequestWeight => weight,
                    LimitKind::RawRequests => 1,
                    LimitKind::Orders if class == RequestClass::Order => 1,
                    LimitKind::Orders => 0,
                };
                let budget = match c.limit.kind {
                    LimitKind::RequestWeight => c.limit.limit.saturating_mul(headroom) / 100,
                    _ => c.limit.limit,
                };
                if need > 0 && c.used.saturating_add(need) > budget {
                    return Admission::Wait(c.until_reset(now_ms));
                }
            }
        }
        for c in &mut self.counters {
            let add = match c.limit.kind {
                LimitKind::RequestWeight => weight,
                LimitKind::RawRequests => 1,
                LimitKind::Orders if class == RequestClass::Order => 1,
                LimitKind::Orders => 0,
            };
            c.used = c.used.saturating_add(add);
        }
        Admission::Go
    }

    /// Corrects the counters from the response headers (names compared case-insensitively).
    pub fn observe_header(&mut self, name: &str, value: &str, now_ms: i64) {
        let name = name.to_ascii_lowercase();
        let (kind, label) = if let Some(l) = name.strip_prefix("x-mbx-used-weight-") {
            (LimitKind::RequestWeight, l)
        } else if let Some(l) = name.strip_prefix("x-mbx-order-count-") {
            (LimitKind::Orders, l)
        } else {
            return;
        };
        let Ok(used) = value.trim().parse::<u32>() else {
            return;
        };
        let label = label.to_ascii_uppercase();
        for c in &mut self.counters {
            if c.limit.kind == kind && c.limit.label == label {
                c.roll(now_ms);
                c.used = used;
            }
        }
    }

    /// A 429: hold everything but cancels for `retry_after`.
    pub fn on_429(&mut self, retry_after: Duration, now_ms: i64) {
        // Retry-After comes from the server: an absurd value holds "forever", never overflows.
        let until = now_ms.saturating_add(i64::try_from(retry_after.as_millis()).unwrap_or(i64::MAX));
        self.hold_until_ms = Some(self.hold_until_ms.map_or(until, |h| h.max(until)));
    }

    /// A 418 (or a ban-until loaded at start-up): stop all traffic until `until_ms`.
    pub fn on_ban(&mut self, until_ms: i64) {
        self.banned_until_ms = Some(self.banned_until_ms.map_or(until_ms, |b| b.max(until_ms)));
    }

    pub fn banned_until(&self) -> Option<i64> {
        self.banned_until_ms
    }

    pub fn usage(&self, now_ms: i64) -> RateUsage {
        let mut u = RateUsage {
            hold_until_ms: self.hold_until_ms.filter(|&t| t > now_ms),
            banned_until_ms: self.banned_until_ms.filter(|&t| t > now_ms),
            ..RateUsage::default()
        };
        for c in &self.counters {
            let mut c = c.clone();
            c.roll(now_ms);
            match (c.limit.kind, c.limit.label.as_str()) {
                (LimitKind::RequestWeight, "1M") => {
                    u.weight_used = c.used;
                    u.weight_limit = c.limit.limit;
                }
                (LimitKind::Orders, "10S") => {
                    u.orders_10s = c.used;
                    u.orders_10s_limit = c.limit.limit;
                }
                (LimitKind::Orders, "1D") => {
                    u.orders_1d = c.used;
                    u.orders_1d_limit = c.limit.limit;
                }
                _ => {}
            }
        }
        u
    }
}

/// The ban-until time of a 418: the later of `Retry-After` and the "banned until <ms>" in the
/// message.
pub fn ban_until_ms(now_ms: i64, retry_after_s: Option<u64>, msg: &str) -> i64 {
    // Saturating: an absurd Retry-After is a ban without end, not an arithmetic overflow.
    let from_header = retry_after_s.map(|s| {
        let ms = i64::try_from(s).unwrap_or(i64::MAX).saturating_mul(1000);
        now_ms.saturating_add(ms)
    });
    let from_msg = msg.split("until").nth(1).and_then(|rest| {
        let digits: String = rest
            .trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse::<i64>().ok()
    });
    // With neither, assume the shortest documented ban (2 minutes) rather than none.
    from_header
        .max(from_msg)
        .unwrap_or(now_ms.saturating_add(120_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gov() -> RateGovernor {
        RateGovernor::new(vec![
            RateLimit {
                kind: LimitKind::RequestWeight,
                interval_ms: 60_000,
                label: "1M".into(),
                limit: 100,
            },
            RateLimit {
                kind: LimitKind::Orders,
                interval_ms: 10_000,
                label: "10S".into(),
                limit: 2,
            },
        ])
    }

    #[test]
    fn limits_parse_from_exchange_info() {
        let w: RateLimitWire = serde_json::from_str(
            r#"{"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":50}"#,
        )
        .expect("json");
        let l = RateLimit::from_wire(&w).expect("known");
        assert_eq!(
            (l.kind, l.interval_ms, l.label.as_str(), l.limit),
            (LimitKind::Orders, 10_000, "10S", 50)
        );
        let unknown = RateLimitWire {
            rate_limit_type: "CONNECTIONS".into(),
            interval: "MINUTE".into(),
            interval_num: 1,
            limit: 1,
        };
        assert_eq!(RateLimit::from_wire(&unknown), None);
    }

    #[test]
    fn weight_budget_keeps_headroom_for_cancels_and_waits_for_the_window() {
        let mut g = gov();
        let t = 120_000; // start of a minute
        assert_eq!(g.admit(RequestClass::Query, 80, t), Admission::Go);
        assert_eq!(
            g.admit(RequestClass::Query, 20, t + 1000),
            Admission::Wait(Duration::from_millis(59_000))
        );
        // Cancels are never delayed, even past the headroom.
        assert_eq!(g.admit(RequestClass::Cancel, 15, t + 1000), Admission::Go);
        // New window.
        assert_eq!(g.admit(RequestClass::Query, 20, t + 60_000), Admission::Go);
    }

    #[test]
    fn headers_correct_the_local_count() {
        let mut g = gov();
        g.observe_header("X-MBX-USED-WEIGHT-1M", "89", 0);
        assert_eq!(g.usage(0).weight_used, 89);
        assert_eq!(
            g.admit(RequestClass::Query, 2, 10),
            Admission::Wait(Duration::from_millis(59_990))
        );
        g.observe_header("x-mbx-order-count-10s", "2", 10);
        assert_eq!(g.usage(10).orders_10s, 2);
    }

    #[test]
    fn order_budget_applies_only_to_new_orders() {
        let mut g = gov();
        assert_eq!(g.admit(RequestClass::Order, 1, 0), Admission::Go);
        assert_eq!(g.admit(RequestClass::Order, 1, 0), Admission::Go);
        assert!(matches!(g.admit(RequestClass::Order, 1, 0), Admission::Wait(_)));
        assert_eq!(g.admit(RequestClass::Query, 1, 0), Admission::Go);
    }

    #[test]
    fn after_429_only_cancels_pass_until_retry_after() {
        let mut g = gov();
        g.on_429(Duration::from_secs(3), 1_000);
        assert!(matches!(
            g.admit(RequestClass::Query, 1, 2_000),
            Admission::Refuse(ClientError::RateLimited { .. })
        ));
        assert!(matches!(
            g.admit(RequestClass::Order, 1, 2_000),
            Admission::Refuse(_)
        ));
        assert_eq!(g.admit(RequestClass::Cancel, 1, 2_000), Admission::Go);
        assert_eq!(g.usage(2_000).hold_until_ms, Some(4_000));
        assert_eq!(g.admit(RequestClass::Query, 1, 4_000), Admission::Go);
    }

    #[test]
    fn a_ban_stops_everything_including_cancels() {
        let mut g = gov();
        g.on_ban(50_000);
        for class in [RequestClass::Cancel, RequestClass::Order, RequestClass::Query] {
            assert_eq!(
                g.admit(class, 1, 10_000),
                Admission::Refuse(ClientError::Banned { until_ms: 50_000 })
            );
        }
        assert_eq!(g.admit(RequestClass::Query, 1, 50_000), Admission::Go);
    }

    #[test]
    fn ban_until_takes_the_later_of_header_and_message() {
        assert_eq!(
            ban_until_ms(
                1_000,
                Some(120),
                "Way too much request weight used; IP banned until 999999."
            ),
            999_999
        );
        assert_eq!(ban_until_ms(1_000, Some(120), "banned"), 121_000);
        assert_eq!(ban_until_ms(1_000, None, "?"), 121_000);
    }

    #[test]
    fn absurd_retry_after_on_a_418_saturates_instead_of_overflowing() {
        let now = 1_770_000_000_000;
        assert_eq!(ban_until_ms(now, Some(9_223_372_036_854_775), "banned"), i64::MAX);
        assert_eq!(ban_until_ms(now, Some(u64::MAX), "banned"), i64::MAX);
        assert_eq!(ban_until_ms(i64::MAX, None, "banned"), i64::MAX);
    }

    #[test]
    fn absurd_retry_after_on_a_429_saturates_instead_of_overflowing() {
        let now = 1_770_000_000_000;
        let mut g = gov();
        g.on_429(Duration::from_secs(9_223_372_036_854_775), now);
        assert_eq!(g.usage(now).hold_until_ms, Some(i64::MAX));
        assert_eq!(g.admit(RequestClass::Cancel, 1, now), Admission::Go);
    }
}
