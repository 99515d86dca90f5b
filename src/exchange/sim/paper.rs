//! Paper price source: drives the local exchange's books from a Binance combined `@bookTicker`
//! stream (`--prices binance[=WS_URL]`) instead of the synthetic walk.
//!
//! Until a symbol's first real quote it has no price at all ([`await_real_prices`]): no book,
//! no last price, no candles, no trades. The synthetic market the exchange starts from (BTC
//! 97 250 and an 8-hour chart), or the prices a previous run saved, would otherwise be served
//! as if they were Binance's, and a client would value an account and check tickets on them.
//!
//! Owns: the feed connection and its reconnects, and the unpriced start. Must not: send
//! anything but the stream request; it reads public market data only, so no key ever travels
//! on it.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use rust_decimal::Decimal;
use serde_json::Value;

use super::Shared;
use super::market::{Market, Tape};

/// Takes every symbol's placeholder price away until its first real quote: the book, the
/// last price, the candles and the tape are emptied. The exchange's answers then say what
/// Binance says of a market with no orders and no trades (an empty book, zero prices, no
/// klines), which clients read as "no price" rather than as a price.
pub fn await_real_prices(market: &mut Market) {
    for m in &mut market.symbols {
        m.bids.clear();
        m.asks.clear();
        m.mid = Decimal::ZERO;
        m.last_price = Decimal::ZERO;
        m.last_qty = Decimal::ZERO;
        m.candles.clear();
        m.tape = Tape::default();
    }
}

/// The stream URL for every symbol of the sim.
pub fn feed_url(base: &str, symbols: &[String]) -> String {
    let streams: Vec<String> = symbols
        .iter()
        .map(|s| format!("{}@bookTicker", s.to_lowercase()))
        .collect();
    format!(
        "{}/stream?streams={}",
        base.trim_end_matches('/'),
        streams.join("/")
    )
}

/// Parses one combined-stream bookTicker message into (symbol, bid, ask).
pub type Level = (Decimal, Decimal);

/// (symbol, best bid, best ask) of one bookTicker message.
pub type Top = (String, Level, Level);

pub fn parse_book_ticker(text: &str) -> Option<Top> {
    let v: Value = serde_json::from_str(text).ok()?;
    let d = v.get("data").unwrap_or(&v);
    let num = |k: &str| d.get(k)?.as_str()?.parse::<Decimal>().ok();
    Some((
        d.get("s")?.as_str()?.to_string(),
        (num("b")?, num("B")?),
        (num("a")?, num("A")?),
    ))
}

pub(crate) async fn feed_task(shared: Arc<Shared>, base: String) {
    let symbols: Vec<String> = {
        let e = shared.engine();
        e.market
            .symbols
            .iter()
            .map(|s| s.spec.symbol.to_string())
            .collect()
    };
    let url = feed_url(&base, &symbols);
    let mut backoff = Duration::from_millis(500);
    loop {
        if shared.shutdown.is_cancelled() {
            return;
        }
        match tokio_tungstenite::connect_async(url.as_str()).await {
            Ok((mut stream, _)) => {
                backoff = Duration::from_millis(500);
                loop {
                    let msg = tokio::select! {
                        _ = shared.shutdown.cancelled() => return,
                        m = stream.next() => m,
                    };
                    let Some(Ok(msg)) = msg else { break };
                    if let tokio_tungstenite::tungstenite::Message::Text(t) = msg
                        && let Some((symbol, bid, ask)) = parse_book_ticker(t.as_str())
                    {
                        let now = shared.now();
                        let mut e = shared.engine();
                        // As in the synthetic market task: a bug in matching is logged, and
                        // the feed goes on instead of ending silently with every quote stale.
                        let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            e.set_quote(&symbol, bid, ask, now)
                        }));
                        if applied.is_err() {
                            tracing::error!("sim: applying a {symbol} quote failed; the feed goes on");
                        }
                        shared.publish(&mut e);
                    }
                }
                tracing::warn!("sim: paper price feed closed; reconnecting");
            }
            Err(e) => tracing::warn!("sim: paper price feed: {e}"),
        }
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_combined_and_raw_book_tickers() {
        let c = r#"{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"10.5","B":"1","a":"10.6","A":"2"}}"#;
        let (s, b, a) = parse_book_ticker(c).unwrap_or_default();
        assert_eq!(s, "BTCUSDT");
        assert_eq!(b, (Decimal::new(105, 1), Decimal::ONE));
        assert_eq!(a, (Decimal::new(106, 1), Decimal::TWO));
        assert!(parse_book_ticker("{}").is_none());
    }

    #[test]
    fn before_the_first_real_quote_a_symbol_has_no_price_and_after_it_only_the_real_one() {
        let mut market = Market::resume(7, Decimal::ONE, 1_000_000, &Default::default());
        let btc = market
            .symbols
            .iter()
            .find(|s| s.spec.symbol == "BTCUSDT")
            .unwrap();
        assert!(
            !btc.candles.is_empty() && !btc.last_price.is_zero(),
            "the synthetic start"
        );
        await_real_prices(&mut market);
        for m in &market.symbols {
            assert_eq!(m.best_bid().0, Decimal::ZERO, "{}", m.spec.symbol);
            assert_eq!(m.best_ask().0, Decimal::ZERO, "{}", m.spec.symbol);
            assert!(m.last_price.is_zero() && m.candles.is_empty() && m.tape.is_empty());
            assert!(m.avg_price(5).is_zero());
        }
        let bid = (Decimal::new(6_400_001, 2), Decimal::ONE);
        let ask = (Decimal::new(6_400_002, 2), Decimal::ONE);
        market.set_quote("BTCUSDT", bid, ask, 2_000_000).unwrap();
        let btc = market.get("BTCUSDT").unwrap();
        assert_eq!(btc.best_bid().0, bid.0);
        assert_eq!(btc.best_ask().0, ask.0);
        assert_eq!(
            btc.candles.len(),
            1,
            "one candle, at the real price: no synthetic history"
        );
        assert!(
            btc.candles
                .iter()
                .all(|c| c.close > Decimal::new(63_000, 0) && c.close < Decimal::new(65_000, 0))
        );
        let eth = market.get("ETHUSDT").unwrap();
        assert!(
            eth.best_bid().0.is_zero(),
            "a symbol not quoted yet stays unpriced"
        );
    }

    #[test]
    fn builds_the_combined_url() {
        let u = feed_url("ws://h:1/", &["BTCUSDT".into(), "ETHUSDT".into()]);
        assert_eq!(u, "ws://h:1/stream?streams=btcusdt@bookTicker/ethusdt@bookTicker");
    }
}
