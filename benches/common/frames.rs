//! Binance combined-stream frames, as the market stream receives them, for the benches that
//! feed the engine a synthetic market (`burst`, `rss_day`): the six watched symbols'
//! `@bookTicker`, `@miniTicker` and `@kline_1m`, and the selected symbol's `@aggTrade`,
//! `@depth@100ms` diffs and chart kline. Owns only the text; nothing here sends or times it.
#![allow(dead_code)]

use rust_decimal::Decimal;

/// The console's default watchlist (the first one is selected at start).
pub const SYMBOLS: [&str; 6] = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "DOGEUSDT"];

/// A plausible price for each of [`SYMBOLS`] (`BTCUSDT`'s quotes are the benches' own).
pub fn base_price(symbol: usize) -> Decimal {
    match symbol {
        0 => Decimal::new(7_900_000, 2),
        1 => Decimal::new(350_000, 2),
        2 => Decimal::new(20_000, 2),
        3 => Decimal::new(60_000, 2),
        4 => Decimal::new(22_150, 4),
        _ => Decimal::new(32150, 5),
    }
}

fn lower(symbol: &str) -> String {
    symbol.to_ascii_lowercase()
}

pub fn book_ticker(symbol: &str, update_id: u64, bid: Decimal, ask: Decimal) -> String {
    format!(
        r#"{{"stream":"{}@bookTicker","data":{{"u":{update_id},"s":"{symbol}","b":"{bid:.8}","B":"0.41200000","a":"{ask:.8}","A":"1.25300000"}}}}"#,
        lower(symbol)
    )
}

pub fn mini_ticker(symbol: &str, event_ms: i64, close: Decimal) -> String {
    format!(
        r#"{{"stream":"{}@miniTicker","data":{{"e":"24hrMiniTicker","E":{event_ms},"s":"{symbol}","c":"{close:.8}","o":"{close:.8}","h":"{close:.8}","l":"{close:.8}","v":"18231.12000000","q":"1771234567.12000000"}}}}"#,
        lower(symbol)
    )
}

/// A kline at `interval` opened at `open_ms`, still open unless `closed`.
pub fn kline(
    symbol: &str,
    interval: &str,
    event_ms: i64,
    open_ms: i64,
    price: Decimal,
    closed: bool,
) -> String {
    let span = match interval {
        "1m" => 60_000,
        "5m" => 300_000,
        "1h" => 3_600_000,
        _ => 86_400_000,
    };
    format!(
        r#"{{"stream":"{s}@kline_{interval}","data":{{"e":"kline","E":{event_ms},"s":"{symbol}","k":{{"t":{open_ms},"T":{close_ms},"s":"{symbol}","i":"{interval}","f":100,"L":200,"o":"{price:.8}","c":"{price:.8}","h":"{price:.8}","l":"{price:.8}","v":"12.31000000","n":100,"x":{closed},"q":"1197000.00000000","V":"6.10000000","Q":"593000.00000000","B":"0"}}}}}}"#,
        s = lower(symbol),
        close_ms = open_ms + span - 1,
    )
}

pub fn agg_trade(symbol: &str, id: u64, event_ms: i64, price: Decimal, buyer_maker: bool) -> String {
    format!(
        r#"{{"stream":"{}@aggTrade","data":{{"e":"aggTrade","E":{event_ms},"s":"{symbol}","a":{id},"p":"{price:.8}","q":"0.01200000","f":{id},"l":{id},"T":{event_ms},"m":{buyer_maker},"M":true}}}}"#,
        lower(symbol)
    )
}

/// A `depthUpdate` spanning `first..=last`, five levels a side around `mid` (one removed).
pub fn depth_diff(symbol: &str, event_ms: i64, first: u64, last: u64, mid: Decimal) -> String {
    let tick = Decimal::new(1, 2);
    let level = |side: i64, k: u64| {
        let offset = Decimal::from(((first + k * 3) % 20 + 1) as i64) * tick;
        let price = if side < 0 { mid - offset } else { mid + offset };
        let qty = if (first + k).is_multiple_of(5) {
            Decimal::ZERO
        } else {
            Decimal::new(((first * 13 + k * 17) % 5000 + 1) as i64, 4)
        };
        format!(r#"["{price:.8}","{qty:.8}"]"#)
    };
    let side = |s: i64| (0..5).map(|k| level(s, k)).collect::<Vec<_>>().join(",");
    format!(
        r#"{{"stream":"{}@depth@100ms","data":{{"e":"depthUpdate","E":{event_ms},"s":"{symbol}","U":{first},"u":{last},"b":[{}],"a":[{}]}}}}"#,
        lower(symbol),
        side(-1),
        side(1)
    )
}
