//! Public market data read from the tape and the candles: `GET /api/v3/trades`,
//! `historicalTrades`, `aggTrades`, the rolling-window `ticker` and `ticker/tradingDay`, with
//! Binance's parameters, limits and error codes (weights are `rest::endpoint`'s).
//!
//! Owns: those answers' JSON. Must not: change the market (it only reads).

use serde_json::{Value, json};

use super::super::Shared;
use super::super::engine::{ApiError, Params};
use super::super::market::{AggTrade, PublicTrade, Stats24h, SymbolMarket, s8};
use super::limit_param;

/// Most symbols `ticker` and `ticker/tradingDay` take in one request.
const MAX_TICKER_SYMBOLS: usize = 100;

fn trade_row(t: &PublicTrade) -> Value {
    json!({
        "id": t.id, "price": s8(t.price), "qty": s8(t.qty), "quoteQty": s8(t.price * t.qty),
        "time": t.time, "isBuyerMaker": t.buyer_maker, "isBestMatch": true
    })
}

fn agg_row(a: &AggTrade) -> Value {
    json!({
        "a": a.id, "p": s8(a.price), "q": s8(a.qty), "f": a.first_id, "l": a.last_id,
        "T": a.time, "m": a.buyer_maker, "M": true
    })
}

/// A `LONG` id parameter: an `i64`, negative ones count as 0.
fn id_param(p: &Params, name: &str) -> Result<Option<u64>, ApiError> {
    Ok(p.int(name)?.map(|v| v.max(0) as u64))
}

fn on_symbol<T>(shared: &Shared, p: &Params, f: impl FnOnce(&SymbolMarket) -> T) -> Result<T, ApiError> {
    let symbol = p.req("symbol")?;
    let e = shared.engine();
    e.market.get(symbol).map(f).ok_or_else(ApiError::bad_symbol)
}

/// `GET /api/v3/trades`: the most recent trades.
pub(super) fn trades(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let limit = limit_param(p, 500, 1000)?;
    on_symbol(shared, p, |m| {
        Value::Array(m.tape.recent(limit).into_iter().map(trade_row).collect())
    })
}

/// `GET /api/v3/historicalTrades`: from `fromId` on, else the most recent.
pub(super) fn historical_trades(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let limit = limit_param(p, 500, 1000)?;
    let from = id_param(p, "fromId")?;
    on_symbol(shared, p, |m| {
        let rows = match from {
            Some(id) => m.tape.from_id(id, limit),
            None => m.tape.recent(limit),
        };
        Value::Array(rows.into_iter().map(trade_row).collect())
    })
}

/// `GET /api/v3/aggTrades`.
pub(super) fn agg_trades(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let limit = limit_param(p, 500, 1000)?;
    let from = id_param(p, "fromId")?;
    let start = p.int("startTime")?;
    let end = p.int("endTime")?;
    on_symbol(shared, p, |m| {
        Value::Array(
            m.tape
                .aggs(from, start, end, limit)
                .into_iter()
                .map(agg_row)
                .collect(),
        )
    })
}

/// `windowSize`: `1m`..`59m`, `1h`..`23h`, `1d`..`7d`, in milliseconds.
fn window_ms(p: &Params) -> Result<i64, ApiError> {
    let raw = p.get("windowSize").unwrap_or("1d");
    let bad = || {
        ApiError::bad(
            -1100,
            "Illegal characters found in parameter 'windowSize'; legal range is '1m..59m, 1h..23h, 1d..7d'.",
        )
    };
    let (num, unit) = raw.split_at(raw.len().saturating_sub(1));
    if num.is_empty() || num.len() > 2 || !num.bytes().all(|b| b.is_ascii_digit()) || num.starts_with('0') {
        return Err(bad());
    }
    let n: i64 = num.parse().map_err(|_| bad())?;
    let (max, unit_ms) = match unit {
        "m" => (59, 60_000),
        "h" => (23, 3_600_000),
        "d" => (7, 86_400_000),
        _ => return Err(bad()),
    };
    if n > max {
        return Err(bad());
    }
    Ok(n * unit_ms)
}

/// `timeZone` of `ticker/tradingDay`: `H`, `-H`, `H:MM` or `-H:MM`, within [-12:00, +14:00];
/// the offset from UTC in milliseconds.
fn time_zone_ms(p: &Params) -> Result<i64, ApiError> {
    let Some(raw) = p.get("timeZone") else {
        return Ok(0);
    };
    let bad = || {
        ApiError::bad(
            -1100,
            "Illegal characters found in parameter 'timeZone'; legal range is '[-12:00 to +14:00]'.",
        )
    };
    let (sign, rest) = match raw.strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, raw.strip_prefix('+').unwrap_or(raw)),
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let small = |s: &str| (1..=2).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    if !small(h) || !small(m) {
        return Err(bad());
    }
    let (h, m): (i64, i64) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    let minutes = sign * (h * 60 + m);
    if m >= 60 || !(-12 * 60..=14 * 60).contains(&minutes) {
        return Err(bad());
    }
    Ok(minutes * 60_000)
}

/// The symbols a ticker request names: `symbol` (answered as an object) or `symbols` (a JSON
/// array, answered as an array), exactly one of them.
fn ticker_symbols(shared: &Shared, p: &Params) -> Result<(Vec<String>, bool), ApiError> {
    let e = shared.engine();
    let known = |s: &str| e.market.get(s).is_some();
    match (p.get("symbol"), p.get("symbols")) {
        (Some(_), Some(_)) => Err(ApiError::bad(
            -1128,
            "Combination of optional parameters invalid.",
        )),
        (None, None) => Err(ApiError::bad(
            -1102,
            "Param 'symbol' or 'symbols' must be sent, but both were empty/null!",
        )),
        (Some(s), None) => {
            if !known(s) {
                return Err(ApiError::bad_symbol());
            }
            Ok((vec![s.to_string()], true))
        }
        (None, Some(raw)) => {
            let list: Vec<String> = serde_json::from_str(raw)
                .map_err(|_| ApiError::bad(-1100, "Illegal characters found in parameter 'symbols'."))?;
            if list.is_empty() {
                return Err(ApiError::mandatory("symbols"));
            }
            if list.len() > MAX_TICKER_SYMBOLS {
                return Err(ApiError::bad(
                    -1101,
                    format!("Too many values sent for parameter 'symbols', max {MAX_TICKER_SYMBOLS}."),
                ));
            }
            if super::has_duplicates(list.iter().map(String::as_str)) {
                return Err(ApiError::bad(
                    -1151,
                    "Symbol is present multiple times in the list.",
                ));
            }
            if !list.iter().all(|s| known(s)) {
                return Err(ApiError::bad_symbol());
            }
            Ok((list, false))
        }
    }
}

/// `symbolStatus`: every symbol of the sim is `TRADING`; a single symbol that does not match
/// is an error, a list just leaves it out.
fn status_matches(p: &Params) -> Result<bool, ApiError> {
    match p.get("symbolStatus") {
        None | Some("TRADING") => Ok(true),
        Some("HALT") | Some("BREAK") => Ok(false),
        Some(_) => Err(ApiError::bad(-1122, "Invalid symbolStatus.")),
    }
}

fn window_json(symbol: &str, st: &Stats24h, open_time: i64, close_time: i64, mini: bool) -> Value {
    let mut v = json!({
        "symbol": symbol, "openPrice": s8(st.open), "highPrice": s8(st.high), "lowPrice": s8(st.low),
        "lastPrice": s8(st.last), "volume": s8(st.volume), "quoteVolume": s8(st.quote_volume),
        "openTime": open_time, "closeTime": close_time, "firstId": st.first_id, "lastId": st.last_id,
        "count": st.count
    });
    if !mini && let Some(o) = v.as_object_mut() {
        o.insert("priceChange".into(), json!(s8(st.price_change())));
        o.insert(
            "priceChangePercent".into(),
            json!(st.price_change_percent().to_string()),
        );
        o.insert("weightedAvgPrice".into(), json!(s8(st.weighted_avg_price())));
    }
    v
}

/// Shared by both tickers: the window `[from, close]` for each named symbol.
fn windowed(shared: &Shared, p: &Params, from: i64, close: i64, now: i64) -> Result<Value, ApiError> {
    let mini = match p.get("type") {
        None | Some("FULL") => false,
        Some("MINI") => true,
        Some(_) => return Err(ApiError::bad(-1139, "Invalid ticker type.")),
    };
    let matches = status_matches(p)?;
    let (symbols, single) = ticker_symbols(shared, p)?;
    if single && !matches {
        return Err(ApiError::bad(
            -1220,
            "The symbol's trading status does not match the requested symbolStatus.",
        ));
    }
    let e = shared.engine();
    let rows: Vec<Value> = symbols
        .iter()
        .filter(|_| matches)
        .filter_map(|s| e.market.get(s))
        .map(|m| window_json(m.spec.symbol, &m.stats_from(from, now), from, close, mini))
        .collect();
    if single {
        return rows.into_iter().next().ok_or_else(ApiError::bad_symbol);
    }
    Ok(Value::Array(rows))
}

/// `GET /api/v3/ticker`: the window opens on the minute at or before `now - windowSize` and
/// closes now.
pub(super) fn rolling_ticker(shared: &Shared, p: &Params, now: i64) -> Result<Value, ApiError> {
    let w = window_ms(p)?;
    let start = now - w;
    let from = start - start.rem_euclid(60_000);
    windowed(shared, p, from, now, now)
}

/// `GET /api/v3/ticker/tradingDay`: the day (in `timeZone`) that holds now.
pub(super) fn trading_day(shared: &Shared, p: &Params, now: i64) -> Result<Value, ApiError> {
    let from = day_start(now, time_zone_ms(p)?);
    windowed(shared, p, from, from + DAY - 1, now)
}

const DAY: i64 = 86_400_000;

/// The UTC time of the local midnight that began the day holding `now`, `offset` from UTC.
fn day_start(now: i64, offset: i64) -> i64 {
    let local = now + offset;
    local - local.rem_euclid(DAY) - offset
}

/// Weight of `ticker` and `ticker/tradingDay`: 4 per symbol, 200 beyond 50 symbols.
pub(super) fn ticker_weight(p: &Params) -> u64 {
    let n = if p.get("symbol").is_some() {
        1
    } else {
        p.get("symbols")
            .and_then(|raw| serde_json::from_str::<Vec<Value>>(raw).ok())
            .map_or(1, |l| l.len().max(1))
    };
    if n > 50 { 200 } else { 4 * n as u64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn window_sizes_follow_the_documented_ranges() {
        let ok = |s: &str| window_ms(&params(&[("windowSize", s)])).ok();
        assert_eq!(ok("1m"), Some(60_000));
        assert_eq!(ok("59m"), Some(59 * 60_000));
        assert_eq!(ok("23h"), Some(23 * 3_600_000));
        assert_eq!(ok("7d"), Some(7 * 86_400_000));
        assert_eq!(window_ms(&params(&[])).ok(), Some(86_400_000));
        for bad in ["60m", "24h", "8d", "0m", "1d2h", "m", "01m", "1w", "-1m", "1M"] {
            assert_eq!(
                window_ms(&params(&[("windowSize", bad)])).map_err(|e| e.code),
                Err(-1100),
                "{bad}"
            );
        }
    }

    #[test]
    fn time_zones_are_hours_or_hours_and_minutes_within_the_documented_range() {
        let tz = |s: &str| time_zone_ms(&params(&[("timeZone", s)])).ok();
        assert_eq!(tz("0"), Some(0));
        assert_eq!(tz("8"), Some(8 * 3_600_000));
        assert_eq!(tz("-1:00"), Some(-3_600_000));
        assert_eq!(tz("05:45"), Some((5 * 60 + 45) * 60_000));
        assert_eq!(tz("14:00"), Some(14 * 3_600_000));
        for bad in ["15", "-13", "5:60", "x", "1:2:3", "999", "+"] {
            assert!(tz(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn ticker_weight_is_four_per_symbol_capped_at_200() {
        assert_eq!(ticker_weight(&params(&[("symbol", "BTCUSDT")])), 4);
        assert_eq!(ticker_weight(&params(&[("symbols", "[\"A\",\"B\",\"C\"]")])), 12);
        let many: Vec<String> = (0..51).map(|i| format!("\"S{i}\"")).collect();
        let raw = format!("[{}]", many.join(","));
        assert_eq!(ticker_weight(&params(&[("symbols", &raw)])), 200);
    }

    #[test]
    fn a_trading_day_in_a_time_zone_starts_at_its_local_midnight() {
        // 2023-09-26T01:00Z is still 2023-09-25 at -5:00: that day opens at 05:00Z.
        assert_eq!(day_start(1_695_690_000_000, -5 * 3_600_000), 1_695_618_000_000);
        // The same instant is 2023-09-26 in UTC and at +8:00 (09:00 local).
        assert_eq!(day_start(1_695_690_000_000, 0), 1_695_686_400_000);
        assert_eq!(day_start(1_695_690_000_000, 8 * 3_600_000), 1_695_657_600_000);
    }
}
