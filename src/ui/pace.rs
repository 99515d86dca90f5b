//! The pace of the market-detail panels: the selected symbol's order book and trade tape are
//! shown anew at most every `detail_interval` (twice a second by default), while prices, positions,
//! orders and everything else follow each snapshot at up to the frame rate.
//!
//! Why: those two panels change nearly every cell on each market step (the tape shifts every
//! row per trade, the book's sizes and cumulated sizes move together), so over SSH they were
//! 90 % of the bytes a moving market sent to a 160×48 terminal. A human reads a book or a
//! tape no faster than a few times a second; Binance's own book stream comes at 10 a second.
//!
//! The newest detail is never lost, only held: when it is held back, [`DetailPacer::due`]
//! says when it is to be shown, and the screen's loop wakes then even if no other snapshot
//! comes. A change of symbol, of the book's state (syncing, live) or of the tape's symbol is
//! shown at once, so the panels never show one symbol's levels under another's title.
//!
//! The pace of the frames themselves is here too ([`FramePace`]): when the screen may draw.
//!
//! Owns: which book and tape the screen draws, and when a frame is due. Must not: alter
//! anything but `Snapshot::focus.book` and `Snapshot::focus.trades` of the screen's own copy.

use std::time::Duration;

use tokio::time::Instant;

use crate::engine::snapshot::{BookView, Snapshot, TapeTrade};

/// How often the book and the tape are shown anew by default (`CRBOT_DETAIL_MS`): twice a
/// second. Measured at 160×48 with the local exchange's market moving (`benches/pty_bytes`):
/// 19.5 KB/s with every snapshot's, 17.3 KB/s at 250 ms, 11.1 KB/s at 500 ms.
pub const DETAIL_INTERVAL: Duration = Duration::from_millis(500);

/// The book and tape the screen shows, and the newer ones it holds back.
#[derive(Debug, Default)]
pub struct DetailPacer {
    /// When the shown detail was taken from a snapshot.
    shown_at: Option<Instant>,
    /// The newest detail not shown yet.
    held: Option<(BookView, Vec<TapeTrade>)>,
}

impl DetailPacer {
    /// Takes in a new snapshot `next`, which replaces `shown` (the one on screen). If the
    /// detail was shown less than `interval` ago and `next` is of the same symbol and book
    /// state, `next`'s book and tape are held back and `shown`'s are kept in it.
    pub fn arrive(&mut self, shown: &Snapshot, next: &mut Snapshot, interval: Duration, now: Instant) {
        let same = shown.focus.symbol == next.focus.symbol
            && shown.focus.book.status == next.focus.book.status
            && shown.focus.book.bids.is_empty() == next.focus.book.bids.is_empty()
            && shown.focus.book.asks.is_empty() == next.focus.book.asks.is_empty()
            && shown.focus.trades.is_empty() == next.focus.trades.is_empty();
        let recent = self.shown_at.is_some_and(|t| now < t + interval);
        if same && recent {
            let book = std::mem::replace(&mut next.focus.book, shown.focus.book.clone());
            let trades = std::mem::replace(&mut next.focus.trades, shown.focus.trades.clone());
            if next.focus.book != book || next.focus.trades != trades {
                self.held = Some((book, trades));
            } else {
                self.held = None;
            }
        } else {
            if shown.focus.book != next.focus.book || shown.focus.trades != next.focus.trades {
                self.shown_at = Some(now);
            }
            self.held = None;
        }
    }

    /// When the held detail is to be shown, if any is held.
    pub fn due(&self, interval: Duration) -> Option<Instant> {
        self.held.as_ref()?;
        Some(self.shown_at.map_or_else(Instant::now, |t| t + interval))
    }

    /// Puts the held detail into `snap` (the one on screen). True if there was one.
    pub fn release(&mut self, snap: &mut Snapshot, now: Instant) -> bool {
        match self.held.take() {
            Some((book, trades)) => {
                snap.focus.book = book;
                snap.focus.trades = trades;
                self.shown_at = Some(now);
                true
            }
            None => false,
        }
    }
}

/// When the screen may draw. Every frame waits `interval` after the last one's start, except
/// a new snapshot's: that waits `interval` after the last *snapshot's* frame (and a quarter of
/// it after any frame). The engine publishes just less often than `interval`, so each snapshot
/// is drawn as it arrives, and a frame drawn for a key between two snapshots does not shift
/// the screen's phase against the publisher (it did: the next snapshots then waited for the
/// key's frame interval, up to a whole one, the burst bench's tick-to-screen p99). Counted from
/// a draw's start, not its end, for the same reason. Snapshots come at most as often as they
/// are published, keys as a person types: the rate stays about the publisher's.
#[derive(Debug, Default)]
pub struct FramePace {
    last: Option<Instant>,
    last_snapshot: Option<Instant>,
    snapshot_pending: bool,
}

impl FramePace {
    /// When the next frame may be drawn, if one is wanted (`dirty`); `now` if none was drawn.
    pub fn due(&self, dirty: bool, interval: Duration, now: Instant) -> Option<Instant> {
        if !dirty {
            return None;
        }
        let Some(last) = self.last else {
            return Some(now);
        };
        let any = last + interval;
        if !self.snapshot_pending {
            return Some(any);
        }
        let snapshot = self
            .last_snapshot
            .map_or(last, |t| t + interval)
            .max(last + interval / 4);
        Some(any.min(snapshot))
    }

    pub fn snapshot_arrived(&mut self) {
        self.snapshot_pending = true;
    }

    /// A frame was drawn, its drawing started at `started`.
    pub fn drawn(&mut self, started: Instant) {
        self.last = Some(started);
        if std::mem::take(&mut self.snapshot_pending) {
            self.last_snapshot = Some(started);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Mode;
    use crate::domain::{Price, Qty};
    use crate::engine::snapshot::{BookLevel, BookStatus};
    use crate::engine::state::EngineState;
    use crate::risk::{Limits, TradingState};
    use rust_decimal::Decimal;

    fn snap(bid: i64, trades: usize) -> Snapshot {
        let mut s = EngineState::new(Mode::Sim, Limits::default(), TradingState::Active, 0).snapshot(0);
        s.focus.symbol = Some("BTCUSDT".parse().expect("symbol"));
        s.focus.book.status = BookStatus::Live;
        let level = BookLevel {
            price: Price::try_positive(Decimal::new(bid, 0)).expect("price"),
            qty: Qty::try_positive(Decimal::ONE).expect("qty"),
        };
        s.focus.book.bids = vec![level];
        s.focus.trades = (0..trades)
            .map(|i| TapeTrade {
                time_ms: i as i64,
                price: level.price,
                qty: level.qty,
                buyer_maker: false,
            })
            .collect();
        s
    }

    const I: Duration = Duration::from_millis(250);

    /// Follows the screen's loop: each arrival replaces what is shown.
    fn arrive(p: &mut DetailPacer, shown: &mut Snapshot, mut next: Snapshot, now: Instant) {
        p.arrive(shown, &mut next, I, now);
        *shown = next;
    }

    #[test]
    fn detail_within_the_interval_is_held_and_shown_when_due() {
        let t0 = Instant::now();
        let mut p = DetailPacer::default();
        let mut shown = snap(100, 1);
        arrive(&mut p, &mut shown, snap(101, 2), t0);
        assert_eq!(
            shown.focus.book.bids[0].price.value(),
            Decimal::new(101, 0),
            "first change shows"
        );
        assert_eq!(p.due(I), None);
        arrive(&mut p, &mut shown, snap(102, 3), t0 + Duration::from_millis(100));
        assert_eq!(
            shown.focus.book.bids[0].price.value(),
            Decimal::new(101, 0),
            "held back"
        );
        assert_eq!(shown.focus.trades.len(), 2);
        assert_eq!(p.due(I), Some(t0 + I));
        arrive(&mut p, &mut shown, snap(103, 4), t0 + Duration::from_millis(200));
        assert_eq!(shown.focus.book.bids[0].price.value(), Decimal::new(101, 0));
        assert!(p.release(&mut shown, t0 + I));
        assert_eq!(
            shown.focus.book.bids[0].price.value(),
            Decimal::new(103, 0),
            "the newest, not 102"
        );
        assert_eq!(shown.focus.trades.len(), 4);
        assert_eq!(p.due(I), None);
        assert!(!p.release(&mut shown, t0 + I));
    }

    #[test]
    fn after_the_interval_a_change_shows_at_once() {
        let t0 = Instant::now();
        let mut p = DetailPacer::default();
        let mut shown = snap(100, 1);
        arrive(&mut p, &mut shown, snap(101, 1), t0);
        arrive(&mut p, &mut shown, snap(102, 1), t0 + I);
        assert_eq!(shown.focus.book.bids[0].price.value(), Decimal::new(102, 0));
        assert_eq!(p.due(I), None);
    }

    #[test]
    fn a_new_symbol_or_book_state_shows_at_once() {
        let t0 = Instant::now();
        let mut p = DetailPacer::default();
        let mut shown = snap(100, 1);
        arrive(&mut p, &mut shown, snap(101, 1), t0);
        let mut other = snap(5, 0);
        other.focus.symbol = Some("ETHUSDT".parse().expect("symbol"));
        arrive(&mut p, &mut shown, other, t0 + Duration::from_millis(10));
        assert_eq!(shown.focus.book.bids[0].price.value(), Decimal::new(5, 0));
        assert!(shown.focus.trades.is_empty());
        let mut syncing = snap(5, 0);
        syncing.focus.symbol = Some("ETHUSDT".parse().expect("symbol"));
        syncing.focus.book.status = BookStatus::Syncing;
        syncing.focus.book.bids.clear();
        arrive(&mut p, &mut shown, syncing, t0 + Duration::from_millis(20));
        assert_eq!(shown.focus.book.status, BookStatus::Syncing);
        assert!(shown.focus.book.bids.is_empty());
        assert_eq!(p.due(I), None);
    }

    #[test]
    fn an_unchanged_detail_holds_nothing() {
        let t0 = Instant::now();
        let mut p = DetailPacer::default();
        let mut shown = snap(100, 1);
        arrive(&mut p, &mut shown, snap(101, 1), t0);
        arrive(&mut p, &mut shown, snap(101, 1), t0 + Duration::from_millis(50));
        assert_eq!(p.due(I), None);
        // A change held, then the engine goes back to what is shown: nothing left to show.
        arrive(&mut p, &mut shown, snap(102, 1), t0 + Duration::from_millis(60));
        assert!(p.due(I).is_some());
        arrive(&mut p, &mut shown, snap(101, 1), t0 + Duration::from_millis(70));
        assert_eq!(p.due(I), None);
    }

    const FRAME: Duration = Duration::from_millis(33);

    #[test]
    fn a_frame_waits_an_interval_from_the_last_ones_start_and_none_is_due_when_clean() {
        let t0 = Instant::now();
        let mut f = FramePace::default();
        assert_eq!(f.due(true, FRAME, t0), Some(t0), "the first frame at once");
        assert_eq!(f.due(false, FRAME, t0), None, "nothing to draw");
        f.drawn(t0);
        assert_eq!(f.due(true, FRAME, t0), Some(t0 + FRAME), "a key's redraw");
    }

    #[test]
    fn a_snapshot_waits_for_the_last_snapshots_frame_not_a_keys() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut f = FramePace::default();
        f.snapshot_arrived();
        f.drawn(t0);
        // A key redrew 20 ms later: its frame does not move the next snapshot's.
        f.drawn(t0 + ms(20));
        f.snapshot_arrived();
        assert_eq!(f.due(true, FRAME, t0), Some(t0 + FRAME));
        // That snapshot drawn on time, the next counts from its frame.
        f.drawn(t0 + FRAME);
        f.snapshot_arrived();
        assert_eq!(f.due(true, FRAME, t0), Some(t0 + FRAME * 2));
    }

    #[test]
    fn a_snapshot_comes_no_sooner_than_a_quarter_interval_after_any_frame() {
        let t0 = Instant::now();
        let mut f = FramePace::default();
        f.snapshot_arrived();
        f.drawn(t0);
        let key = t0 + Duration::from_millis(30);
        f.drawn(key);
        f.snapshot_arrived();
        assert_eq!(f.due(true, FRAME, t0), Some(key + FRAME / 4));
    }
}
