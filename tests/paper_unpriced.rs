//! Paper mode before the first real quote: the local exchange serves no placeholder price
//! (empty book, zero prices, no klines, no trades), and the engine takes none of that for a
//! price: the watchlist shows none, the equity is not valued on it, and no ticket is approved.
#![allow(clippy::unwrap_used)]

#[path = "sim_support/client.rs"]
mod client;
mod machine_support;

use client::{Client, start};
use crbot::engine::machine::Answer;
use crbot::engine::snapshot::Command;
use crbot::exchange::sim::{PriceSource, SimConfig};
use crbot::risk::Limits;
use machine_support::*;
use rust_decimal::Decimal;

#[tokio::test]
async fn the_paper_exchange_serves_no_price_before_the_first_real_quote() {
    // A feed that never answers: no real quote arrives.
    let h = start(SimConfig {
        price_source: PriceSource::Binance("ws://127.0.0.1:9".into()),
        ..SimConfig::default()
    })
    .await;
    let c = Client::new(&h);
    let book = c
        .public("/api/v3/ticker/bookTicker", &[("symbol", "BTCUSDT")])
        .await;
    assert_eq!(book.status, 200, "{:?}", book.body);
    let zero = |v: &serde_json::Value| v.as_str().unwrap().parse::<Decimal>().unwrap().is_zero();
    assert!(
        zero(&book.body["bidPrice"]) && zero(&book.body["askPrice"]),
        "{}",
        book.body
    );
    let k = c
        .public("/api/v3/klines", &[("symbol", "BTCUSDT"), ("interval", "1m")])
        .await;
    assert_eq!(k.body.as_array().unwrap().len(), 0, "no chart: {}", k.body);
    let t = c.public("/api/v3/ticker/24hr", &[("symbol", "BTCUSDT")]).await;
    assert!(zero(&t.body["lastPrice"]), "{}", t.body);
    let trades = c.public("/api/v3/trades", &[("symbol", "BTCUSDT")]).await;
    assert_eq!(trades.body.as_array().map(Vec::len), Some(0), "{}", trades.body);
    h.shutdown().await;
}

#[test]
fn the_engine_takes_an_empty_book_for_no_price() {
    let mut s = Script::new(Limits::default(), false);
    s.step(crbot::engine::machine::Input::Started);
    s.answer(Answer::Info(Ok(info())));
    // What the paper exchange answers before the first real quote.
    s.step(quote_for(BTC, "0", "0", s.now));
    s.step(quote_for(ETH, "2999.99", "3000", s.now));
    s.answer(resynced(
        vec![balance("USDT", "10000", "0"), balance("BTC", "0.5", "0")],
        Vec::new(),
        s.now,
    ));
    let snap = s.snapshot();
    let btc = snap.watchlist.iter().find(|w| w.symbol.as_str() == BTC).unwrap();
    assert_eq!(
        (btc.last, btc.bid, btc.ask),
        (None, None, None),
        "shown as unknown"
    );
    assert!(
        snap.equity_status.is_incomplete() || snap.equity.is_none(),
        "{:?}",
        snap.equity_status
    );

    // No ticket is approved on it: the quote rule fails for want of a quote (a zero quote
    // taken for one would fail the fat-finger rule instead and pass this one).
    s.command(Command::PreviewTicket(entry_draft()));
    let preview = s.snapshot().ticket_preview.unwrap();
    assert!(!preview.approved, "{preview:?}");
    let quote = preview
        .rules
        .iter()
        .find(|r| r.code == "NO_QUOTE")
        .unwrap_or_else(|| panic!("{:?}", preview.rules));
    assert!(!quote.passed, "{quote:?}");
}
