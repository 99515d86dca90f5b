//! WebSocket side of the local exchange: market streams (`/ws/<stream>`, `/stream?streams=`,
//! Binance's web-socket-streams.md) and the WebSocket API (`/ws-api/v3`, web-socket-api.md) with
//! user-data events.
//!
//! Owns: stream names and payloads, control messages (SUBSCRIBE, UNSUBSCRIBE,
//! LIST_SUBSCRIPTIONS), connection upkeep (server ping every 20 s, close without a pong within
//! 60 s, a lifetime, `serverShutdown`), and the WebSocket API request/response envelope.
//! Must not: change orders except through the operations in `ops` the REST API uses too, or
//! import `rest`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::engine::{ApiError, Levels, Params, depth_side};
use super::market::{self, Market, MarketEvent, SymbolMarket, klines, s8};
use super::{Shared, auth, ops};

// -------------------------------------------------------------------- stream payloads

/// Renders real-time events into `(stream name, payload)` pairs.
pub(crate) fn render_events(m: &Market, events: &[MarketEvent]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for ev in events {
        match ev {
            MarketEvent::Trade { symbol, trade: t } => {
                let l = symbol.to_lowercase();
                out.push((
                    format!("{l}@trade"),
                    json!({"e": "trade", "E": t.time, "s": symbol, "t": t.id, "p": s8(t.price), "q": s8(t.qty),
                           "T": t.time, "m": t.buyer_maker, "M": true})
                    .to_string(),
                ));
                out.push((
                    format!("{l}@aggTrade"),
                    json!({"e": "aggTrade", "E": t.time, "s": symbol, "a": t.id, "p": s8(t.price), "q": s8(t.qty),
                           "f": t.id, "l": t.id, "T": t.time, "m": t.buyer_maker, "M": true})
                    .to_string(),
                ));
            }
            MarketEvent::Depth { symbol, time, diff } => {
                let l = symbol.to_lowercase();
                let side = |v: &Vec<(Decimal, Decimal)>| -> Vec<Value> {
                    v.iter().map(|(p, q)| json!([s8(*p), s8(*q)])).collect()
                };
                let payload =
                    json!({"e": "depthUpdate", "E": time, "s": symbol, "U": diff.first_id, "u": diff.last_id,
                                     "b": side(&diff.bids), "a": side(&diff.asks)})
                    .to_string();
                out.push((format!("{l}@depth"), payload.clone()));
                out.push((format!("{l}@depth@100ms"), payload));
            }
            MarketEvent::BookTicker { symbol } => {
                if let Some(s) = m.get(symbol) {
                    let (b, a) = (s.best_bid(), s.best_ask());
                    out.push((
                        format!("{}@bookTicker", symbol.to_lowercase()),
                        json!({"u": s.update_id, "s": symbol, "b": s8(b.0), "B": s8(b.1), "a": s8(a.0), "A": s8(a.1)})
                            .to_string(),
                    ));
                }
            }
        }
    }
    out
}

const REALTIME: [&str; 5] = ["trade", "aggTrade", "bookTicker", "depth", "depth@100ms"];
const PERIODIC: [&str; 9] = [
    "miniTicker",
    "ticker",
    "depth5",
    "depth10",
    "depth20",
    "depth5@100ms",
    "depth10@100ms",
    "depth20@100ms",
    "avgPrice",
];

/// Is this a stream the sim serves?
fn valid_stream(m: &Market, name: &str) -> bool {
    if name == "!miniTicker@arr" {
        return true;
    }
    let Some((sym, kind)) = name.split_once('@') else {
        return false;
    };
    if sym != sym.to_lowercase() || m.get(&sym.to_uppercase()).is_none() {
        return false;
    }
    REALTIME.contains(&kind)
        || PERIODIC.contains(&kind)
        || kind
            .strip_prefix("kline_")
            .is_some_and(|i| market::interval_ms(i).is_some())
}

fn mini_ticker(s: &SymbolMarket, now: i64) -> Value {
    let st = s.stats_24h(now);
    json!({"e": "24hrMiniTicker", "E": now, "s": s.spec.symbol, "c": s8(st.last), "o": s8(st.open),
           "h": s8(st.high), "l": s8(st.low), "v": s8(st.volume), "q": s8(st.quote_volume)})
}

fn kline_payload(
    s: &SymbolMarket,
    interval: &str,
    start: i64,
    end: i64,
    c: &market::Candle,
    closed: bool,
    now: i64,
) -> Value {
    json!({"e": "kline", "E": now, "s": s.spec.symbol, "k": {
        "t": start, "T": end, "s": s.spec.symbol, "i": interval, "f": c.first_trade_id, "L": c.last_trade_id,
        "o": s8(c.open), "c": s8(c.close), "h": s8(c.high), "l": s8(c.low), "v": s8(c.volume),
        "n": c.trades, "x": closed, "q": s8(c.quote_volume), "V": s8(c.taker_buy_base),
        "Q": s8(c.taker_buy_quote), "B": "0"}})
}

/// The final update (`x: true`) of the kline a connection last saw, when a new one has begun.
fn closed_kline(m: &Market, name: &str, last_start: &mut BTreeMap<String, i64>, now: i64) -> Option<String> {
    let (sym, kind) = name.split_once('@')?;
    let interval = kind.strip_prefix("kline_")?;
    let s = m.get(&sym.to_uppercase())?;
    let rows = klines(s, interval)?;
    let (newest, _, _) = rows.last()?;
    let prev = last_start.insert(name.to_string(), *newest);
    match prev {
        Some(p) if p < *newest => {
            let (start, end, c) = rows.iter().find(|(st, _, _)| *st == p)?;
            Some(kline_payload(s, interval, *start, *end, c, true, now).to_string())
        }
        _ => None,
    }
}

/// Renders a periodic (1 s) stream now. `own` gives a symbol's levels of the account's resting
/// orders, which the partial-depth streams show with the synthetic book (as REST depth does).
fn render_periodic(
    m: &Market,
    name: &str,
    now: i64,
    own: impl Fn(&str) -> (Levels, Levels),
) -> Option<String> {
    if name == "!miniTicker@arr" {
        return Some(Value::Array(m.symbols.iter().map(|s| mini_ticker(s, now)).collect()).to_string());
    }
    let (sym, kind) = name.split_once('@')?;
    let s = m.get(&sym.to_uppercase())?;
    let v = match kind {
        "miniTicker" => mini_ticker(s, now),
        "ticker" => {
            let st = s.stats_24h(now);
            let (b, a) = (s.best_bid(), s.best_ask());
            json!({"e": "24hrTicker", "E": now, "s": s.spec.symbol, "p": s8(st.price_change()),
                   "P": st.price_change_percent().to_string(), "w": s8(st.weighted_avg_price()),
                   "x": s8(st.open), "c": s8(st.last), "Q": s8(s.last_qty), "b": s8(b.0), "B": s8(b.1),
                   "a": s8(a.0), "A": s8(a.1), "o": s8(st.open), "h": s8(st.high), "l": s8(st.low),
                   "v": s8(st.volume), "q": s8(st.quote_volume), "O": st.open_time, "C": now,
                   "F": st.first_id, "L": st.last_id, "n": st.count})
        }
        "avgPrice" => {
            json!({"e": "avgPrice", "E": now, "s": s.spec.symbol, "i": "5m", "w": s8(s.avg_price(5)), "T": now})
        }
        k if k.starts_with("depth") => {
            let n: usize = k
                .trim_start_matches("depth")
                .trim_end_matches("@100ms")
                .parse()
                .ok()?;
            let (own_bids, own_asks) = own(s.spec.symbol);
            json!({"lastUpdateId": s.update_id, "bids": depth_side(&s.bids, &own_bids, true, n),
                   "asks": depth_side(&s.asks, &own_asks, false, n)})
        }
        k => {
            let interval = k.strip_prefix("kline_")?;
            let rows = klines(s, interval)?;
            let (start, end, c) = rows.last()?;
            kline_payload(s, interval, *start, *end, c, false, now)
        }
    };
    Some(v.to_string())
}

// -------------------------------------------------------------------- market streams

#[derive(Debug, serde::Deserialize)]
pub struct StreamsQuery {
    streams: Option<String>,
}

pub(crate) async fn stream_handler_root(State(shared): State<Arc<Shared>>, ws: WebSocketUpgrade) -> Response {
    ws.max_message_size(MAX_STREAM_MESSAGE)
        .max_frame_size(MAX_STREAM_MESSAGE)
        .on_upgrade(move |socket| stream_conn(shared, socket, Vec::new(), false))
}

pub(crate) async fn stream_handler_raw(
    State(shared): State<Arc<Shared>>,
    Path(streams): Path<String>,
    ws: WebSocketUpgrade,
) -> Response {
    let list = split_streams(&streams);
    ws.max_message_size(MAX_STREAM_MESSAGE)
        .max_frame_size(MAX_STREAM_MESSAGE)
        .on_upgrade(move |socket| stream_conn(shared, socket, list, false))
}

pub(crate) async fn stream_handler_combined(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<StreamsQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let list = split_streams(q.streams.as_deref().unwrap_or(""));
    ws.max_message_size(MAX_STREAM_MESSAGE)
        .max_frame_size(MAX_STREAM_MESSAGE)
        .on_upgrade(move |socket| stream_conn(shared, socket, list, true))
}

fn split_streams(s: &str) -> Vec<String> {
    let decoded = percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .to_string();
    decoded
        .split('/')
        .filter(|x| !x.is_empty())
        .take(MAX_STREAMS)
        .map(str::to_string)
        .collect()
}

/// Per-connection send helper: wraps in the combined envelope and applies the malformed-frame fault.
struct Sender {
    combined: bool,
    sent: u64,
}

impl Sender {
    fn frame(&mut self, shared: &Shared, stream: &str, payload: &str) -> String {
        self.sent += 1;
        if let Some(n) = shared.faults.get().malformed_ws_every
            && self.sent.is_multiple_of(n)
        {
            return "{\"stream\":\"malformed\",\"data\":{\"e\":".to_string();
        }
        if self.combined {
            format!("{{\"stream\":\"{stream}\",\"data\":{payload}}}")
        } else {
            payload.to_string()
        }
    }
}

async fn send_text(socket: &mut WebSocket, text: String) -> bool {
    socket.send(Message::Text(Utf8Bytes::from(text))).await.is_ok()
}

async fn stream_conn(shared: Arc<Shared>, mut socket: WebSocket, initial: Vec<String>, combined: bool) {
    let mut subs: Vec<String> = Vec::new();
    {
        let e = shared.engine();
        for s in initial {
            if valid_stream(&e.market, &s) && !subs.contains(&s) {
                subs.push(s);
            }
        }
    }
    let mut out = Sender { combined, sent: 0 };
    let mut market_rx = shared.market_tx.subscribe();
    let mut drops = shared.faults.drop_signal();
    drops.borrow_and_update();
    let cfg = shared.config.clone();
    let deadline = tokio::time::sleep(cfg.ws_lifetime);
    tokio::pin!(deadline);
    let mut ping = tokio::time::interval_at(Instant::now() + cfg.ws_ping_interval, cfg.ws_ping_interval);
    // 100 ms ticks: `@depthN@100ms` every tick, the 1 s streams every tenth.
    let mut periodic = tokio::time::interval(Duration::from_millis(100));
    let mut ticks: u64 = 0;
    let mut last_pong = Instant::now();
    let mut kline_starts: BTreeMap<String, i64> = BTreeMap::new();
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => {
                let now = shared.now();
                let ev = json!({"e": "serverShutdown", "E": now}).to_string();
                let text = if combined { format!("{{\"stream\":\"!serverShutdown\",\"data\":{ev}}}") } else { ev };
                let _ = send_text(&mut socket, text).await;
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
            _ = drops.changed() => return,
            _ = &mut deadline => {
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
            _ = ping.tick() => {
                if last_pong.elapsed() > cfg.ws_pong_timeout {
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
                let payload = shared.now().to_string();
                if socket.send(Message::Ping(payload.into_bytes().into())).await.is_err() {
                    return;
                }
            }
            _ = periodic.tick() => {
                let now = shared.now();
                let whole_second = ticks.is_multiple_of(10);
                ticks += 1;
                let mut frames: Vec<String> = Vec::new();
                {
                    let e = shared.engine();
                    let due = |s: &&String| !is_realtime(s) && (whole_second || s.ends_with("@100ms"));
                    for s in subs.iter().filter(due) {
                        if let Some(p) = closed_kline(&e.market, s, &mut kline_starts, now) {
                            frames.push(out.frame(&shared, s, &p));
                        }
                        if let Some(p) = render_periodic(&e.market, s, now, |sym| e.own_levels(sym)) {
                            frames.push(out.frame(&shared, s, &p));
                        }
                    }
                }
                for f in frames {
                    if !send_text(&mut socket, f).await {
                        return;
                    }
                }
            }
            batch = market_rx.recv() => {
                let batch = match batch {
                    Ok(b) => b,
                    // A reader too slow to keep up is disconnected rather than shown a gap.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                    Err(_) => return,
                };
                for (stream, payload) in batch.iter() {
                    if subs.iter().any(|s| s == stream) {
                        let f = out.frame(&shared, stream, payload);
                        if !send_text(&mut socket, f).await {
                            return;
                        }
                    }
                }
            }
            msg = socket.recv() => {
                let Some(Ok(msg)) = msg else { return };
                match msg {
                    Message::Pong(_) => last_pong = Instant::now(),
                    Message::Close(_) => return,
                    Message::Text(t) => {
                        let reply = {
                            let e = shared.engine();
                            control_message(&e.market, &mut subs, t.as_str())
                        };
                        if !send_text(&mut socket, reply.to_string()).await {
                            return;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

fn is_realtime(stream: &str) -> bool {
    stream.split_once('@').is_some_and(|(_, k)| REALTIME.contains(&k))
}

/// SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS (§7.2).
fn control_message(m: &Market, subs: &mut Vec<String>, text: &str) -> Value {
    let Ok(req) = serde_json::from_str::<Value>(text) else {
        return json!({"error": {"code": 3, "msg": "Invalid JSON: expected value"}, "id": null});
    };
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    let id_ok = match &id {
        Value::Null => true,
        Value::Number(n) => n.is_i64(),
        Value::String(s) => s.len() <= 36 && s.chars().all(|c| c.is_ascii_alphanumeric()),
        _ => false,
    };
    if !id_ok {
        return json!({"error": {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"}, "id": null});
    }
    let method = req.get("method").and_then(Value::as_str).unwrap_or("");
    let params: Vec<String> = req
        .get("params")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    match method {
        "SUBSCRIBE" => {
            if let Some(bad) = params.iter().find(|p| !valid_stream(m, p)) {
                return json!({"error": {"code": 2, "msg": format!("Invalid request: unknown stream '{bad}'")}, "id": id});
            }
            let new = params.iter().filter(|p| !subs.contains(p)).count();
            if subs.len() + new > MAX_STREAMS {
                return json!({"error": {"code": 2, "msg": format!(
                    "Invalid request: a connection may subscribe to at most {MAX_STREAMS} streams"
                )}, "id": id});
            }
            for p in params {
                if !subs.contains(&p) {
                    subs.push(p);
                }
            }
            json!({"result": null, "id": id})
        }
        "UNSUBSCRIBE" => {
            subs.retain(|s| !params.contains(s));
            json!({"result": null, "id": id})
        }
        "LIST_SUBSCRIPTIONS" => json!({"result": subs, "id": id}),
        _ => json!({"error": {"code": 2, "msg": "Invalid request: unknown method"}, "id": id}),
    }
}

// -------------------------------------------------------------------- WebSocket API

/// Largest WebSocket API message read: room for a request with far more than `MAX_PARAMS`
/// parameters (so that it can be answered `-1101`), far below the library's 64 MiB default.
const MAX_API_MESSAGE: usize = 1024 * 1024;
/// Largest message read on a market-stream connection (control messages are tiny).
const MAX_STREAM_MESSAGE: usize = 64 * 1024;
/// Streams one connection may subscribe to (Binance: 1024).
const MAX_STREAMS: usize = 1024;

pub(crate) async fn api_handler(State(shared): State<Arc<Shared>>, ws: WebSocketUpgrade) -> Response {
    ws.max_message_size(MAX_API_MESSAGE)
        .max_frame_size(MAX_API_MESSAGE)
        .on_upgrade(move |socket| api_conn(shared, socket))
}

struct ApiSession {
    connected: i64,
    subscription: Option<u64>,
    next_subscription: u64,
}

async fn api_conn(shared: Arc<Shared>, mut socket: WebSocket) {
    let mut session = ApiSession {
        connected: shared.now(),
        subscription: None,
        next_subscription: 0,
    };
    let mut user_rx = shared.user_tx.subscribe();
    let mut drops = shared.faults.drop_signal();
    drops.borrow_and_update();
    let cfg = shared.config.clone();
    let deadline = tokio::time::sleep(cfg.ws_lifetime);
    tokio::pin!(deadline);
    let mut ping = tokio::time::interval_at(Instant::now() + cfg.ws_ping_interval, cfg.ws_ping_interval);
    let mut last_pong = Instant::now();
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => {
                let ev = json!({"event": {"e": "serverShutdown", "E": shared.now()}}).to_string();
                let _ = send_text(&mut socket, ev).await;
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
            _ = drops.changed() => return,
            _ = &mut deadline => {
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
            _ = ping.tick() => {
                if last_pong.elapsed() > cfg.ws_pong_timeout {
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
                if socket.send(Message::Ping(shared.now().to_string().into_bytes().into())).await.is_err() {
                    return;
                }
            }
            ev = user_rx.recv() => {
                let ev = match ev {
                    Ok(e) => e,
                    // A reader too slow to keep up is disconnected rather than shown a gap.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                    Err(_) => return,
                };
                if let Some(id) = session.subscription {
                    let text = json!({"subscriptionId": id, "event": *ev}).to_string();
                    if !send_text(&mut socket, text).await {
                        return;
                    }
                }
            }
            msg = socket.recv() => {
                let Some(Ok(msg)) = msg else { return };
                match msg {
                    Message::Pong(_) => last_pong = Instant::now(),
                    Message::Close(_) => return,
                    Message::Text(t) => {
                        let (reply, after) = handle_api_request(&shared, &mut session, t.as_str());
                        if !send_text(&mut socket, reply.to_string()).await {
                            return;
                        }
                        if let Some(ev) = after
                            && !send_text(&mut socket, ev.to_string()).await
                        {
                            return;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Converts WebSocket API `params` into the same `Params` the REST operations take.
fn to_params(map: &serde_json::Map<String, Value>) -> Params {
    Params(
        map.iter()
            .map(|(k, v)| {
                let s = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), s)
            })
            .collect(),
    )
}

fn api_weight(method: &str) -> u64 {
    match method {
        "order.place" | "order.cancel" | "order.cancelReplace" | "openOrders.cancelAll" => 1,
        "order.status" | "orderList.status" => 4,
        "openOrderLists.status" => 6,
        "allOrderLists" => 20,
        "myPreventedMatches" => 2,
        "userDataStream.subscribe.signature" => 2,
        "account.status" => 20,
        _ => 1,
    }
}

/// One WebSocket API request → its response (and possibly an event to send after it).
fn handle_api_request(shared: &Shared, session: &mut ApiSession, text: &str) -> (Value, Option<Value>) {
    let now = shared.now();
    let Ok(req) = serde_json::from_str::<Value>(text) else {
        return (
            json!({"id": null, "status": 400, "error": {"code": -1135, "msg": "Invalid JSON Request"}}),
            None,
        );
    };
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    let method = req
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let params = req
        .get("params")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    // Bounded before the rate limit, signature or anything else looks at the parameters
    // (JSON objects cannot repeat a name: the parser keeps the last).
    if params.len() > ops::MAX_PARAMS {
        let e = ops::too_many_params(params.len());
        return (
            json!({"id": id, "status": e.status, "error": {"code": e.code, "msg": e.msg}}),
            None,
        );
    }
    let admitted = {
        let forced = shared.faults.take_429();
        shared.rate().admit(api_weight(&method), now, forced)
    };
    let rate_limits = {
        let mut r = shared.rate();
        let mut v = vec![r.weight_json(now)];
        if (method.starts_with("order.") || method.starts_with("orderList."))
            && let Value::Array(a) = r.orders_json(now)
        {
            v.extend(a);
        }
        Value::Array(v)
    };
    if let Err(r) = admitted {
        return (
            json!({"id": id, "status": r.status, "error": {"code": r.code, "msg": r.msg,
                   "data": {"serverTime": now, "retryAfter": r.retry_after_ms}}, "rateLimits": rate_limits}),
            None,
        );
    }
    let mut after = None;
    let result: Result<Value, ApiError> = match method.as_str() {
        "ping" => Ok(json!({})),
        "time" => Ok(json!({"serverTime": now})),
        "session.status" => Ok(json!({
            "apiKey": null, "authorizedSince": null, "connectedSince": session.connected,
            "returnRateLimits": true, "serverTime": now,
            "userDataStream": session.subscription.is_some()
        })),
        "userDataStream.subscribe.signature" => ws_authenticate(shared, &params, now, false).and_then(|_| {
            if session.subscription.is_some() {
                return Err(ApiError::bad(
                    -2035,
                    "User Data Stream subscription already active.",
                ));
            }
            let sid = session.next_subscription;
            session.next_subscription += 1;
            session.subscription = Some(sid);
            Ok(json!({"subscriptionId": sid}))
        }),
        "userDataStream.unsubscribe" => match session.subscription {
            None => Err(ApiError::bad(-2036, "User Data Stream subscription not active.")),
            Some(sid) => {
                let wanted = params.get("subscriptionId").and_then(Value::as_u64);
                if wanted.is_some_and(|w| w != sid) {
                    Err(ApiError::bad(-2036, "User Data Stream subscription not active."))
                } else {
                    session.subscription = None;
                    after = Some(
                        json!({"subscriptionId": sid, "event": {"e": "eventStreamTerminated", "E": now}}),
                    );
                    Ok(json!({}))
                }
            }
        },
        "session.subscriptions" => Ok(match session.subscription {
            Some(s) => json!([{"subscriptionId": s}]),
            None => json!([]),
        }),
        "order.place"
        | "order.cancel"
        | "order.cancelReplace"
        | "order.status"
        | "openOrders.cancelAll"
        | "openOrders.status"
        | "order.test" => {
            let trade = method != "order.status" && method != "openOrders.status";
            ws_authenticate(shared, &params, now, trade).and_then(|_| {
                let p = to_params(&params);
                match method.as_str() {
                    "order.place" => ops::op_new_order(shared, &p, now, false),
                    "order.test" => ops::op_new_order(shared, &p, now, true),
                    "order.cancel" => ops::op_cancel(shared, &p, now),
                    "order.cancelReplace" => ops::op_cancel_replace(shared, &p, now),
                    "order.status" => ops::op_query_order(shared, &p),
                    "openOrders.status" => ops::op_open_orders(shared, &p),
                    _ => ops::op_cancel_all(shared, &p, now),
                }
            })
        }
        "orderList.place.oco"
        | "orderList.place.oto"
        | "orderList.place.otoco"
        | "orderList.cancel"
        | "orderList.status"
        | "openOrderLists.status"
        | "allOrderLists"
        | "myPreventedMatches" => {
            let trade = method.starts_with("orderList.place") || method == "orderList.cancel";
            ws_authenticate(shared, &params, now, trade).and_then(|_| {
                let p = to_params(&params);
                match method.as_str() {
                    "orderList.place.oco" => ops::op_place_list(shared, &p, now, ops::ListKind::Oco),
                    "orderList.place.oto" => ops::op_place_list(shared, &p, now, ops::ListKind::Oto),
                    "orderList.place.otoco" => ops::op_place_list(shared, &p, now, ops::ListKind::Otoco),
                    "orderList.cancel" => ops::op_cancel_list(shared, &p, now),
                    "orderList.status" => ops::op_list_status(shared, &p),
                    "openOrderLists.status" => ops::op_open_lists(shared),
                    "myPreventedMatches" => ops::op_prevented_matches(shared, &p),
                    _ => ops::op_all_lists(shared, &p),
                }
            })
        }
        _ => Err(ApiError::bad(-1000, format!("Unknown method '{method}'."))),
    };
    let resp = match result {
        Ok(v) => json!({"id": id, "status": 200, "result": v, "rateLimits": rate_limits}),
        Err(e) => {
            json!({"id": id, "status": e.status, "error": e.to_json(), "rateLimits": rate_limits})
        }
    };
    (resp, after)
}

/// Signed WebSocket API request: `apiKey`, `timestamp`, `signature` in params (§2.6).
fn ws_authenticate(
    shared: &Shared,
    params: &serde_json::Map<String, Value>,
    now: i64,
    trade: bool,
) -> Result<(), ApiError> {
    let p = to_params(params);
    let payload = auth::ws_payload(params);
    let api_key = p.get("apiKey").map(str::to_string);
    let sig = p.get("signature").map(str::to_string);
    ops::authenticate(
        shared,
        api_key.as_deref(),
        payload.as_bytes(),
        sig.as_deref(),
        &p,
        now,
        trade,
    )
    .map(|_| ())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn kline_stream_sends_the_closed_candle_when_a_new_minute_starts() {
        let t0 = 1_700_000_000_000 - 1_700_000_000_000 % 60_000;
        let mut m = Market::new(5, Decimal::ONE, t0);
        let mut seen = BTreeMap::new();
        m.step(t0 + 1_000);
        assert!(closed_kline(&m, "btcusdt@kline_1m", &mut seen, t0).is_none());
        m.step(t0 + 30_000);
        assert!(closed_kline(&m, "btcusdt@kline_1m", &mut seen, t0 + 30_000).is_none());
        m.step(t0 + 61_000);
        let closed: Value =
            serde_json::from_str(&closed_kline(&m, "btcusdt@kline_1m", &mut seen, t0 + 61_000).unwrap())
                .unwrap();
        assert_eq!(closed["k"]["x"], true);
        assert_eq!(closed["k"]["t"], t0);
        assert_eq!(closed["k"]["T"], t0 + 59_999);
        let live: Value = serde_json::from_str(
            &render_periodic(&m, "btcusdt@kline_1m", t0 + 61_000, |_| Default::default()).unwrap(),
        )
        .unwrap();
        assert_eq!(
            (live["k"]["x"].as_bool(), live["k"]["t"].as_i64()),
            (Some(false), Some(t0 + 60_000))
        );
    }

    #[test]
    fn stream_names_are_checked() {
        let m = Market::new(5, Decimal::ONE, 1_700_000_000_000);
        for ok in [
            "btcusdt@trade",
            "ethusdt@depth20@100ms",
            "solusdt@kline_1M",
            "!miniTicker@arr",
            "dogeusdt@depth",
        ] {
            assert!(valid_stream(&m, ok), "{ok}");
        }
        for bad in [
            "BTCUSDT@trade",
            "btcusdt@kline_7m",
            "nopeusdt@trade",
            "btcusdt",
            "btcusdt@depth7",
        ] {
            assert!(!valid_stream(&m, bad), "{bad}");
        }
    }
}
