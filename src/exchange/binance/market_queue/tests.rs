//! The market queue: conflation of quotes, tickers and forming candles; order and no loss for
//! everything else; back-pressure; closing from either end; and a property test over random
//! interleavings of sends and reads.

use std::collections::HashMap;
use std::pin::pin;
use std::task::Poll;

use futures_util::poll;
use proptest::prelude::*;
use rust_decimal::Decimal;

use super::*;
use crate::domain::{Notional, Price, Qty};
use crate::exchange::binance::book::DepthDiff;
use crate::exchange::binance::events::{StreamStatus, StreamTrade};
use crate::exchange::binance::wire::Kline;

fn sym(s: &str) -> Symbol {
    Symbol::new(s).expect("test symbol")
}

fn price(n: u64) -> Price {
    Price::try_new(Decimal::from(n)).expect("test price")
}

fn quote(symbol: &str, bid: u64) -> MarketEvent {
    MarketEvent::BookTicker {
        symbol: sym(symbol),
        bid: price(bid),
        bid_qty: Qty::ZERO,
        ask: price(bid + 1),
        ask_qty: Qty::ZERO,
        update_id: bid,
        recv_ms: 0,
    }
}

fn ticker(symbol: &str, close: u64) -> MarketEvent {
    MarketEvent::MiniTicker {
        symbol: sym(symbol),
        open: price(1),
        close: price(close),
        high: price(close),
        low: price(1),
        volume: Qty::ZERO,
        quote_volume: Notional::ZERO,
        event_ms: 0,
    }
}

fn kline(symbol: &str, open_time_ms: i64, close: u64, closed: bool) -> MarketEvent {
    MarketEvent::Kline {
        symbol: sym(symbol),
        interval: "1m".into(),
        kline: Kline {
            open_time_ms,
            close_time_ms: open_time_ms + 59_999,
            open: price(1),
            high: price(close),
            low: price(1),
            close: price(close),
            volume: Qty::ZERO,
            closed,
        },
        event_ms: 0,
    }
}

fn trade(symbol: &str, id: u64) -> MarketEvent {
    MarketEvent::Trade {
        symbol: sym(symbol),
        trade: StreamTrade {
            id,
            price: price(1),
            qty: Qty::ZERO,
            time_ms: 0,
            buyer_maker: false,
        },
        event_ms: 0,
    }
}

fn diff(symbol: &str, id: u64) -> MarketEvent {
    MarketEvent::DepthDiff {
        symbol: sym(symbol),
        diff: DepthDiff {
            first_id: id,
            last_id: id,
            bids: vec![],
            asks: vec![],
        },
        event_ms: 0,
    }
}

fn status(n: usize) -> MarketEvent {
    MarketEvent::Status(StreamStatus::Connected { streams: n })
}

fn drain(rx: &mut MarketReceiver) -> Vec<MarketEvent> {
    std::iter::from_fn(|| rx.try_recv()).collect()
}

fn fifo_only(events: &[MarketEvent]) -> Vec<MarketEvent> {
    events
        .iter()
        .filter(|e| SlotKey::of(e).is_none())
        .cloned()
        .collect()
}

#[test]
fn a_hundred_quotes_of_a_symbol_reach_the_engine_as_the_newest_only() {
    let (tx, mut rx) = channel(16);
    for bid in 1..=100 {
        tx.try_send(quote("BTCUSDT", bid)).expect("a quote never waits");
    }
    assert_eq!(rx.len(), 1, "one slot, not a hundred entries");
    assert_eq!(drain(&mut rx), vec![quote("BTCUSDT", 100)]);
    assert_eq!(tx.superseded_count(), 99);
    // Taken: the next quote queues afresh.
    tx.try_send(quote("BTCUSDT", 101)).expect("queued");
    assert_eq!(drain(&mut rx), vec![quote("BTCUSDT", 101)]);
}

#[test]
fn quotes_and_tickers_are_conflated_per_symbol_and_kind() {
    let (tx, mut rx) = channel(16);
    for n in 1..=5 {
        for event in [
            quote("BTCUSDT", n),
            quote("ETHUSDT", 10 + n),
            ticker("BTCUSDT", 20 + n),
        ] {
            tx.try_send(event).expect("queued");
        }
    }
    assert_eq!(
        drain(&mut rx),
        vec![quote("BTCUSDT", 5), quote("ETHUSDT", 15), ticker("BTCUSDT", 25)],
        "each key at the place of its oldest queued event, with its newest value"
    );
}

#[test]
fn trades_diffs_and_statuses_keep_their_order_between_quotes() {
    let (tx, mut rx) = channel(64);
    let mut sent = Vec::new();
    for i in 0..20u64 {
        let event = match i % 5 {
            0 => trade("BTCUSDT", i),
            1 => diff("BTCUSDT", i),
            2 => status(i as usize),
            3 => quote("BTCUSDT", i),
            _ => quote("ETHUSDT", i),
        };
        sent.push(event.clone());
        tx.try_send(event).expect("room");
    }
    let got = drain(&mut rx);
    assert_eq!(
        fifo_only(&got),
        fifo_only(&sent),
        "nothing lost, nothing reordered"
    );
    assert_eq!(got.len(), fifo_only(&sent).len() + 2, "one quote per symbol");
    assert!(got.contains(&quote("BTCUSDT", 18)) && got.contains(&quote("ETHUSDT", 19)));
    // The quote slot was opened by the first quote (i = 3), after trade 0, diff 1, status 2.
    assert_eq!(got[3], quote("BTCUSDT", 18));
}

#[test]
fn closed_klines_are_never_dropped_and_forming_ones_conflate_per_open_time() {
    let (tx, mut rx) = channel(16);
    let t = 60_000;
    for event in [
        kline("BTCUSDT", t, 1, false),
        kline("BTCUSDT", t, 2, false),
        kline("BTCUSDT", t, 3, true),
        kline("BTCUSDT", t + 60_000, 4, false),
        kline("BTCUSDT", t + 60_000, 5, false),
        // Both closed klines are delivered, even of the same candle.
        kline("BTCUSDT", t + 60_000, 6, true),
        kline("BTCUSDT", t + 60_000, 7, true),
    ] {
        tx.try_send(event).expect("room");
    }
    assert_eq!(
        drain(&mut rx),
        vec![
            kline("BTCUSDT", t, 2, false),
            kline("BTCUSDT", t, 3, true),
            kline("BTCUSDT", t + 60_000, 5, false),
            kline("BTCUSDT", t + 60_000, 6, true),
            kline("BTCUSDT", t + 60_000, 7, true),
        ],
        "the final figures of a candle are applied last"
    );
}

#[tokio::test]
async fn a_full_queue_holds_the_sender_until_the_engine_takes_one_but_never_a_quote() {
    let (tx, mut rx) = channel(2);
    tx.send(trade("BTCUSDT", 1)).await.expect("room");
    tx.send(trade("BTCUSDT", 2)).await.expect("room");
    assert_eq!(
        tx.try_send(trade("BTCUSDT", 3)),
        Err(TrySendError::Full(Box::new(trade("BTCUSDT", 3))))
    );
    tx.send(quote("BTCUSDT", 7))
        .await
        .expect("a quote does not wait for room");
    let mut waiting = pin!(tx.send(trade("BTCUSDT", 3)));
    assert!(poll!(waiting.as_mut()).is_pending(), "full: the sender waits");
    assert!(poll!(waiting.as_mut()).is_pending(), "still full");
    assert_eq!(rx.recv().await, Some(trade("BTCUSDT", 1)));
    assert_eq!(poll!(waiting.as_mut()), Poll::Ready(Ok(())), "room: sent");
    assert_eq!(
        drain(&mut rx),
        vec![trade("BTCUSDT", 2), quote("BTCUSDT", 7), trade("BTCUSDT", 3)]
    );
}

#[tokio::test]
async fn the_receiver_drains_what_is_queued_then_ends_when_every_sender_is_gone() {
    let (tx, mut rx) = channel(8);
    let second = tx.clone();
    tx.send(trade("BTCUSDT", 1)).await.expect("room");
    second.send(quote("BTCUSDT", 2)).await.expect("room");
    drop(tx);
    assert_eq!(rx.recv().await, Some(trade("BTCUSDT", 1)));
    assert_eq!(rx.recv().await, Some(quote("BTCUSDT", 2)));
    let mut waiting = pin!(rx.recv());
    assert!(poll!(waiting.as_mut()).is_pending(), "a sender is left: wait");
    drop(second);
    assert_eq!(poll!(waiting.as_mut()), Poll::Ready(None), "woken, and ended");
}

#[tokio::test]
async fn a_waiting_receiver_wakes_on_a_send() {
    let (tx, mut rx) = channel(8);
    let mut next = pin!(rx.recv());
    assert!(poll!(next.as_mut()).is_pending());
    tx.send(diff("BTCUSDT", 1)).await.expect("room");
    assert_eq!(poll!(next.as_mut()), Poll::Ready(Some(diff("BTCUSDT", 1))));
}

#[tokio::test]
async fn sends_fail_and_give_the_event_back_once_the_receiver_is_gone() {
    let (tx, rx) = channel(1);
    tx.send(trade("BTCUSDT", 1)).await.expect("room");
    let mut waiting = pin!(tx.send(trade("BTCUSDT", 2)));
    assert!(poll!(waiting.as_mut()).is_pending());
    drop(rx);
    assert!(tx.is_closed());
    assert_eq!(
        poll!(waiting.as_mut()),
        Poll::Ready(Err(SendError(trade("BTCUSDT", 2)))),
        "a waiting sender is woken with its event"
    );
    assert_eq!(
        tx.try_send(quote("BTCUSDT", 1)),
        Err(TrySendError::Closed(Box::new(quote("BTCUSDT", 1))))
    );
}

/// One step of a run: send an event, or let the engine take up to `n` events.
#[derive(Debug, Clone)]
enum Step {
    Send(MarketEvent),
    Take(usize),
}

const SYMBOLS: [&str; 3] = ["BTCUSDT", "ETHUSDT", "SOLUSDT"];

fn any_event() -> impl Strategy<Value = MarketEvent> {
    let s = 0..SYMBOLS.len();
    prop_oneof![
        (s.clone(), 1..1_000u64).prop_map(|(s, n)| quote(SYMBOLS[s], n)),
        (s.clone(), 1..1_000u64).prop_map(|(s, n)| ticker(SYMBOLS[s], n)),
        (s.clone(), 0..3i64, 1..1_000u64, any::<bool>()).prop_map(|(s, m, n, closed)| kline(
            SYMBOLS[s],
            m * 60_000,
            n,
            closed
        )),
        (s.clone(), 1..1_000u64).prop_map(|(s, n)| trade(SYMBOLS[s], n)),
        (s, 1..1_000u64).prop_map(|(s, n)| diff(SYMBOLS[s], n)),
        (0..5usize).prop_map(status),
    ]
}

fn any_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => any_event().prop_map(Step::Send),
        1 => (0..6usize).prop_map(Step::Take),
    ]
}

proptest! {
    /// Whatever the interleaving of sends and reads: the events that keep their order arrive
    /// all and in order; for every conflatable key the engine sees a subsequence of what was
    /// sent, in order, ending with the last value sent.
    #[test]
    fn the_engine_sees_every_fifo_event_in_order_and_each_keys_last_value(
        steps in proptest::collection::vec(any_step(), 0..200)
    ) {
        let (tx, mut rx) = channel(usize::MAX);
        let mut sent = Vec::new();
        let mut got = Vec::new();
        for step in steps {
            match step {
                Step::Send(event) => {
                    sent.push(event.clone());
                    prop_assert!(tx.try_send(event).is_ok());
                }
                Step::Take(n) => got.extend(std::iter::from_fn(|| rx.try_recv()).take(n)),
            }
        }
        got.extend(drain(&mut rx));
        prop_assert_eq!(fifo_only(&got), fifo_only(&sent));
        let per_key = |events: &[MarketEvent]| {
            let mut keys: HashMap<SlotKey, Vec<MarketEvent>> = HashMap::new();
            for e in events {
                if let Some(k) = SlotKey::of(e) {
                    keys.entry(k).or_default().push(e.clone());
                }
            }
            keys
        };
        let (sent_keys, got_keys) = (per_key(&sent), per_key(&got));
        prop_assert_eq!(
            sent_keys.keys().collect::<std::collections::HashSet<_>>(),
            got_keys.keys().collect::<std::collections::HashSet<_>>()
        );
        for (key, values) in &sent_keys {
            let seen = &got_keys[key];
            prop_assert_eq!(seen.last(), values.last(), "{:?}: the last value sent", key);
            let mut rest = values.iter();
            for v in seen {
                prop_assert!(rest.any(|s| s == v), "{:?}: seen out of the sent order", key);
            }
        }
    }

    /// With room for few events, a sender that finds the queue full reads `Full` and sends the
    /// same event again after a read: nothing is lost or reordered, and the queue never holds
    /// more first-in-first-out events than its capacity.
    #[test]
    fn a_bounded_queue_loses_nothing_under_back_pressure(
        events in proptest::collection::vec(any_event(), 0..200),
        capacity in 1..4usize,
    ) {
        let (tx, mut rx) = channel(capacity);
        let mut got = Vec::new();
        for event in &events {
            let mut event = event.clone();
            loop {
                match tx.try_send(event) {
                    Ok(()) => break,
                    Err(TrySendError::Full(e)) => {
                        event = *e;
                        got.extend(rx.try_recv());
                    }
                    Err(TrySendError::Closed(_)) => return Err(TestCaseError::fail("closed")),
                }
            }
            let queued = drain_count_fifo(&rx);
            prop_assert!(queued <= capacity, "{} queued over {}", queued, capacity);
        }
        got.extend(drain(&mut rx));
        prop_assert_eq!(fifo_only(&got), fifo_only(&events));
    }
}

/// First-in-first-out events queued now.
fn drain_count_fifo(rx: &MarketReceiver) -> usize {
    rx.shared.lock().fifo
}
