//! Paper price source: drives the local exchange's books from a Binance combined `@bookTicker`
//! stream (`--prices binance[=WS_URL]`) instead of the synthetic walk.
//!
//! Owns: the feed connection and its reconnects. Must not: send anything but the stream
//! request; it reads public market data only, so no key ever travels on it.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use rust_decimal::Decimal;
use serde_json::Value;

use super::Shared;

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
    fn builds_the_combined_url() {
        let u = feed_url("ws://h:1/", &["BTCUSDT".into(), "ETHUSDT".into()]);
        assert_eq!(u, "ws://h:1/stream?streams=btcusdt@bookTicker/ethusdt@bookTicker");
    }
}
