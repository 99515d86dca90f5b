//! Step-by-step tests of the engine's focus (`engine::machine::focus`): the market stream
//! follows the selected symbol only, its book goes live from diffs and a snapshot and
//! resynchronises on a gap, the chart's timeframe switch backfills by REST and says it is
//! loading, and the history is read off the loop after changes, at most every second.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod machine_support;

use crbot::engine::machine::{Answer, Effect, FocusAnswer, FocusEffect, Input};
use crbot::engine::snapshot::{BookStatus, ChartInterval, Command};
use crbot::exchange::binance::book::DepthDiff;
use crbot::exchange::binance::events::{MarketEvent, StreamStatus, StreamTrade};
use crbot::exchange::binance::wire::{Depth, Kline};
use crbot::risk::Limits;
use machine_support::*;

fn follows(fx: &Effects) -> Vec<Option<(crbot::domain::Symbol, ChartInterval)>> {
    fx.0.iter()
        .filter_map(|e| match e {
            Effect::Focus(FocusEffect::Follow(f)) => Some(f.clone()),
            _ => None,
        })
        .collect()
}

fn depth_loads(fx: &Effects) -> Vec<String> {
    fx.0.iter()
        .filter_map(|e| match e {
            Effect::Focus(FocusEffect::LoadDepth { symbol, .. }) => Some(symbol.to_string()),
            _ => None,
        })
        .collect()
}

fn chart_loads(fx: &Effects) -> Vec<(String, ChartInterval)> {
    fx.0.iter()
        .filter_map(|e| match e {
            Effect::Focus(FocusEffect::LoadChart { symbol, interval }) => {
                Some((symbol.to_string(), *interval))
            }
            _ => None,
        })
        .collect()
}

fn history_reads(fx: &Effects) -> usize {
    fx.0.iter()
        .filter(|e| matches!(e, Effect::Focus(FocusEffect::LoadHistory { .. })))
        .count()
}

fn diff(symbol: &str, first: u64, last: u64, bid: (&str, &str)) -> Input {
    Input::Market(MarketEvent::DepthDiff {
        symbol: sym(symbol),
        diff: DepthDiff {
            first_id: first,
            last_id: last,
            bids: vec![(d(bid.0), d(bid.1))],
            asks: vec![],
        },
        event_ms: T0,
    })
}

fn snapshot_answer(symbol: &str, id: u64) -> Answer {
    Answer::Focus(FocusAnswer::Depth {
        symbol: sym(symbol),
        depth: Ok(Depth {
            last_update_id: id,
            bids: vec![(p("2999"), q("1")), (p("2998"), q("2"))],
            asks: vec![(p("3001"), q("3"))],
        }),
    })
}

fn kline(symbol: &str, interval: &str, open_ms: i64, close: &str) -> Input {
    Input::Market(MarketEvent::Kline {
        symbol: sym(symbol),
        interval: interval.into(),
        kline: Kline {
            open_time_ms: open_ms,
            close_time_ms: open_ms + 1,
            open: p(close),
            high: p(close),
            low: p(close),
            close: p(close),
            volume: q("2"),
            closed: false,
        },
        event_ms: T0,
    })
}

#[test]
fn the_book_follows_the_selection_and_goes_live_from_diffs_and_a_snapshot() {
    let mut s = Script::new(Limits::default(), false);
    let fx = s.step(Input::Started);
    let first = s
        .snapshot()
        .selected_symbol
        .clone()
        .expect("a symbol selected at start");
    assert_eq!(follows(&fx), vec![Some((first.clone(), ChartInterval::M1))]);

    let fx = s.command(Command::SelectSymbol(sym(ETH)));
    assert_eq!(
        follows(&fx),
        vec![Some((sym(ETH), ChartInterval::M1))],
        "one symbol followed at a time"
    );
    assert_eq!(s.snapshot().focus.book.status, BookStatus::Syncing);

    // Another symbol's diff is not this book's.
    assert!(depth_loads(&s.step(diff(BTC, 1, 2, ("1", "1")))).is_empty());
    // The first diff asks for the snapshot once; the next ones wait with it.
    assert_eq!(
        depth_loads(&s.step(diff(ETH, 101, 105, ("2999", "4")))),
        vec![ETH]
    );
    assert!(depth_loads(&s.step(diff(ETH, 106, 108, ("2997", "1")))).is_empty());
    assert!(
        s.snapshot().focus.book.bids.is_empty(),
        "no levels before the snapshot"
    );

    s.answer(snapshot_answer(ETH, 103));
    let book = s.snapshot().focus.book;
    assert_eq!(book.status, BookStatus::Live);
    let bids: Vec<String> = book
        .bids
        .iter()
        .map(|l| format!("{}x{}", l.price, l.qty))
        .collect();
    assert_eq!(
        bids,
        ["2999x4", "2998x2", "2997x1"],
        "the snapshot and every diff after it"
    );

    // A gap: the book goes back to synchronising and a new snapshot is asked.
    let fx = s.step(diff(ETH, 120, 121, ("2990", "1")));
    assert_eq!(depth_loads(&fx), vec![ETH]);
    assert_eq!(s.snapshot().focus.book.status, BookStatus::Syncing);
    assert!(s.snapshot().focus.book.bids.is_empty());

    // A late snapshot of the symbol left behind is dropped; the new one starts syncing.
    s.command(Command::SelectSymbol(sym(BTC)));
    s.answer(snapshot_answer(ETH, 119));
    let snap = s.snapshot();
    assert_eq!(snap.focus.symbol, Some(sym(BTC)));
    assert_eq!(snap.focus.book.status, BookStatus::Syncing);
    assert!(snap.focus.book.bids.is_empty());
}

#[test]
fn a_dropped_stream_throws_the_book_away_and_the_tape_is_the_followed_symbols() {
    let mut s = Script::new(Limits::default(), false);
    s.step(Input::Started);
    s.command(Command::SelectSymbol(sym(ETH)));
    s.step(diff(ETH, 101, 105, ("2999", "4")));
    s.answer(snapshot_answer(ETH, 103));
    assert_eq!(s.snapshot().focus.book.status, BookStatus::Live);
    let trade = |symbol: &str, id: u64| {
        Input::Market(MarketEvent::Trade {
            symbol: sym(symbol),
            trade: StreamTrade {
                id,
                price: p("3000"),
                qty: q("0.5"),
                time_ms: T0 + id as i64,
                buyer_maker: id.is_multiple_of(2),
            },
            event_ms: T0,
        })
    };
    for id in 1..=100 {
        s.step(trade(ETH, id));
    }
    s.step(trade(BTC, 500));
    let tape = s.snapshot().focus.trades;
    assert_eq!(tape.len(), 60, "bounded");
    assert_eq!(tape[0].time_ms, T0 + 100, "newest first");
    assert!(
        tape.iter().all(|t| t.time_ms != T0 + 500),
        "BTC's trade is not ETH's tape"
    );

    s.step(Input::Market(MarketEvent::Status(StreamStatus::Disconnected {
        reason: "test".into(),
    })));
    assert_eq!(s.snapshot().focus.book.status, BookStatus::Syncing);
    // A snapshot asked before the drop answers late: the book stays down until the stream's
    // diffs ask for a new one.
    s.answer(snapshot_answer(ETH, 200));
    let book = s.snapshot().focus.book;
    assert_eq!(book.status, BookStatus::Syncing);
    assert!(book.bids.is_empty());
}

#[test]
fn a_timeframe_switch_backfills_by_rest_and_never_shows_the_old_candles_as_its_own() {
    let mut s = Script::new(Limits::default(), false);
    s.step(Input::Started);
    s.command(Command::SelectSymbol(sym(ETH)));
    s.step(kline(ETH, "1m", T0 - 60_000, "3000"));
    assert_eq!(s.snapshot().candles.len(), 1);

    let fx = s.command(Command::SetChartInterval(ChartInterval::H1));
    assert_eq!(chart_loads(&fx), vec![(ETH.to_string(), ChartInterval::H1)]);
    assert_eq!(follows(&fx), vec![Some((sym(ETH), ChartInterval::H1))]);
    let snap = s.snapshot();
    assert_eq!(snap.focus.interval, ChartInterval::H1);
    assert!(snap.focus.candles_loading);
    assert!(snap.candles.is_empty(), "no 1m candle passed off as 1h");

    // A 1m kline keeps coming for the watchlist: not the 1h chart's.
    s.step(kline(ETH, "1m", T0, "3001"));
    assert!(s.snapshot().candles.is_empty());
    let backfill = vec![
        crbot::engine::machine::candle(&kline_of(T0 - 7_200_000, "2990")),
        crbot::engine::machine::candle(&kline_of(T0 - 3_600_000, "2995")),
    ];
    s.answer(Answer::Focus(FocusAnswer::Chart {
        symbol: sym(ETH),
        interval: ChartInterval::H1,
        candles: Ok(backfill),
    }));
    s.step(kline(ETH, "1h", T0 - 3_600_000, "2996"));
    let snap = s.snapshot();
    assert!(!snap.focus.candles_loading);
    let closes: Vec<String> = snap.candles.iter().map(|c| c.close.to_string()).collect();
    assert_eq!(
        closes,
        ["2990", "2996"],
        "the live 1h kline replaces its backfilled row"
    );

    // Back to 1m: the state's own 1m candles, nothing to load.
    let fx = s.command(Command::SetChartInterval(ChartInterval::M1));
    assert!(chart_loads(&fx).is_empty());
    assert_eq!(s.snapshot().candles.len(), 2);
}

fn kline_of(open_ms: i64, close: &str) -> Kline {
    match kline(ETH, "1h", open_ms, close) {
        Input::Market(MarketEvent::Kline { kline, .. }) => kline,
        _ => unreachable!(),
    }
}

#[test]
fn the_history_is_read_off_the_loop_after_a_change_at_most_every_second() {
    let mut s = Script::new(Limits::default(), false);
    let fx = s.step(Input::Started);
    assert_eq!(history_reads(&fx), 1, "read once at start");
    assert!(!s.snapshot().history.loaded);
    // A change while the read runs waits for it.
    assert_eq!(history_reads(&s.command(Command::Flatten { percent: 100 })), 0);
    let fx = s.answer(Answer::Focus(FocusAnswer::History(Ok((vec![], vec![])))));
    assert_eq!(history_reads(&fx), 0, "not within a second of the last read");
    assert!(s.snapshot().history.loaded);
    s.advance(1_000);
    let fx = s.step(Input::Market(MarketEvent::Status(StreamStatus::Latency {
        ms: 5,
    })));
    assert_eq!(
        history_reads(&fx),
        1,
        "the change seen during the read is read now"
    );
    s.answer(Answer::Focus(FocusAnswer::History(Err("disk gone".into()))));
    let snap = s.snapshot();
    assert!(snap.history.loaded, "the rows of the read before stay");
    assert_eq!(snap.history.error.as_deref(), Some("disk gone"));
    // Market data alone never reads the journal.
    s.advance(5_000);
    assert_eq!(history_reads(&s.step(kline(ETH, "1m", T0, "3000"))), 0);
}

/// The snapshot's delays asked of the executor (`LoadDepth`), in order.
fn depth_delays(fx: &Effects) -> Vec<std::time::Duration> {
    fx.0.iter()
        .filter_map(|e| match e {
            Effect::Focus(FocusEffect::LoadDepth { delay, .. }) => Some(*delay),
            _ => None,
        })
        .collect()
}

fn book_lines(s: &mut Script) -> Vec<(crbot::engine::snapshot::LogLevel, String)> {
    s.snapshot()
        .log
        .iter()
        .filter(|l| l.text.contains("book"))
        .map(|l| (l.level, l.text.clone()))
        .collect()
}

#[test]
fn failed_snapshot_reads_back_off_warn_once_and_count_the_failures_when_the_book_goes_live() {
    use crbot::engine::snapshot::LogLevel;
    use std::time::Duration;

    let mut s = Script::new(Limits::default(), false);
    s.step(Input::Started);
    s.command(Command::SelectSymbol(sym(ETH)));
    assert_eq!(
        depth_delays(&s.step(diff(ETH, 101, 105, ("2999", "4")))),
        vec![Duration::ZERO]
    );
    let failed = |error: &str| {
        Answer::Focus(FocusAnswer::Depth {
            symbol: sym(ETH),
            depth: Err(error.to_string()),
        })
    };
    // Each failure asks again after twice the wait before, from 1 s up to 30 s.
    let mut waits = Vec::new();
    for i in 0..8 {
        waits.extend(depth_delays(&s.answer(failed(&format!("HTTP 503 #{i}")))));
    }
    let secs: Vec<u64> = waits.iter().map(Duration::as_secs).collect();
    assert_eq!(secs, vec![1, 2, 4, 8, 16, 30, 30, 30]);
    // The first failure is a warning in the log; the seven after it are not in the log.
    let lines = book_lines(&mut s);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0].0, LogLevel::Warn);
    assert!(lines[0].1.contains("HTTP 503 #0"), "{lines:?}");
    assert_eq!(s.snapshot().focus.book.status, BookStatus::Syncing);

    // The read succeeds: live, and one line counts the failures.
    s.answer(snapshot_answer(ETH, 103));
    assert_eq!(s.snapshot().focus.book.status, BookStatus::Live);
    let lines = book_lines(&mut s);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[1].0, LogLevel::Info);
    assert!(lines[1].1.contains("after 8 failed"), "{lines:?}");

    // After the recovery the next resync reads at once and a failure warns again.
    let fx = s.step(diff(ETH, 120, 121, ("2990", "1")));
    assert_eq!(depth_delays(&fx), vec![Duration::ZERO]);
    assert_eq!(
        depth_delays(&s.answer(failed("timeout"))),
        vec![Duration::from_secs(1)]
    );
    let lines = book_lines(&mut s);
    assert_eq!(
        lines.iter().filter(|(l, _)| *l == LogLevel::Warn).count(),
        2,
        "{lines:?}"
    );
}
