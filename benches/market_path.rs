//! The market path: one combined-stream text frame decoded (`events::parse_market_frame`) and
//! applied to the engine (`Engine::update` with `Input::Market`), against a bare `serde_json`
//! decode of the same frame into a plain struct of strings, in the same run.
//!
//! Streams measured: the four crbot subscribes per symbol (`@bookTicker`, `@miniTicker`,
//! `@kline_1m`, `@depth5@100ms`). Budget: decode + apply ≤ 2× the bare decode, and ≥ 500 k
//! messages/s on one core (1 / the time per message).
//!
//! Run: `cargo bench --bench market_path`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use crbot::domain::Mode;
use crbot::engine::core::Core;
use crbot::engine::machine::{Engine, Input};
use crbot::exchange::binance::events::{MarketFrame, parse_market_frame};
use crbot::journal::{Journal, TicketSource};
use crbot::risk::Limits;
use criterion::{Criterion, criterion_group, criterion_main};
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
type Case = (&'static str, &'static str, fn(&str));

fn bench(c: &mut Criterion) {
    let (mut engine, _dir) = engine();
    let cases: [Case; 4] = [
        ("bookTicker", BOOK_TICKER, |t| {
            black_box(serde_json::from_str::<Plain<PlainBook>>(t).unwrap());
        }),
        ("miniTicker", MINI_TICKER, |t| {
            black_box(serde_json::from_str::<Plain<PlainMini>>(t).unwrap());
        }),
        ("kline_1m", KLINE, |t| {
            black_box(serde_json::from_str::<Plain<PlainKlineEvent>>(t).unwrap());
        }),
        ("depth5", DEPTH5, |t| {
            black_box(serde_json::from_str::<Plain<PlainDepth>>(t).unwrap());
        }),
    ];
    for (name, text, bare) in cases {
        let mut group = c.benchmark_group(format!("market/{name}"));
        group.bench_function("bare_serde_decode", |b| b.iter(|| bare(black_box(text))));
        group.bench_function("decode", |b| {
            b.iter(|| black_box(parse_market_frame(black_box(text), NOW).unwrap()))
        });
        let mut now = NOW;
        group.bench_function("decode_and_apply", |b| {
            b.iter(|| {
                now += 1;
                decode_and_apply(&mut engine, black_box(text), now)
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
