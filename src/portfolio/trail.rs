//! The recent mids of each symbol, kept so that a commission paid in a third asset (BNB) is
//! valued at the price in force *when the fill happened*, not at the quote crbot holds when it
//! learns of the fill. A fill often arrives after the market moved on: a resting order found
//! filled by a reconciliation, a user-data event behind a burst of quotes. Valuing its fee at
//! the newer quote drifts the fees and the realized P&L by the move, and a restart (which
//! replays the fee price journaled with the fill) cannot correct it.
//!
//! Owns: one short history per symbol of mid changes, each with when it was first and last
//! seen, bounded in length; the lookup "mid in force at time t". Must not: decide anything
//! else about quotes (the risk gate reads the current quote, not this).

use std::collections::{BTreeMap, VecDeque};

use crate::domain::{Price, Quote, Symbol};

/// Most mid changes kept per symbol: a busy book changes its mid many times a second, and the
/// trail must reach back further than a late fill (a reconciliation's) can be. A fill older
/// than the oldest change kept is valued by the rule for a fill with no history (the first
/// quote after it, if close enough in time).
pub const TRAIL_LEN: usize = 2048;

/// How far back the trail reaches at most: a change that a newer one replaced longer ago than
/// this is dropped (a quiet market keeps a few entries, not [`TRAIL_LEN`]).
pub const TRAIL_KEEP_MS: i64 = 120_000;

/// One mid, in force from `since_ms` (the first quote with it) and seen until `seen_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    since_ms: i64,
    seen_ms: i64,
    mid: Price,
}

/// The recent mids of every symbol crbot has quotes for.
#[derive(Debug, Clone, Default)]
pub struct QuoteTrail {
    by_symbol: BTreeMap<Symbol, VecDeque<Held>>,
}

impl QuoteTrail {
    /// Notes a quote. A quote older than the last one seen (a clock stepped back, or a late
    /// message) is left out: the trail stays in time order.
    pub fn observe(&mut self, symbol: &Symbol, quote: &Quote) {
        let mid = quote.mid();
        let t = quote.time_ms;
        let trail = match self.by_symbol.get_mut(symbol) {
            Some(trail) => trail,
            None => self.by_symbol.entry(symbol.clone()).or_default(),
        };
        match trail.back_mut() {
            Some(last) if t < last.seen_ms => {}
            Some(last) if last.mid == mid => last.seen_ms = t,
            _ => {
                // The front is needed while it was still in force within the horizon.
                let horizon = t.saturating_sub(TRAIL_KEEP_MS);
                while trail.len() >= TRAIL_LEN || trail.get(1).is_some_and(|next| next.since_ms <= horizon) {
                    trail.pop_front();
                }
                trail.push_back(Held {
                    since_ms: t,
                    seen_ms: t,
                    mid,
                });
            }
        }
    }

    /// The mid of `symbol` in force at `t_ms`: the last one first seen at or before `t_ms`,
    /// when a later change was seen or it was seen within `window_ms` of `t_ms`; with none
    /// seen at or before, the first one after if it came within `window_ms`. `None` when the
    /// trail cannot say (no quote near that time).
    pub fn mid_at(&self, symbol: &Symbol, t_ms: i64, window_ms: i64) -> Option<Price> {
        let trail = self.by_symbol.get(symbol)?;
        let after = trail.partition_point(|h| h.since_ms <= t_ms);
        let near = |a: i64, b: i64| a.checked_sub(b).is_some_and(|d| (0..=window_ms).contains(&d));
        match after.checked_sub(1).and_then(|i| trail.get(i)) {
            Some(held) if after < trail.len() || t_ms <= held.seen_ms || near(t_ms, held.seen_ms) => {
                Some(held.mid)
            }
            Some(_) => None,
            None => trail.front().filter(|h| near(h.since_ms, t_ms)).map(|h| h.mid),
        }
    }

    /// Changes kept for `symbol` (for tests and the memory bound).
    pub fn len(&self, symbol: &Symbol) -> usize {
        self.by_symbol.get(symbol).map_or(0, VecDeque::len)
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.by_symbol.values().all(VecDeque::is_empty)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A quote a cent wide around `mid`.
    fn quote_at(mid: &str, t: i64) -> Quote {
        use std::str::FromStr;
        let m = rust_decimal::Decimal::from_str(mid).unwrap_or_default();
        let half = rust_decimal::Decimal::new(5, 3);
        Quote {
            bid: Price::try_new(m - half).unwrap_or_else(|_| unreachable!("test mids are positive")),
            ask: Price::try_new(m + half).unwrap_or_else(|_| unreachable!("test mids are positive")),
            time_ms: t,
        }
    }

    fn bnb() -> Symbol {
        Symbol::new("BNBUSDT").unwrap()
    }

    fn px(s: &str) -> Option<Price> {
        Some(Price::try_new(s.parse().unwrap()).unwrap())
    }

    #[test]
    fn a_fill_between_two_changes_gets_the_mid_in_force_then_not_the_newer_one() {
        let mut t = QuoteTrail::default();
        t.observe(&bnb(), &quote_at("648.64", 1_000));
        t.observe(&bnb(), &quote_at("648.575", 1_300));
        assert_eq!(t.mid_at(&bnb(), 1_200, 5_000), px("648.64"));
        assert_eq!(t.mid_at(&bnb(), 1_300, 5_000), px("648.575"));
        assert_eq!(t.mid_at(&bnb(), 1_301, 5_000), px("648.575"));
    }

    #[test]
    fn an_unchanged_mid_holds_as_long_as_it_is_seen_and_a_window_beyond() {
        let mut t = QuoteTrail::default();
        t.observe(&bnb(), &quote_at("600", 1_000));
        t.observe(&bnb(), &quote_at("600", 60_000));
        assert_eq!(t.len(&bnb()), 1);
        assert_eq!(t.mid_at(&bnb(), 30_000, 5_000), px("600"));
        assert_eq!(t.mid_at(&bnb(), 65_000, 5_000), px("600"));
        // Nothing seen for longer than the window after the last quote: unknown.
        assert_eq!(t.mid_at(&bnb(), 65_001, 5_000), None);
    }

    #[test]
    fn a_fill_before_any_quote_takes_the_first_one_only_within_the_window() {
        let mut t = QuoteTrail::default();
        t.observe(&bnb(), &quote_at("600", 10_000));
        assert_eq!(t.mid_at(&bnb(), 5_000, 5_000), px("600"));
        assert_eq!(t.mid_at(&bnb(), 4_999, 5_000), None);
        assert_eq!(t.mid_at(&Symbol::new("ETHUSDT").unwrap(), 10_000, 5_000), None);
    }

    #[test]
    fn a_quote_older_than_the_last_seen_is_left_out() {
        let mut t = QuoteTrail::default();
        t.observe(&bnb(), &quote_at("600", 10_000));
        t.observe(&bnb(), &quote_at("500", 9_000));
        assert_eq!(t.len(&bnb()), 1);
        assert_eq!(t.mid_at(&bnb(), 9_500, 5_000), px("600"));
    }

    #[test]
    fn changes_replaced_longer_ago_than_the_horizon_are_dropped_and_the_one_in_force_stays() {
        let mut t = QuoteTrail::default();
        t.observe(&bnb(), &quote_at("600", 0));
        t.observe(&bnb(), &quote_at("601", 1_000));
        t.observe(&bnb(), &quote_at("602", 2_000));
        // Long after: 600 and 601 were replaced before the horizon; 602 was in force at it.
        t.observe(&bnb(), &quote_at("603", 2_000 + TRAIL_KEEP_MS + 1));
        assert_eq!(t.len(&bnb()), 2);
        assert_eq!(t.mid_at(&bnb(), 2_000 + TRAIL_KEEP_MS, 5_000), px("602"));
    }

    #[test]
    fn the_trail_is_bounded() {
        let mut t = QuoteTrail::default();
        for i in 0..(TRAIL_LEN as i64 + 50) {
            let mid = format!("{}", 600 + i);
            t.observe(&bnb(), &quote_at(&mid, i * 10));
        }
        assert_eq!(t.len(&bnb()), TRAIL_LEN);
        // The oldest changes are gone: an early fill is valued by the first kept, if near.
        assert_eq!(t.mid_at(&bnb(), 0, 100), None);
        assert_eq!(t.mid_at(&bnb(), 2_000, 5_000), px("800"));
    }
}
