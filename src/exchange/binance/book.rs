//! A local order book kept from the `@depth` diff stream, by Binance's documented procedure
//! ("How to manage a local order book correctly"): buffer the diffs, take a REST snapshot,
//! drop what the snapshot already holds, check that every diff continues the last one, and
//! start again on a gap.
//!
//! Owns: the levels of one symbol's book, its update id and the diffs buffered before a
//! snapshot. Must not: do I/O or read a clock — the owner fetches the snapshot when
//! [`Feed::NeedSnapshot`] or [`Loaded::Again`] says so, and hands it in.
//!
//! The rules, with `id` the book's update id once it is live:
//! - before a snapshot, every diff is buffered (the oldest dropped past [`BUFFER_CAP`]);
//! - a snapshot older than the first buffered diff (`lastUpdateId < U`) is refused: fetch again;
//! - buffered diffs with `u <= lastUpdateId` are dropped; the first one left must hold
//!   `lastUpdateId + 1` in `[U; u]`, else the snapshot is refused the same way;
//! - live, a diff with `u <= id` is old and ignored; one with `U > id + 1` is a gap: the book is
//!   thrown away and buffering starts again from that diff; any other is applied (quantity zero
//!   removes the level) and `id := u`.
//!
//! [`Resync`] decides when a snapshot read that failed is tried again (doubling waits, capped)
//! and which failures are worth saying; the REST client's rate-limit guard decides whether a
//! read may go out at all (`BinanceRest::depth_when_allowed`).

use std::collections::VecDeque;
use std::time::Duration;

use rust_decimal::Decimal;

use super::wire::Depth;
use crate::domain::{Price, Qty};

/// Diffs kept while waiting for a snapshot (ten per second: well over a minute of them).
pub const BUFFER_CAP: usize = 1000;
/// Levels kept per side: the farthest from the touch go first (the snapshot asks for 1000;
/// diffs add levels as they change, which would otherwise grow without end).
pub const MAX_LEVELS: usize = 5000;

/// One `depthUpdate`: the update ids it spans and the levels it sets (quantity zero removes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepthDiff {
    /// `U`: the first update id in the event.
    pub first_id: u64,
    /// `u`: the final update id in the event.
    pub last_id: u64,
    pub bids: Vec<(Decimal, Decimal)>,
    pub asks: Vec<(Decimal, Decimal)>,
}

/// What a diff did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// Buffered while there is no snapshot; the first buffered diff asks for one.
    NeedSnapshot,
    Buffered,
    Applied,
    /// Already in the book (`u <= id`).
    Ignored,
    /// `U > id + 1`: updates were missed. The book is gone and the diff is buffered: fetch a
    /// new snapshot.
    Gap {
        expected: u64,
        got: u64,
    },
}

/// What a snapshot did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loaded {
    /// The book is live from it (and the buffered diffs after it).
    Live,
    /// Too old for the buffered diffs, or not continued by them: fetch again.
    Again,
    /// The book was already live: this answer came late and is not needed.
    Unneeded,
}

/// A level's price as the book's key: the value split into its integer part and its fraction
/// written with 28 decimals, so that two keys compare as plain integers do and equal values
/// at different scales are the same key. A diff's level is found among thousands by a dozen
/// comparisons, and `Decimal`'s own comparison (not inlined; sign checks, then a rescale in
/// 32-bit steps whenever the scales differ) was the largest cost of applying a diff. The
/// scales do differ in every live book: the REST snapshot's prices are [`Price`]s, stored
/// normalised (`97250` has scale 0, `97250.01` scale 2), while the diffs' prices are as
/// Binance writes them (`97250.00000000`, scale 8).
///
/// Exact for every `Decimal`: the mantissa is below 2^96 and the scale at most 28, so the
/// whole part fits an i128 and the fraction, below 10^28, does too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct PriceKey {
    whole: i128,
    /// In `[0; 10^28)`: the part below one, in units of 10^-28 (floored, so a negative price
    /// has a whole part one lower and a positive fraction, and the order still holds).
    fraction: i128,
}

/// `10^n` for every scale a [`Decimal`] can have (0 to 28).
const POW10: [i128; 29] = {
    let mut p = [1i128; 29];
    let mut i = 1;
    while i < 29 {
        p[i] = p[i - 1] * 10;
        i += 1;
    }
    p
};

impl PriceKey {
    fn of(price: Decimal) -> PriceKey {
        // A Decimal's scale is at most 28: the indexes stay inside POW10.
        let scale = (price.scale() as usize).min(28);
        let unit = POW10[scale];
        let m = price.mantissa();
        PriceKey {
            whole: m.div_euclid(unit),
            fraction: m.rem_euclid(unit) * POW10[28 - scale],
        }
    }
}

/// One side of the book: its levels in ascending price order, with their keys beside them for
/// the search. Two double-ended queues, not a map: a diff mostly changes levels near the touch,
/// which sits at one end of the queue (the bids' highest, the asks' lowest), so an insert or a
/// removal moves few entries, and a search over contiguous keys is cheaper than a tree's walk.
#[derive(Debug, Clone, Default)]
struct Side {
    keys: VecDeque<PriceKey>,
    /// `(price, quantity)`, in the order of `keys`; no quantity is zero.
    levels: VecDeque<(Decimal, Decimal)>,
}

impl Side {
    /// A side from a snapshot's levels, in any order: zero quantities left out, a price given
    /// twice kept at its last quantity.
    fn from_levels(levels: impl Iterator<Item = (Decimal, Decimal)>) -> Side {
        let mut keyed: Vec<(PriceKey, (Decimal, Decimal))> = levels
            .filter(|(_, q)| !q.is_zero())
            .map(|(p, q)| (PriceKey::of(p), (p, q)))
            .collect();
        // Stable: among equal prices the input's order stays, so the last one is the last.
        keyed.sort_by_key(|(k, _)| *k);
        let mut side = Side::default();
        for (key, level) in keyed {
            if side.keys.back() == Some(&key) {
                if let Some(last) = side.levels.back_mut() {
                    *last = level;
                }
            } else {
                side.keys.push_back(key);
                side.levels.push_back(level);
            }
        }
        side
    }

    /// Sets a level's quantity; zero removes it.
    fn set(&mut self, price: Decimal, qty: Decimal) {
        let key = PriceKey::of(price);
        match self.keys.binary_search(&key) {
            Ok(i) if qty.is_zero() => {
                self.keys.remove(i);
                self.levels.remove(i);
            }
            Ok(i) => {
                if let Some(level) = self.levels.get_mut(i) {
                    level.1 = qty;
                }
            }
            Err(_) if qty.is_zero() => {}
            Err(i) => {
                self.keys.insert(i, key);
                self.levels.insert(i, (price, qty));
            }
        }
    }

    fn len(&self) -> usize {
        self.keys.len()
    }

    fn pop_lowest(&mut self) {
        self.keys.pop_front();
        self.levels.pop_front();
    }

    fn pop_highest(&mut self) {
        self.keys.pop_back();
        self.levels.pop_back();
    }

    fn clear(&mut self) {
        self.keys.clear();
        self.levels.clear();
    }
}

/// One symbol's local order book.
#[derive(Debug, Clone, Default)]
pub struct LocalBook {
    bids: Side,
    asks: Side,
    /// The update id of the book; `None` until a snapshot made it live.
    id: Option<u64>,
    buffer: VecDeque<DepthDiff>,
}

impl LocalBook {
    pub fn new() -> LocalBook {
        LocalBook::default()
    }

    pub fn is_live(&self) -> bool {
        self.id.is_some()
    }

    pub fn update_id(&self) -> Option<u64> {
        self.id
    }

    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// A diff from the stream.
    pub fn on_diff(&mut self, diff: DepthDiff) -> Feed {
        let Some(id) = self.id else {
            let first = self.buffer.is_empty();
            self.buffer.push_back(diff);
            while self.buffer.len() > BUFFER_CAP {
                self.buffer.pop_front();
            }
            return if first { Feed::NeedSnapshot } else { Feed::Buffered };
        };
        if diff.last_id <= id {
            return Feed::Ignored;
        }
        if diff.first_id > id + 1 {
            let got = diff.first_id;
            self.reset();
            self.buffer.push_back(diff);
            return Feed::Gap {
                expected: id + 1,
                got,
            };
        }
        self.apply(&diff);
        Feed::Applied
    }

    /// The REST snapshot (`GET /api/v3/depth`).
    pub fn on_snapshot(&mut self, depth: &Depth) -> Loaded {
        if self.id.is_some() {
            return Loaded::Unneeded;
        }
        let snap_id = depth.last_update_id;
        if self.buffer.front().is_some_and(|d| snap_id < d.first_id) {
            return Loaded::Again;
        }
        while self.buffer.front().is_some_and(|d| d.last_id <= snap_id) {
            self.buffer.pop_front();
        }
        if self.buffer.front().is_some_and(|d| d.first_id > snap_id + 1) {
            return Loaded::Again;
        }
        let side =
            |levels: &[(Price, Qty)]| Side::from_levels(levels.iter().map(|(p, q)| (p.value(), q.value())));
        self.bids = side(&depth.bids);
        self.asks = side(&depth.asks);
        self.id = Some(snap_id);
        let mut buffered = std::mem::take(&mut self.buffer);
        while let Some(diff) = buffered.pop_front() {
            // A gap inside the buffer leaves the book buffering again from it, the later
            // diffs kept behind it.
            if let Feed::Gap { .. } = self.on_diff(diff) {
                self.buffer.extend(buffered);
                return Loaded::Again;
            }
        }
        Loaded::Live
    }

    /// Throws the book away and buffers again (a gap, or the stream reconnected).
    pub fn reset(&mut self) {
        self.bids.clear();
        self.asks.clear();
        self.id = None;
        self.buffer.clear();
    }

    fn apply(&mut self, diff: &DepthDiff) {
        for (side, levels) in [(&mut self.bids, &diff.bids), (&mut self.asks, &diff.asks)] {
            for (p, q) in levels {
                side.set(*p, *q);
            }
        }
        self.id = Some(diff.last_id);
        while self.bids.len() > MAX_LEVELS {
            self.bids.pop_lowest();
        }
        while self.asks.len() > MAX_LEVELS {
            self.asks.pop_highest();
        }
    }

    /// The best `n` bids, highest first (empty while not live).
    pub fn bids(&self, n: usize) -> Vec<(Decimal, Decimal)> {
        self.bids.levels.iter().rev().take(n).copied().collect()
    }

    /// The best `n` asks, lowest first (empty while not live).
    pub fn asks(&self, n: usize) -> Vec<(Decimal, Decimal)> {
        self.asks.levels.iter().take(n).copied().collect()
    }
}

/// The first wait after a failed snapshot read.
pub const RESYNC_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between two snapshot reads that fail.
pub const RESYNC_MAX: Duration = Duration::from_secs(30);

/// When to read the REST snapshot again after failed reads, and what to say about them: the
/// wait doubles from [`RESYNC_FIRST`] up to [`RESYNC_MAX`], with no jitter (one client reads
/// one book at a time: there is no crowd to spread out, and tests see exact waits). The owner
/// says the first failure out loud and the repeats quietly, then the count in one line when
/// a read succeeds again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resync {
    failures: u32,
    first_error: Option<String>,
}

/// What the owner says about a failed read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failed {
    /// The first since the last success: say it (a warning).
    First { wait: Duration },
    /// Another one: quietly (a debug line), with how many so far.
    Again { failures: u32, wait: Duration },
}

impl Failed {
    /// How long to wait before reading again.
    pub fn wait(&self) -> Duration {
        match self {
            Failed::First { wait } | Failed::Again { wait, .. } => *wait,
        }
    }
}

/// The reads failed this many times (the first one's error with it), then one succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    pub failures: u32,
    pub first_error: String,
}

impl Resync {
    /// A read failed with `error`: how long to wait before the next, and how to say it.
    pub fn on_failure(&mut self, error: &str) -> Failed {
        self.failures = self.failures.saturating_add(1);
        let wait = self.wait();
        if self.first_error.is_none() {
            self.first_error = Some(error.to_string());
            Failed::First { wait }
        } else {
            Failed::Again {
                failures: self.failures,
                wait,
            }
        }
    }

    /// A read succeeded: the failures before it, if any, once.
    pub fn on_success(&mut self) -> Option<Recovered> {
        let failures = std::mem::take(&mut self.failures);
        self.first_error.take().map(|first_error| Recovered {
            failures,
            first_error,
        })
    }

    /// The wait before the next read: none after a success, else doubling with each failure
    /// from [`RESYNC_FIRST`] to at most [`RESYNC_MAX`].
    pub fn wait(&self) -> Duration {
        if self.failures == 0 {
            return Duration::ZERO;
        }
        let doublings = (self.failures - 1).min(16);
        RESYNC_FIRST.saturating_mul(1 << doublings).min(RESYNC_MAX)
    }

    /// Failed reads since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::{Price, Qty};
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn d(n: i64) -> Decimal {
        Decimal::from(n)
    }

    fn diff(first: u64, last: u64, bids: &[(i64, i64)], asks: &[(i64, i64)]) -> DepthDiff {
        let levels = |l: &[(i64, i64)]| l.iter().map(|(p, q)| (d(*p), d(*q))).collect();
        DepthDiff {
            first_id: first,
            last_id: last,
            bids: levels(bids),
            asks: levels(asks),
        }
    }

    fn snapshot(id: u64, bids: &[(i64, i64)], asks: &[(i64, i64)]) -> Depth {
        let levels = |l: &[(i64, i64)]| {
            l.iter()
                .map(|(p, q)| (Price::try_new(d(*p)).unwrap(), Qty::try_new(d(*q)).unwrap()))
                .collect()
        };
        Depth {
            last_update_id: id,
            bids: levels(bids),
            asks: levels(asks),
        }
    }

    #[test]
    fn buffers_until_the_snapshot_then_applies_only_what_follows_it() {
        let mut b = LocalBook::new();
        assert_eq!(b.on_diff(diff(90, 95, &[(10, 9)], &[])), Feed::NeedSnapshot);
        assert_eq!(b.on_diff(diff(96, 101, &[(10, 1)], &[(12, 3)])), Feed::Buffered);
        assert_eq!(b.on_diff(diff(102, 104, &[(9, 0)], &[])), Feed::Buffered);
        assert!(b.bids(5).is_empty(), "no levels before a snapshot");
        assert_eq!(
            b.on_snapshot(&snapshot(100, &[(10, 5), (9, 2)], &[(11, 4)])),
            Loaded::Live
        );
        // The first diff (u = 95 <= 100) was dropped; 96..101 spans 101 and applies; 102 follows.
        assert_eq!(b.update_id(), Some(104));
        assert_eq!(b.bids(5), vec![(d(10), d(1))], "9 removed by a zero quantity");
        assert_eq!(b.asks(5), vec![(d(11), d(4)), (d(12), d(3))]);
        assert_eq!(b.on_diff(diff(100, 104, &[(8, 1)], &[])), Feed::Ignored);
        assert_eq!(b.on_diff(diff(105, 105, &[(8, 1)], &[])), Feed::Applied);
        assert_eq!(b.bids(1), vec![(d(10), d(1))], "best first");
    }

    #[test]
    fn a_snapshot_older_than_the_first_buffered_diff_is_fetched_again() {
        let mut b = LocalBook::new();
        b.on_diff(diff(200, 205, &[], &[]));
        assert_eq!(b.on_snapshot(&snapshot(150, &[(1, 1)], &[])), Loaded::Again);
        assert!(!b.is_live());
        assert_eq!(b.on_snapshot(&snapshot(203, &[(1, 1)], &[])), Loaded::Live);
        assert_eq!(b.update_id(), Some(205));
        assert_eq!(b.on_snapshot(&snapshot(300, &[], &[])), Loaded::Unneeded);
    }

    #[test]
    fn a_gap_throws_the_book_away_and_asks_for_a_snapshot() {
        let mut b = LocalBook::new();
        b.on_snapshot(&snapshot(10, &[(5, 1)], &[(6, 1)]));
        assert_eq!(b.on_diff(diff(11, 12, &[], &[])), Feed::Applied);
        assert_eq!(
            b.on_diff(diff(20, 21, &[], &[])),
            Feed::Gap {
                expected: 13,
                got: 20
            }
        );
        assert!(!b.is_live());
        assert!(b.bids(5).is_empty() && b.asks(5).is_empty());
        assert_eq!(b.buffered(), 1, "the diff after the gap starts the new buffer");
        assert_eq!(b.on_snapshot(&snapshot(20, &[(5, 2)], &[])), Loaded::Live);
        assert_eq!(b.update_id(), Some(21));
    }

    #[test]
    fn each_side_keeps_the_levels_nearest_the_touch() {
        let mut b = LocalBook::new();
        b.on_snapshot(&snapshot(1, &[], &[]));
        let n = MAX_LEVELS as i64 + 10;
        let bids: Vec<(i64, i64)> = (1..=n).map(|p| (p, 1)).collect();
        let asks: Vec<(i64, i64)> = (1..=n).map(|p| (n + p, 1)).collect();
        b.on_diff(diff(2, 2, &bids, &asks));
        let all_bids = b.bids(usize::MAX);
        let all_asks = b.asks(usize::MAX);
        assert_eq!((all_bids.len(), all_asks.len()), (MAX_LEVELS, MAX_LEVELS));
        assert_eq!(all_bids[0].0, d(n), "the best bid stays");
        assert_eq!(all_asks[0].0, d(n + 1), "the best ask stays");
        assert_eq!(all_bids.last().unwrap().0, d(11), "the farthest bids went");
    }

    #[test]
    fn the_buffer_is_bounded() {
        let mut b = LocalBook::new();
        for i in 0..(BUFFER_CAP as u64 + 50) {
            b.on_diff(diff(i + 1, i + 1, &[], &[]));
        }
        assert_eq!(b.buffered(), BUFFER_CAP);
    }

    /// The book a reference keeps by applying every update in order from empty.
    fn reference(diffs: &[DepthDiff], upto: usize) -> BTreeMap<Decimal, Decimal> {
        let mut m = BTreeMap::new();
        for dd in &diffs[..upto] {
            for (p, q) in &dd.bids {
                if q.is_zero() {
                    m.remove(p);
                } else {
                    m.insert(*p, *q);
                }
            }
        }
        m
    }

    proptest! {
        /// Whatever diffs are lost and whenever the snapshot is taken, a live book equals the
        /// book built from every update: a lost diff is always noticed as a gap.
        #[test]
        fn a_live_book_always_equals_the_full_history(
            updates in proptest::collection::vec(
                proptest::collection::vec((1i64..8, 0i64..4), 0..4), 1..40),
            lost in proptest::collection::vec(any::<bool>(), 40),
            snap_at in 0usize..40,
            snap_delay in 0usize..5,
        ) {
            // Update i (1-based id i) carries updates[i-1]'s bid levels.
            let diffs: Vec<DepthDiff> = updates
                .iter()
                .enumerate()
                .map(|(i, levels)| {
                    let id = i as u64 + 1;
                    DepthDiff {
                        first_id: id,
                        last_id: id,
                        bids: levels.iter().map(|(p, q)| (d(*p), d(*q))).collect(),
                        asks: vec![],
                    }
                })
                .collect();
            let n = diffs.len();
            let snap_at = snap_at.min(n);
            let mut book = LocalBook::new();
            let mut pending_snapshot = false;
            let mut since_request = 0usize;
            for (i, dd) in diffs.iter().enumerate() {
                // Deliver the snapshot taken after `i` updates, `snap_delay` diffs after asking.
                if pending_snapshot && since_request >= snap_delay && i >= snap_at {
                    let levels = reference(&diffs, i);
                    let snap = Depth {
                        last_update_id: i as u64,
                        bids: levels
                            .iter()
                            .map(|(p, q)| (Price::try_new(*p).unwrap(), Qty::try_new(*q).unwrap()))
                            .collect(),
                        asks: vec![],
                    };
                    match book.on_snapshot(&snap) {
                        Loaded::Live | Loaded::Unneeded => pending_snapshot = false,
                        Loaded::Again => since_request = 0,
                    }
                }
                if lost[i % lost.len()] && i + 1 < n {
                    continue;
                }
                match book.on_diff(dd.clone()) {
                    Feed::NeedSnapshot | Feed::Gap { .. } => {
                        pending_snapshot = true;
                        since_request = 0;
                    }
                    _ => since_request += 1,
                }
                if let Some(id) = book.update_id() {
                    let want: Vec<(Decimal, Decimal)> =
                        reference(&diffs, id as usize).into_iter().rev().collect();
                    prop_assert_eq!(book.bids(usize::MAX), want);
                }
            }
        }
    }

    proptest! {
        /// The book's key orders prices as `Decimal` does, whether or not their scales agree,
        /// up to Decimal's largest mantissas and scales.
        #[test]
        fn the_price_key_orders_as_the_decimal_does(
            a in any::<i64>(), a_hi in prop_oneof![Just(0u32), any::<u32>()], sa in 0u32..=28,
            b in any::<i64>(), b_hi in prop_oneof![Just(0u32), any::<u32>()], sb in 0u32..=28,
        ) {
            let wide = |lo: i64, hi: u32, scale: u32| {
                Decimal::from_parts(lo as u32, (lo >> 32) as u32, hi, lo < 0, scale)
            };
            let (x, y) = (wide(a, a_hi, sa), wide(b, b_hi, sb));
            let key = PriceKey::of;
            prop_assert_eq!(key(x).cmp(&key(y)), x.cmp(&y));
            prop_assert_eq!(key(x) == key(y), x == y);
            // The same value normalised (as a snapshot's `Price`) is the same level.
            let z = x.normalize();
            prop_assert_eq!(key(z).cmp(&key(y)), x.cmp(&y));
            prop_assert_eq!(key(z), key(x));
        }

        /// Built from a snapshot, then changed level by level, a side holds what a sorted map
        /// of price to quantity would, in its order, whatever scales the prices are written in.
        #[test]
        fn both_sides_hold_what_a_map_would(
            snapshot in proptest::collection::vec((0i64..60, 0u32..4, 0i64..5), 0..40),
            changes in proptest::collection::vec((0i64..60, 0u32..4, 0i64..5), 0..80),
        ) {
            // Prices from 0.0 to 5.9, written with 1 to 4 decimals (so the same price comes at
            // different scales).
            let price = |tenths: i64, extra: u32| {
                Decimal::new(tenths * 10i64.pow(extra), 1 + extra)
            };
            let mut side = Side::from_levels(
                snapshot.iter().map(|(p, s, q)| (price(*p, *s), d(*q))),
            );
            let mut map: BTreeMap<Decimal, Decimal> = BTreeMap::new();
            for (p, s, q) in &snapshot {
                if *q == 0 {
                    continue;
                }
                map.remove(&price(*p, *s));
                map.insert(price(*p, *s), d(*q));
            }
            let held = |side: &Side| side.levels.iter().copied().collect::<Vec<_>>();
            let want = |map: &BTreeMap<Decimal, Decimal>| {
                map.iter().map(|(p, q)| (*p, *q)).collect::<Vec<_>>()
            };
            prop_assert_eq!(held(&side), want(&map));
            for (p, s, q) in &changes {
                side.set(price(*p, *s), d(*q));
                if *q == 0 {
                    map.remove(&price(*p, *s));
                } else {
                    map.insert(price(*p, *s), d(*q));
                }
                prop_assert_eq!(held(&side), want(&map));
                prop_assert_eq!(side.levels.len(), side.keys.len());
                prop_assert!(side.keys.iter().zip(side.keys.iter().skip(1)).all(|(a, b)| a < b));
            }
        }
    }

    #[test]
    fn resync_waits_double_from_one_second_to_the_cap_and_say_the_first_failure_only() {
        let mut r = Resync::default();
        assert_eq!(r.wait(), Duration::ZERO, "no failure: no wait");
        assert_eq!(r.on_failure("HTTP 503"), Failed::First { wait: RESYNC_FIRST });
        let waits: Vec<u64> = (0..7)
            .map(|_| r.on_failure("HTTP 503").wait().as_secs())
            .collect();
        assert_eq!(waits, vec![2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(
            r.on_failure("timeout"),
            Failed::Again {
                failures: 9,
                wait: RESYNC_MAX
            }
        );
        assert_eq!(
            r.on_success(),
            Some(Recovered {
                failures: 9,
                first_error: "HTTP 503".into()
            })
        );
        assert_eq!(r.on_success(), None, "said once");
        assert_eq!(r.wait(), Duration::ZERO);
        assert_eq!(r.on_failure("again"), Failed::First { wait: RESYNC_FIRST });
    }
}
