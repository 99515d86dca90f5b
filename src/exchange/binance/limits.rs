//! Client-side rate limiting.
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

use crate::domain::broker::BrokerError;

/// Persists the ban-until time so a restart does not hammer a banned IP.
///
/// A ban belongs to the REST origin that answered 418 (Binance bans an IP at one exchange, not
/// everywhere): the client calls the `_for` methods with its origin. A store that keeps one
/// value for every origin may implement only `load`/`save`.
pub trait BanStore: Send + Sync + fmt::Debug {
    fn load(&self) -> Option<i64>;
    fn save(&self, until_ms: i64);
    /// The ban stored for `origin` (e.g. `https://api.binance.com`), if any.
    fn load_for(&self, origin: &str) -> Option<i64> {
        let _ = origin;
        self.load()
    }
    /// Stores the ban of `origin`; an `until_ms` in the past clears it.
    fn save_for(&self, origin: &str, until_ms: i64) {
        let _ = origin;
        self.save(until_ms);
    }
}

/// The longest ban Binance gives (bans scale from 2 minutes to 3 days): a longer one read from
/// a message or a file is a misreading, not a ban.
pub const MAX_BAN_MS: i64 = 3 * 86_400_000;
/// While a ban read from disk is in force, one request may go out this often to check it: a
/// stored ban can be wrong (another exchange, a misread time), and a kill switch silenced by a
/// wrong ban is worse than one extra request to a banned IP.
pub const STORED_BAN_PROBE_EVERY_MS: i64 = 30_000;

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
    Refuse(BrokerError),
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

/// Where the ban in force came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BanSource {
    /// A 418 answered to this process: nothing goes out until it ends.
    Observed,
    /// Read from disk at start-up: probed now and then (see [`STORED_BAN_PROBE_EVERY_MS`]).
    Stored,
}

/// The throttle: fixed-window counters per limit, a 429 hold and a 418 ban.
#[derive(Debug, Clone)]
pub struct RateGovernor {
    counters: Vec<Counter>,
    hold_until_ms: Option<i64>,
    banned_until_ms: Option<i64>,
    ban_source: BanSource,
    last_probe_ms: Option<i64>,
    /// Share of the weight budget non-cancel requests may use; the rest is kept for cancels.
    headroom_pct: u32,
}

impl RateGovernor {
    pub fn new(limits: Vec<RateLimit>) -> Self {
        let mut g = Self {
            counters: Vec::new(),
            hold_until_ms: None,
            banned_until_ms: None,
            ban_source: BanSource::Observed,
            last_probe_ms: None,
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
            if now_ms >= until {
                self.banned_until_ms = None;
            } else if self.ban_source == BanSource::Stored
                && self
                    .last_probe_ms
                    .is_none_or(|t| now_ms - t >= STORED_BAN_PROBE_EVERY_MS)
            {
                // One request checks a ban read from disk; its answer confirms the ban (418)
                // or lifts it (anything else, see `on_answer`).
                self.last_probe_ms = Some(now_ms);
            } else {
                return Admission::Refuse(BrokerError::Banned { until_ms: until });
            }
        }
        if let Some(until) = self.hold_until_ms {
            if now_ms < until {
                if class != RequestClass::Cancel {
                    return Admission::Refuse(BrokerError::RateLimited {
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

    /// A 418 answered to this process: stop all traffic until `until_ms`.
    pub fn on_ban(&mut self, until_ms: i64) {
        let until = match (self.ban_source, self.banned_until_ms) {
            (BanSource::Observed, Some(b)) => b.max(until_ms),
            _ => until_ms,
        };
        self.banned_until_ms = Some(until);
        self.ban_source = BanSource::Observed;
    }

    /// A ban-until read from disk at start-up: in force, but bounded to the longest ban
    /// Binance gives and probed now and then, since it may be wrong.
    pub fn on_stored_ban(&mut self, until_ms: i64, now_ms: i64) {
        if until_ms <= now_ms || self.banned_until_ms.is_some() {
            return;
        }
        self.banned_until_ms = Some(until_ms.min(now_ms.saturating_add(MAX_BAN_MS)));
        self.ban_source = BanSource::Stored;
    }

    /// The exchange answered something other than 418: the IP is not banned there, so a ban
    /// read from disk is lifted. Returns true when it was (the caller clears the stored one).
    /// An observed ban stays: a request that left before the 418 may still be answered after it.
    pub fn on_answer(&mut self) -> bool {
        if self.ban_source == BanSource::Stored && self.banned_until_ms.is_some() {
            self.banned_until_ms = None;
            return true;
        }
        false
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

/// The "banned until <ms>" of a 418's message (the exchange's clock), if it has one.
pub fn ban_time_in_message(msg: &str) -> Option<i64> {
    let rest = msg.split("until").nth(1)?;
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse::<i64>().ok()
}

/// The ban-until time of a 418, on the local clock, never more than [`MAX_BAN_MS`] away.
///
/// `Retry-After` is preferred: it is relative, so it does not depend on the two clocks
/// agreeing. The "banned until <ms>" in the message is the exchange's clock; it is used only
/// without the header and only when it lies in the future. With neither, the shortest
/// documented ban (2 minutes) is assumed rather than none.
pub fn ban_until_ms(now_ms: i64, retry_after_s: Option<u64>, msg: &str) -> i64 {
    let cap = now_ms.saturating_add(MAX_BAN_MS);
    if let Some(s) = retry_after_s {
        let ms = i64::try_from(s).unwrap_or(i64::MAX).saturating_mul(1000);
        return now_ms.saturating_add(ms).min(cap);
    }
    match ban_time_in_message(msg) {
        Some(until) if until > now_ms => until.min(cap),
        _ => now_ms.saturating_add(120_000),
    }
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
            Admission::Refuse(BrokerError::RateLimited { .. })
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
                Admission::Refuse(BrokerError::Banned { until_ms: 50_000 })
            );
        }
        assert_eq!(g.admit(RequestClass::Query, 1, 50_000), Admission::Go);
    }

    const NOW: i64 = 1_764_000_000_000;

    #[test]
    fn ban_until_prefers_retry_after_over_the_message() {
        let msg = format!(
            "Way too much request weight used; IP banned until {}.",
            NOW + 999_999
        );
        assert_eq!(ban_until_ms(NOW, Some(120), &msg), NOW + 120_000);
        assert_eq!(ban_until_ms(NOW, Some(120), "banned"), NOW + 120_000);
        assert_eq!(ban_until_ms(NOW, None, &msg), NOW + 999_999);
        assert_eq!(ban_until_ms(NOW, None, "?"), NOW + 120_000);
    }

    #[test]
    fn ban_until_is_never_more_than_three_days_away() {
        let far = "Way too much request weight used; IP banned until 2111643641190.";
        assert_eq!(ban_until_ms(NOW, None, far), NOW + MAX_BAN_MS);
        assert_eq!(ban_until_ms(NOW, Some(u64::MAX), "x"), NOW + MAX_BAN_MS);
        assert_eq!(
            ban_until_ms(NOW, Some(9_223_372_036_854_775), "x"),
            NOW + MAX_BAN_MS
        );
    }

    #[test]
    fn a_ban_time_in_the_past_is_not_taken_for_the_end_of_the_ban() {
        // The exchange's clock far behind ours ("until 0"): the shortest ban, not "until 0".
        assert_eq!(ban_until_ms(NOW, None, "IP banned until 0."), NOW + 120_000);
    }

    #[test]
    fn a_stored_ban_is_bounded_and_probed_but_an_observed_one_is_not() {
        let mut g = gov();
        g.on_stored_ban(2_111_643_641_190, NOW);
        assert_eq!(g.banned_until(), Some(NOW + MAX_BAN_MS));
        // One request goes out to check it; the next ones wait for its answer or the interval.
        assert_eq!(g.admit(RequestClass::Cancel, 1, NOW), Admission::Go);
        assert!(matches!(
            g.admit(RequestClass::Cancel, 1, NOW + 1),
            Admission::Refuse(BrokerError::Banned { .. })
        ));
        assert_eq!(
            g.admit(RequestClass::Query, 1, NOW + STORED_BAN_PROBE_EVERY_MS),
            Admission::Go
        );
        // Any answer but a 418 lifts it.
        assert!(g.on_answer());
        assert_eq!(g.banned_until(), None);
        assert_eq!(g.admit(RequestClass::Query, 1, NOW + 40_000), Admission::Go);

        // A 418 seen by this process is neither probed nor lifted by a late answer.
        g.on_ban(NOW + 60_000);
        assert!(matches!(
            g.admit(RequestClass::Cancel, 1, NOW + 40_001),
            Admission::Refuse(BrokerError::Banned { .. })
        ));
        assert!(!g.on_answer());
        assert_eq!(g.banned_until(), Some(NOW + 60_000));
    }

    #[test]
    fn absurd_retry_after_on_a_418_is_bounded_instead_of_overflowing() {
        let now = 1_770_000_000_000;
        // Binance bans last at most three days: a larger Retry-After is bounded to that.
        assert_eq!(
            ban_until_ms(now, Some(9_223_372_036_854_775), "banned"),
            now + MAX_BAN_MS
        );
        assert_eq!(ban_until_ms(now, Some(u64::MAX), "banned"), now + MAX_BAN_MS);
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
