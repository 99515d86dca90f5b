//! The market path: one combined-stream text frame decoded (`events::parse_market_frame`) and
//! applied to the engine (`Engine::update` with `Input::Market`), against a bare `serde_json`
//! decode of the same frame into a plain struct of strings, in the same run.
//!
//! Streams measured: the three crbot subscribes per watched symbol (`@bookTicker`,
//! `@miniTicker`, `@kline_1m`), the three it adds for the selected symbol only
//! (`@depth@100ms` diffs applied to the local book, `@aggTrade` onto the tape, `@kline_5m` /
//! `@kline_1h` into the chart at that timeframe), and `@depth5@100ms`, a partial book crbot no
//! longer subscribes but still decodes. `@trade` is not consumed (the tape is `@aggTrade`'s).
//! Budget: decode + apply ≤ 2× the bare decode, and ≥ 500 k messages/s on one core (1 / the
//! time per message).
//!
//! The diff row applies each diff for real: the engine follows BTCUSDT, its book was made live
//! from a 1000-level snapshot (as the REST answer gives it), and every frame continues the one
//! before (`U` = the last `u` + 1), so none is buffered or ignored; the bench checks the book is
//! still live and in step at the end. Its frames differ (ids, levels), so each is built before
//! it is timed (`iter_batched_ref`), for the three columns alike.
//!
//! Run: `cargo bench --bench market_path`; `BENCH_SMOKE=1` (or `cargo test --bench
//! market_path`) runs each row once, as a check that every frame still decodes and applies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use crbot::domain::{Mode, Price, Qty, Symbol};
use crbot::engine::core::Core;
use crbot::engine::machine::{Answer, Engine, FocusAnswer, Input};
use crbot::engine::snapshot::{BookStatus, ChartInterval, Command};
use crbot::exchange::binance::events::{MarketFrame, parse_market_frame};
use crbot::exchange::binance::wire::Depth;
use crbot::journal::{Journal, TicketSource};
use crbot::risk::Limits;
use criterion::{BatchSize, Criterion};
use rust_decimal::Decimal;
use serde::Deserialize;

/// The binary's allocator (every block wiped before it is freed), so that the figures are the
/// ones the `crbot` process gets.
#[global_allocator]
static ALLOCATOR: crbot::secret::WipeOnFree = crbot::secret::WipeOnFree;

const NOW: i64 = 1_764_333_296_000;

const BOOK_TICKER: &str = r#"{"stream":"btcusdt@bookTicker","data":{"u":400900217,"s":"BTCUSDT","b":"97250.00000000","B":"0.41200000","a":"97250.01000000","A":"1.25300000"}}"#;
const MINI_TICKER: &str = r#"{"stream":"btcusdt@miniTicker","data":{"e":"24hrMiniTicker","E":1764333296000,"s":"BTCUSDT","c":"97250.01000000","o":"96120.00000000","h":"97800.00000000","l":"95900.00000000","v":"18231.12000000","q":"1771234567.12000000"}}"#;
const KLINE: &str = r#"{"stream":"btcusdt@kline_1m","data":{"e":"kline","E":1764333296000,"s":"BTCUSDT","k":{"t":1764333240000,"T":1764333299999,"s":"BTCUSDT","i":"1m","f":100,"L":200,"o":"97240.00000000","c":"97250.01000000","h":"97260.00000000","l":"97230.00000000","v":"12.31000000","n":100,"x":false,"q":"1197000.00000000","V":"6.10000000","Q":"593000.00000000","B":"0"}}}"#;
const DEPTH5: &str = r#"{"stream":"btcusdt@depth5@100ms","data":{"lastUpdateId":160,"bids":[["97250.00","0.41"],["97249.99","0.10"],["97249.50","1.00"],["97249.00","2.50"],["97248.00","0.75"]],"asks":[["97250.01","1.25"],["97250.50","0.30"],["97251.00","0.90"],["97252.00","1.10"],["97253.00","2.00"]]}}"#;

const AGG_TRADE: &str = r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1764333296000,"s":"BTCUSDT","a":26129,"p":"97250.01000000","q":"0.01200000","f":100,"l":105,"T":1764333296000,"m":true,"M":true}}"#;

/// A chart kline at `interval` (`5m`, `1h`), as the selected symbol's chart stream sends it.
fn chart_kline(interval: &str) -> String {
    KLINE
        .replace("kline_1m", &format!("kline_{interval}"))
        .replace(r#""i":"1m""#, &format!(r#""i":"{interval}""#))
}

/// The update id the snapshot that makes the diff row's book live carries.
const SNAPSHOT_ID: u64 = 1_000_000;
/// Levels on each side of one diff (Binance's 100 ms diffs of a busy pair carry tens).
const DIFF_LEVELS: u64 = 10;

/// The `seq`-th diff: the first spans the snapshot's id + 1 (Binance's rule for the first diff
/// applied), each later one continues the previous (`U` = last `u` + 1); its levels
/// move around the touch, one in four removed (quantity zero), as a busy book's diffs do.
fn depth_diff(seq: u64) -> String {
    let first = SNAPSHOT_ID - 1 + seq * 3;
    let level = |side: u64, k: u64| {
        let ticks = (seq * 7 + k * 3 + side) % 60;
        let price = if side == 0 {
            Decimal::new(9_725_000 - ticks as i64, 2)
        } else {
            Decimal::new(9_725_001 + ticks as i64, 2)
        };
        let qty = if (seq + k).is_multiple_of(4) {
            Decimal::ZERO
        } else {
            Decimal::new(((seq * 13 + k * 17) % 5000 + 1) as i64, 4)
        };
        format!(r#"["{price:.8}","{qty:.8}"]"#)
    };
    let side = |s: u64| {
        (0..DIFF_LEVELS)
            .map(|k| level(s, k))
            .collect::<Vec<_>>()
            .join(",")
    };
    format!(
        r#"{{"stream":"btcusdt@depth@100ms","data":{{"e":"depthUpdate","E":{},"s":"BTCUSDT","U":{},"u":{},"b":[{}],"a":[{}]}}}}"#,
        NOW + seq as i64 * 100,
        first,
        first + 2,
        side(0),
        side(1)
    )
}

/// The REST snapshot the diff row's book starts from: 1000 levels a side, a cent apart.
fn depth_snapshot() -> Depth {
    let side = |start: i64, step: i64| {
        (0..1000)
            .map(|i| {
                // Eight places, as Binance writes every price and quantity; `Price` keeps
                // them normalised (`97250`, `97250.01`), so the book holds the snapshot's
                // prices at their shortest and the diffs' at eight places, as a live book does.
                let (mut p, mut q) = (Decimal::new(start + step * i, 2), Decimal::new(1000 + i, 4));
                p.rescale(8);
                q.rescale(8);
                (Price::try_new(p).unwrap(), Qty::try_new(q).unwrap())
            })
            .collect()
    };
    Depth {
        last_update_id: SNAPSHOT_ID,
        bids: side(9_725_000, -1),
        asks: side(9_725_001, 1),
    }
}

/// The plain structs a bare decode fills: the same fields, as strings, nothing checked.
#[derive(Deserialize)]
struct Plain<T> {
    #[allow(dead_code)]
    stream: String,
    #[allow(dead_code)]
    data: T,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct PlainBook {
    u: u64,
    s: String,
    b: String,
    #[serde(rename = "B")]
    bq: String,
    a: String,
    #[serde(rename = "A")]
    aq: String,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct PlainMini {
    #[serde(rename = "E")]
    event: i64,
    s: String,
    c: String,
    o: String,
    h: String,
    l: String,
    v: String,
    q: String,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct PlainKlineEvent {
    #[serde(rename = "E")]
    event: i64,
    s: String,
    k: PlainKline,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct PlainKline {
    t: i64,
    #[serde(rename = "T")]
    close_t: i64,
    i: String,
    o: String,
    c: String,
    h: String,
    l: String,
    v: String,
    x: bool,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct PlainDepthUpdate {
    #[serde(rename = "E")]
    event: i64,
    s: String,
    #[serde(rename = "U")]
    first: u64,
    u: u64,
    b: Vec<[String; 2]>,
    a: Vec<[String; 2]>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct PlainAggTrade {
    #[serde(rename = "E")]
    event: i64,
    s: String,
    a: u64,
    p: String,
    q: String,
    #[serde(rename = "T")]
    time: i64,
    m: bool,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct PlainDepth {
    #[serde(rename = "lastUpdateId")]
    last_update_id: u64,
    bids: Vec<[String; 2]>,
    asks: Vec<[String; 2]>,
}

/// An engine on an empty journal, BTCUSDT on its watchlist.
fn engine() -> (Engine, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("journal.db"), Mode::Sim).unwrap();
    let core = Core::restore(journal, Mode::Sim, Limits::default(), TicketSource::Engine, NOW).unwrap();
    (Engine::new(core, false, None, NOW), dir)
}

fn decode_and_apply(engine: &mut Engine, text: &str, now: i64) {
    match parse_market_frame(text, now).unwrap() {
        MarketFrame::Event(ev) => {
            black_box(engine.update(Input::Market(ev), now));
        }
        other => panic!("not an event: {other:?}"),
    }
}

/// A stream's name, a frame of it, and the bare decode of that frame.
type Case = (&'static str, String, fn(&str));

fn btcusdt() -> Symbol {
    Symbol::new("BTCUSDT").unwrap()
}

/// The engine follows BTCUSDT with its chart at `interval`.
fn follow(engine: &mut Engine, interval: ChartInterval, now: i64) {
    engine.update(Input::Command(Command::SelectSymbol(btcusdt())), now);
    engine.update(Input::Command(Command::SetChartInterval(interval)), now);
}

fn bench(c: &mut Criterion) {
    let (mut engine, _dir) = engine();
    let cases: [Case; 5] = [
        ("bookTicker", BOOK_TICKER.to_string(), |t| {
            black_box(serde_json::from_str::<Plain<PlainBook>>(t).unwrap());
        }),
        ("miniTicker", MINI_TICKER.to_string(), |t| {
            black_box(serde_json::from_str::<Plain<PlainMini>>(t).unwrap());
        }),
        ("kline_1m", KLINE.to_string(), |t| {
            black_box(serde_json::from_str::<Plain<PlainKlineEvent>>(t).unwrap());
        }),
        ("depth5", DEPTH5.to_string(), |t| {
            black_box(serde_json::from_str::<Plain<PlainDepth>>(t).unwrap());
        }),
        ("aggTrade", AGG_TRADE.to_string(), |t| {
            black_box(serde_json::from_str::<Plain<PlainAggTrade>>(t).unwrap());
        }),
    ];
    let mut now = NOW;
    follow(&mut engine, ChartInterval::M1, now);
    for (name, text, bare) in cases {
        let text = text.as_str();
        let mut group = c.benchmark_group(format!("market/{name}"));
        group.bench_function("bare_serde_decode", |b| b.iter(|| bare(black_box(text))));
        group.bench_function("decode", |b| {
            b.iter(|| black_box(parse_market_frame(black_box(text), NOW).unwrap()))
        });
        group.bench_function("decode_and_apply", |b| {
            b.iter(|| {
                now += 1;
                decode_and_apply(&mut engine, black_box(text), now)
            })
        });
        group.finish();
    }
    for (interval, wire) in [(ChartInterval::M5, "5m"), (ChartInterval::H1, "1h")] {
        follow(&mut engine, interval, now);
        let text = chart_kline(wire);
        let text = text.as_str();
        decode_and_apply(&mut engine, text, now);
        assert_eq!(
            engine.snapshot(now).candles.len(),
            1,
            "the {wire} kline goes into the chart"
        );
        let mut group = c.benchmark_group(format!("market/kline_{wire}"));
        group.bench_function("bare_serde_decode", |b| {
            b.iter(|| black_box(serde_json::from_str::<Plain<PlainKlineEvent>>(black_box(text)).unwrap()))
        });
        group.bench_function("decode", |b| {
            b.iter(|| black_box(parse_market_frame(black_box(text), NOW).unwrap()))
        });
        group.bench_function("decode_and_apply", |b| {
            b.iter(|| {
                now += 1;
                decode_and_apply(&mut engine, black_box(text), now)
            })
        });
        group.finish();
    }
    depth_diff_rows(c, &mut engine, &mut now);
}

/// `@depth@100ms` diffs, each continuing the last, applied to a live 1000-level book.
/// The followed symbol's book made live: the first diff (update 0) asks for the snapshot, and
/// the snapshot answers it; diffs 1, 2, … continue it.
fn make_book_live(engine: &mut Engine, now: i64) {
    decode_and_apply(engine, &depth_diff(0), now);
    let answer = FocusAnswer::Depth {
        symbol: btcusdt(),
        depth: Ok(depth_snapshot()),
    };
    engine.update(Input::Answer(Answer::Focus(answer)), now);
    assert_eq!(engine.snapshot(now).focus.book.status, BookStatus::Live);
}

fn depth_diff_rows(c: &mut Criterion, engine: &mut Engine, now: &mut i64) {
    follow(engine, ChartInterval::M1, *now);
    let mut seq = 0u64;
    make_book_live(engine, *now);
    let mut next = move || {
        seq += 1;
        depth_diff(seq)
    };
    let mut group = c.benchmark_group("market/depth@100ms");
    let mut spare = 0u64;
    group.bench_function("bare_serde_decode", |b| {
        b.iter_batched_ref(
            || {
                spare += 1;
                depth_diff(spare)
            },
            |t| black_box(serde_json::from_str::<Plain<PlainDepthUpdate>>(black_box(t)).unwrap()),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("decode", |b| {
        b.iter_batched_ref(
            || {
                spare += 1;
                depth_diff(spare)
            },
            |t| black_box(parse_market_frame(black_box(t), NOW).unwrap()),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("decode_and_apply", |b| {
        b.iter_batched_ref(
            &mut next,
            |t| {
                *now += 1;
                decode_and_apply(engine, black_box(t), *now)
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
    let book = engine.snapshot(*now).focus.book;
    assert_eq!(book.status, BookStatus::Live, "every diff continued the book");
    assert!(!book.bids.is_empty() && !book.asks.is_empty());
    assert!(
        book.bids[0].price.value() < book.asks[0].price.value(),
        "never crossed"
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    // A quick pass under `cargo bench` too: every row measured briefly, figures not quotable.
    if std::env::var_os("BENCH_SMOKE").is_some() {
        c = c
            .warm_up_time(std::time::Duration::from_millis(10))
            .measurement_time(std::time::Duration::from_millis(50))
            .sample_size(10);
    }
    bench(&mut c);
    c.final_summary();
    interleaved_ratios();
}

/// Frames measured per batch, and batches per column, in [`interleaved_ratios`].
const BATCH: usize = 200;
const BATCHES: usize = 300;

/// A row of [`interleaved_ratios`]: the stream's name, a frame of it, and its bare decode.
type Row = (&'static str, &'static str, fn(&str));

/// One column of a row: what makes each frame (untimed), and what is timed on it.
type Column<'a> = (&'a mut dyn FnMut() -> String, &'a mut dyn FnMut(&str));

/// The three columns of a row measured in turns, a batch of [`BATCH`] frames at a time, the
/// order rotating from batch to batch, so that whatever else the machine does in those seconds
/// falls on the three alike; each column's figure is its fastest tenth of batches (the time a
/// message takes when nothing interrupts it). Returns nanoseconds per message.
fn interleaved(columns: &mut [Column; 3], batches: usize) -> [f64; 3] {
    let mut times: [Vec<f64>; 3] = Default::default();
    for b in 0..batches {
        for k in 0..3 {
            let c = (b + k) % 3;
            let (make, run) = &mut columns[c];
            let frames: Vec<String> = (0..BATCH).map(|_| make()).collect();
            let start = std::time::Instant::now();
            for f in &frames {
                run(black_box(f));
            }
            times[c].push(start.elapsed().as_nanos() as f64 / BATCH as f64);
        }
    }
    times.map(|mut t| {
        t.sort_by(f64::total_cmp);
        t[t.len() / 10]
    })
}

/// A row's three columns ([`interleaved`]): `bare`, crbot's decode, and its decode applied to
/// `engine`, each on the frames its own maker makes.
fn against_bare(
    engine: &mut Engine,
    now: &mut i64,
    [m1, m2, m3]: [&mut dyn FnMut() -> String; 3],
    bare: &mut dyn FnMut(&str),
    batches: usize,
) -> [f64; 3] {
    let mut decode = |t: &str| {
        black_box(parse_market_frame(t, NOW).unwrap());
    };
    let mut apply = |t: &str| {
        *now += 1;
        decode_and_apply(engine, t, *now)
    };
    let mut columns: [Column; 3] = [(m1, bare), (m2, &mut decode), (m3, &mut apply)];
    interleaved(&mut columns, batches)
}

/// Every row again, its three columns measured in turns ([`interleaved`]): the ratios a noisy
/// machine cannot move, printed as a table for docs/PERFORMANCE.md.
fn interleaved_ratios() {
    let batches = if std::env::var_os("BENCH_SMOKE").is_some() {
        3
    } else {
        BATCHES
    };
    let (mut engine, _dir) = engine();
    let mut now = NOW;
    follow(&mut engine, ChartInterval::M1, now);
    println!("\ninterleaved batches ({batches} × {BATCH} frames a column, fastest tenth):");
    println!("| stream | bare decode | decode | decode + apply | ratio to bare | messages/s, one core |");
    println!("|---|---|---|---|---|---|");
    let print = |name: &str, [bare, decode, apply]: [f64; 3]| {
        println!(
            "| `{name}` | {bare:.0} ns | {decode:.0} ns | {apply:.0} ns | {:.2}× (decode {:.2}×) | {:.2} M |",
            apply / bare,
            decode / bare,
            1e3 / apply
        );
    };
    let rows: [Row; 5] = [
        ("@bookTicker", BOOK_TICKER, |t| {
            black_box(serde_json::from_str::<Plain<PlainBook>>(t).unwrap());
        }),
        ("@miniTicker", MINI_TICKER, |t| {
            black_box(serde_json::from_str::<Plain<PlainMini>>(t).unwrap());
        }),
        ("@kline_1m", KLINE, |t| {
            black_box(serde_json::from_str::<Plain<PlainKlineEvent>>(t).unwrap());
        }),
        ("@depth5@100ms", DEPTH5, |t| {
            black_box(serde_json::from_str::<Plain<PlainDepth>>(t).unwrap());
        }),
        ("@aggTrade", AGG_TRADE, |t| {
            black_box(serde_json::from_str::<Plain<PlainAggTrade>>(t).unwrap());
        }),
    ];
    for (name, text, bare) in rows {
        let (mut m1, mut m2, mut m3) = (|| text.to_string(), || text.to_string(), || text.to_string());
        let mut bare = |t: &str| bare(t);
        let figures = against_bare(
            &mut engine,
            &mut now,
            [&mut m1, &mut m2, &mut m3],
            &mut bare,
            batches,
        );
        print(name, figures);
    }
    // The diff row: a live book, each applied diff continuing the last.
    let mut seq = 0u64;
    make_book_live(&mut engine, now);
    let mut spare = 0u64;
    let mut spare2 = 0u64;
    let mut m1 = || {
        spare += 1;
        depth_diff(spare)
    };
    let mut m2 = || {
        spare2 += 1;
        depth_diff(spare2)
    };
    let mut m3 = || {
        seq += 1;
        depth_diff(seq)
    };
    let mut bare = |t: &str| {
        black_box(serde_json::from_str::<Plain<PlainDepthUpdate>>(t).unwrap());
    };
    let figures = against_bare(
        &mut engine,
        &mut now,
        [&mut m1, &mut m2, &mut m3],
        &mut bare,
        batches,
    );
    print("@depth@100ms diff (20 levels)", figures);
    let book = engine.snapshot(now).focus.book;
    assert_eq!(book.status, BookStatus::Live, "every diff continued the book");
}
