//! Fuzzing entry points: one function per fuzz target, each taking raw bytes and driving the
//! real code path (never a copy) — the client's decoders, its answer/error mapping, the local
//! exchange's request handling, the configuration, the vault file and the journal's reads.
//!
//! Owns: turning fuzz bytes into inputs for those paths. Must not: be used by the product. It
//! is public only so that the `fuzz/` crate (libFuzzer binaries) and `tests/fuzz_corpus.rs`
//! (the committed corpus on every `cargo test`) call exactly the same code.
//!
//! The contract of every entry function: for any input it returns, without panicking, without
//! hanging and without unbounded allocation. A panic inside one of them is a finding; so is a
//! request the local exchange never answers (a handler that panicked drops its connection).
//! Targets that need a running exchange or a file keep one per process and reset it now and
//! then, so that a run of millions of inputs neither slows down nor grows.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::Value;

use crate::config::{self, Sources};
use crate::domain::broker::OrderOutcome;
use crate::domain::{Mode, OrderPurpose, Symbol};
use crate::exchange::binance::endpoints::Endpoints;
use crate::exchange::binance::events::{parse_market_frame, parse_user_event, parse_user_frame};
use crate::exchange::binance::rest::{BinanceRest, RestConfig};
use crate::exchange::binance::wire;
use crate::exchange::sim::{self, RateLimits, SimConfig, SimHandle};
use crate::journal::Journal;
use crate::secret::SecretString;
use crate::vault::contents::VaultContents;
use crate::vault::format::{self, CHECKSUM_LEN, HEADER_LEN, KdfParams};

/// A fuzz target's entry function.
pub type Entry = fn(&[u8]);

/// Every target by name, for drivers that run them all (the corpus test).
pub const TARGETS: &[(&str, Entry)] = &[
    ("client_frames", client_frames),
    ("rest_answer", rest_answer),
    ("sim_requests", sim_requests),
    ("config_values", config_values),
    ("vault_file", vault_file),
    ("journal_rows", journal_rows),
];

/// Reads fuzz bytes as a stream of choices; an exhausted stream reads as zeros.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// One length byte, then that many bytes.
    fn chunk(&mut self) -> &'a [u8] {
        let n = usize::from(self.byte());
        self.take(n)
    }

    fn text(&mut self) -> String {
        String::from_utf8_lossy(self.chunk()).into_owned()
    }

    fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        let got = self.take(8);
        b[..got.len()].copy_from_slice(got);
        u64::from_le_bytes(b)
    }

    fn pick<'t, T>(&mut self, table: &'t [T]) -> &'t T {
        &table[usize::from(self.byte()) % table.len()]
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A lock that a panic in an earlier input (caught by a test harness) does not make unusable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

// ----------------------------------------------------------------------- 1. client decoders

/// Market-stream frames, WebSocket API answers and user-data events, and every REST answer
/// decoder of the client, all fed the same bytes.
pub fn client_frames(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(frame) = parse_market_frame(&text, now_ms()) {
        let _ = format!("{frame:?}");
    }
    let _ = parse_user_frame(&text);
    if let Ok(v) = serde_json::from_slice::<Value>(data) {
        let _ = parse_user_event(v);
    }
    decode_rest_body(data);
}

/// Every REST answer decoder over one body, and what the client does next with the results.
fn decode_rest_body(body: &[u8]) {
    let _ = wire::parse_exchange_info(body);
    let _ = wire::parse_account(body);
    if let Ok(placed) = wire::parse_placed_order(body) {
        let _ = placed.order.to_order(OrderPurpose::Entry);
    }
    if let Ok(o) = wire::parse_order(body) {
        let _ = o.to_order(OrderPurpose::External);
    }
    if let Ok(orders) = wire::parse_orders(body) {
        for o in &orders {
            let _ = o.to_order(OrderPurpose::StopLoss);
        }
    }
    let _ = wire::parse_order_list(body);
    let _ = wire::parse_order_lists(body);
    let _ = wire::parse_cancel_all(body);
    let _ = wire::parse_trades(body);
    let _ = wire::parse_book_ticker(body);
    let _ = wire::parse_tickers_24h(body);
    let _ = wire::parse_klines(body);
    let _ = wire::parse_depth(body);
    let _ = wire::parse_commission(body);
    let _ = wire::parse_api_restrictions(body);
    let _ = wire::parse_api_error(body);
}

// ------------------------------------------------------------------- 2. REST answer mapping

const STATUSES: &[u16] = &[200, 200, 400, 401, 403, 404, 409, 418, 429, 500, 502, 503, 504];
const HEADER_NAMES: &[&str] = &[
    "retry-after",
    "x-mbx-used-weight-1m",
    "x-mbx-used-weight-1M",
    "x-mbx-order-count-10s",
    "x-mbx-order-count-1d",
    "x-mbx-used-weight",
    "content-type",
];

fn rest_client() -> &'static BinanceRest {
    static CLIENT: OnceLock<BinanceRest> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 9));
        let endpoints = Endpoints::local(addr).expect("a loopback address is a valid endpoint");
        BinanceRest::without_ban_store(endpoints, None, RestConfig::default())
            .expect("the fuzz target needs an HTTP client")
    })
}

/// An HTTP answer (status, headers, body) through the client's mapping to a body or an error,
/// the rate-limit header parsing and, for a 2xx, every body decoder.
pub fn rest_answer(data: &[u8]) {
    let mut inp = Input::new(data);
    let s = inp.byte();
    let status = if s < 200 {
        *inp.pick(STATUSES)
    } else {
        u16::from_le_bytes([inp.byte(), inp.byte()]) % 1000
    };
    let mut headers = reqwest::header::HeaderMap::new();
    for _ in 0..inp.byte() % 6 {
        let n = inp.byte();
        let name: Vec<u8> = if n < 224 {
            HEADER_NAMES[usize::from(n) % HEADER_NAMES.len()]
                .as_bytes()
                .to_vec()
        } else {
            inp.chunk().to_vec()
        };
        let value = inp.chunk();
        if let (Ok(name), Ok(value)) = (
            reqwest::header::HeaderName::from_bytes(&name),
            reqwest::header::HeaderValue::from_bytes(value),
        ) {
            headers.append(name, value);
        }
    }
    let body = inp.rest().to_vec();
    let client = rest_client();
    let result = client.read_answer("/api/v3/order", status, &headers, body.clone(), now_ms());
    match &result {
        Ok(b) => decode_rest_body(b),
        Err(e) => {
            let _ = (
                e.to_string(),
                e.code(),
                e.is_retryable_for_get(),
                e.leaves_order_unknown(),
            );
        }
    }
    let _ = OrderOutcome::from_result(result).is_unknown();
    let _ = client.usage();
    let _ = client.banned_until();
}

// ------------------------------------------------------------------ 3. the local exchange

/// Orders the local exchange accepted (HTTP 200 on `POST /api/v3/order`) over all inputs:
/// lets a test check that the target's signed requests get past authentication to matching.
static SIM_ORDERS_ACCEPTED: AtomicU64 = AtomicU64::new(0);

/// How many orders the exchange target has had accepted in this process so far.
pub fn sim_orders_accepted() -> u64 {
    SIM_ORDERS_ACCEPTED.load(Ordering::Relaxed)
}

/// How many inputs one exchange serves before it is replaced by a fresh one (bounds the order
/// history the exchange keeps, and so each input's cost).
const SIM_INPUTS_PER_EXCHANGE: u64 = 500;

struct SimFixture {
    runtime: tokio::runtime::Runtime,
    state: Mutex<SimState>,
}

struct SimState {
    handle: Option<SimHandle>,
    http: reqwest::Client,
    ws: Option<WsStream>,
    served: u64,
}

type WsStream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn sim_fixture() -> &'static SimFixture {
    static FIXTURE: OnceLock<SimFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("the fuzz target needs a runtime");
        let http = reqwest::Client::builder()
            .build()
            .expect("the fuzz target needs an HTTP client");
        SimFixture {
            runtime,
            state: Mutex::new(SimState {
                handle: None,
                http,
                ws: None,
                served: 0,
            }),
        }
    })
}

fn sim_config() -> SimConfig {
    let big = 1_000_000_000_000u64;
    SimConfig {
        rate_limits: RateLimits {
            weight_per_minute: big,
            orders_per_10s: big,
            orders_per_day: big,
            ..RateLimits::default()
        },
        starting_balances: ["USDT", "BTC", "ETH", "SOL", "BNB", "XRP", "DOGE"]
            .iter()
            .map(|a| (a.to_string(), Decimal::from(1_000_000_000u64)))
            .collect(),
        ..SimConfig::default()
    }
}

const SIM_SYMBOLS: &[&str] = &[
    "BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "DOGEUSDT", "NOPEUSDT", "btcusdt", "",
];

const REST_ENDPOINTS: &[(&str, &str)] = &[
    ("POST", "/api/v3/order"),
    ("POST", "/api/v3/order"),
    ("POST", "/api/v3/order"),
    ("POST", "/api/v3/order/test"),
    ("DELETE", "/api/v3/order"),
    ("GET", "/api/v3/order"),
    ("DELETE", "/api/v3/openOrders"),
    ("GET", "/api/v3/openOrders"),
    ("POST", "/api/v3/orderList/oco"),
    ("POST", "/api/v3/orderList/oco"),
    ("DELETE", "/api/v3/orderList"),
    ("GET", "/api/v3/openOrderList"),
    ("GET", "/api/v3/allOrders"),
    ("GET", "/api/v3/myTrades"),
    ("GET", "/api/v3/account"),
    ("GET", "/api/v3/account/commission"),
    ("GET", "/api/v3/rateLimit/order"),
    ("GET", "/sapi/v1/account/apiRestrictions"),
    ("GET", "/api/v3/exchangeInfo"),
    ("GET", "/api/v3/depth"),
    ("GET", "/api/v3/klines"),
    ("GET", "/api/v3/uiKlines"),
    ("GET", "/api/v3/avgPrice"),
    ("GET", "/api/v3/ticker/24hr"),
    ("GET", "/api/v3/ticker/price"),
    ("GET", "/api/v3/ticker/bookTicker"),
    ("GET", "/api/v3/time"),
    ("PUT", "/api/v3/order"),
];

const WS_METHODS: &[&str] = &[
    "order.place",
    "order.place",
    "order.test",
    "order.cancel",
    "order.status",
    "openOrders.cancelAll",
    "openOrders.status",
    "userDataStream.subscribe.signature",
    "userDataStream.unsubscribe",
    "session.status",
    "session.subscriptions",
    "ping",
    "time",
];

const PARAM_NAMES: &[&str] = &[
    "symbol",
    "side",
    "type",
    "timeInForce",
    "quantity",
    "quoteOrderQty",
    "price",
    "stopPrice",
    "newClientOrderId",
    "origClientOrderId",
    "orderId",
    "orderListId",
    "listClientOrderId",
    "newOrderRespType",
    "recvWindow",
    "timestamp",
    "limit",
    "startTime",
    "endTime",
    "fromId",
    "interval",
    "symbols",
    "aboveType",
    "belowType",
    "abovePrice",
    "belowPrice",
    "aboveStopPrice",
    "belowStopPrice",
    "aboveTimeInForce",
    "belowTimeInForce",
    "aboveClientOrderId",
    "belowClientOrderId",
    "selfTradePreventionMode",
    "computeCommissionRates",
    "icebergQty",
    "trailingDelta",
    "subscriptionId",
];

const NUMBERS: &[&str] = &[
    "97250.00",
    "97000",
    "98000.5",
    "3380.00",
    "182.50",
    "652.00",
    "2.2150",
    "0.32150",
    "0.00012",
    "0.001",
    "0.01",
    "0.1",
    "1",
    "10",
    "100",
    "0",
    "-1",
    "1e5",
    "0.000000000000000000000000001",
    "79228162514264337593543950335",
    "-79228162514264337593543950335",
    "7922816251426433759354395033.5",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615",
    "60000",
    "5000",
];

fn enum_values(name: &str) -> &'static [&'static str] {
    match name {
        "symbol" => SIM_SYMBOLS,
        "side" => &["BUY", "SELL", "buy", "HOLD"],
        "type" | "aboveType" | "belowType" => &[
            "LIMIT",
            "MARKET",
            "STOP_LOSS",
            "STOP_LOSS_LIMIT",
            "TAKE_PROFIT",
            "TAKE_PROFIT_LIMIT",
            "LIMIT_MAKER",
        ],
        "timeInForce" | "aboveTimeInForce" | "belowTimeInForce" => &["GTC", "IOC", "FOK", "GTX"],
        "newOrderRespType" => &["ACK", "RESULT", "FULL", "NONE"],
        "interval" => &["1m", "5m", "1h", "1d", "1M", "7x"],
        "symbols" => &["[\"BTCUSDT\",\"ETHUSDT\"]", "[]", "[\"BTCUSDT\"", "BTCUSDT"],
        "selfTradePreventionMode" => &["NONE", "EXPIRE_TAKER", "EXPIRE_BOTH"],
        "computeCommissionRates" => &["true", "false"],
        _ => NUMBERS,
    }
}

/// One parameter: a known name (usually) and a value that is a plausible choice, a number
/// from the edge table, an integer, or raw text.
fn param(inp: &mut Input<'_>) -> (String, String) {
    let n = inp.byte();
    let name = if n < 240 {
        PARAM_NAMES[usize::from(n) % PARAM_NAMES.len()].to_string()
    } else {
        inp.text()
    };
    let value = match inp.byte() % 5 {
        0 | 1 => (*inp.pick(enum_values(&name))).to_string(),
        2 => (*inp.pick(NUMBERS)).to_string(),
        3 => {
            let scale = u32::from(inp.byte() % 12);
            let v = (inp.u64() % 10_000_000_000) as i64;
            Decimal::new(v, scale).to_string()
        }
        _ => inp.text(),
    };
    (name, value)
}

fn form_encode(pairs: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .finish()
}

/// One REST request from the bytes: endpoint, parameters, where they travel, and whether and
/// how it is signed. Most requests are signed correctly with the exchange's key, so that the
/// order checks and matching are reached, not just the signature check.
fn rest_request(
    inp: &mut Input<'_>,
    key: &str,
    secret: &str,
) -> (reqwest::Method, String, String, Option<String>) {
    let (method, path) = *inp.pick(REST_ENDPOINTS);
    let flags = inp.byte();
    let mut pairs: Vec<(String, String)> = (0..inp.byte() % 10).map(|_| param(inp)).collect();
    if flags & 0x04 == 0 {
        pairs.push(("timestamp".into(), now_ms().to_string()));
    }
    let in_body = flags & 0x02 != 0 && method != "GET";
    let encoded = form_encode(&pairs);
    let (mut query, body) = if in_body {
        (String::new(), encoded)
    } else {
        (encoded, String::new())
    };
    if flags & 0x01 == 0 {
        // The exchange signs the query string immediately followed by the body.
        let sig = sim::auth::hmac_hex(secret, &format!("{query}{body}"));
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(&format!("signature={sig}"));
    }
    let api_key = match flags & 0x18 {
        0x18 => Some("x".repeat(64)),
        0x10 => None,
        _ => Some(key.to_string()),
    };
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let url_tail = if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    };
    (method, url_tail, body, api_key)
}

/// One WebSocket API request text: a method, parameters as JSON values, signed with the key
/// (or, now and then, raw text).
fn ws_request(inp: &mut Input<'_>, id: u64, key: &str, secret: &str) -> String {
    let flags = inp.byte();
    if flags >= 250 {
        return inp.text();
    }
    let method = *inp.pick(WS_METHODS);
    let mut params = serde_json::Map::new();
    for _ in 0..inp.byte() % 10 {
        let (k, v) = param(inp);
        let v = if flags & 0x08 != 0
            && let Ok(n) = v.parse::<i64>()
        {
            Value::from(n)
        } else {
            Value::from(v)
        };
        params.insert(k, v);
    }
    if flags & 0x04 == 0 {
        params.insert("timestamp".into(), Value::from(now_ms()));
    }
    if flags & 0x10 == 0 {
        params.insert("apiKey".into(), Value::from(key.to_string()));
    }
    if flags & 0x01 == 0 {
        let payload = sim::auth::ws_payload(&params);
        params.insert(
            "signature".into(),
            Value::from(sim::auth::hmac_hex(secret, &payload)),
        );
    }
    serde_json::json!({"id": id, "method": method, "params": params}).to_string()
}

/// Signed REST and WebSocket API requests with random parameters against an in-process local
/// exchange: parameter parsing, authentication, order placement, matching and order lists.
/// Panics (with the input's request) when the exchange does not answer a request.
pub fn sim_requests(data: &[u8]) {
    let fixture = sim_fixture();
    let mut state = lock(&fixture.state);
    fixture.runtime.block_on(async {
        if state.served >= SIM_INPUTS_PER_EXCHANGE
            && let Some(h) = state.handle.take()
        {
            state.ws = None;
            h.shutdown().await;
        }
        if state.handle.is_none() {
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
            state.handle = Some(
                sim::start(addr, sim_config())
                    .await
                    .expect("the local exchange starts on loopback"),
            );
            state.served = 0;
        }
        state.served += 1;
        let Some(handle) = state.handle.as_ref() else {
            return;
        };
        let (base, ws_url, key, secret) = (
            handle.rest_url(),
            handle.ws_api_url(),
            handle.api_key(),
            handle.api_secret(),
        );
        let mut inp = Input::new(data);
        let mut id = 0u64;
        while !inp.is_empty() && id < 8 {
            id += 1;
            if inp.byte() % 4 == 3 {
                let text = ws_request(&mut inp, id, &key, secret.expose());
                if state.ws.is_none() {
                    let (ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
                        .await
                        .expect("the exchange accepts a WebSocket API connection");
                    state.ws = Some(ws);
                }
                if let Some(ws) = state.ws.as_mut() {
                    ws_round_trip(ws, &text, id).await;
                }
            } else {
                let (method, tail, body, api_key) = rest_request(&mut inp, &key, secret.expose());
                let mut req = state
                    .http
                    .request(method.clone(), format!("{base}{tail}"))
                    .timeout(Duration::from_secs(10));
                if let Some(k) = api_key {
                    req = req.header("X-MBX-APIKEY", k);
                }
                if !body.is_empty() {
                    req = req
                        .header("Content-Type", "application/x-www-form-urlencoded")
                        .body(body.clone());
                }
                match req.send().await {
                    Ok(resp) => {
                        let status = resp.status();
                        if status.is_success() && method == reqwest::Method::POST && tail.starts_with("/api/v3/order?") {
                            SIM_ORDERS_ACCEPTED.fetch_add(1, Ordering::Relaxed);
                        }
                        let answer = resp.bytes().await;
                        if std::env::var_os("FUZZ_DEBUG").is_some() {
                            eprintln!("{method} {tail} {body} -> {status} {:?}", answer.as_ref().map(|b| String::from_utf8_lossy(b).into_owned()));
                        }
                        assert!(
                            answer.is_ok(),
                            "the exchange dropped the answer to {method} {tail} (body {body:?}, HTTP {status})"
                        );
                    }
                    Err(e) => panic!("the exchange did not answer {method} {tail} (body {body:?}): {e}"),
                }
            }
        }
    });
}

async fn ws_round_trip(ws: &mut WsStream, text: &str, id: u64) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    if let Err(e) = ws.send(Message::text(text)).await {
        panic!("the exchange's WebSocket API closed before {text}: {e}");
    }
    let want = Value::from(id);
    let answered = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(msg) = ws.next().await {
            let Ok(Message::Text(t)) = msg else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<Value>(t.as_str()) else {
                continue;
            };
            // The request with an unreadable id (raw text) gets `id: null`.
            if v.get("id") == Some(&want) || v.get("id") == Some(&Value::Null) {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(answered, Ok(true)),
        "the exchange's WebSocket API did not answer {text}"
    );
}

// ---------------------------------------------------------------------- 4. configuration

/// A `.env` text, a set of process variables and the command-line mode through the
/// configuration's parsing and validation. Layout: `.env` text, a NUL, then
/// `NAME=value` lines for the process environment, a NUL, then a mode byte.
pub fn config_values(data: &[u8]) {
    let mut parts = data.splitn(3, |b| *b == 0);
    let dotenv_text = parts.next().unwrap_or_default();
    let process_text = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let mode_byte = parts.next().and_then(|p| p.first()).copied().unwrap_or(0);
    let dotenv = config::parse_env(dotenv_text).unwrap_or_default();
    let process = process_text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mode = Mode::ALL.get(usize::from(mode_byte % 6)).copied();
    let sources = Sources {
        process,
        dotenv,
        config_file: Default::default(),
        mode,
        home: Some(PathBuf::from("/nonexistent/crbot-fuzz-home")),
        default_paths: None,
    };
    match config::Config::from_sources(&sources) {
        Ok(c) => {
            let _ = (c.journal_path(), c.json_logs(), format!("{c:?}"));
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

// ------------------------------------------------------------------------------- 5. vault

/// The fuzz target's passphrase (any fixed one does).
const VAULT_PASSPHRASE: &str = "correct horse battery staple";

/// Cheap Argon2id costs, so that a million files can be opened in minutes.
const CHEAP_KDF: KdfParams = KdfParams { m_kib: 8, t: 1, p: 1 };

/// Vault file bytes through `open` (header checks, key derivation, key check, decryption) and
/// the plaintext through the contents decoder. First byte: 0 = the bytes as they are; 1 = the
/// bytes with cheap KDF parameters and a repaired checksum (so the KDF, key check and GCM are
/// reached); 2 = the rest sealed as plaintext with the real format, opened and decoded.
pub fn vault_file(data: &[u8]) {
    let pass = SecretString::new(VAULT_PASSPHRASE.to_string());
    let (mode, rest) = data.split_first().map_or((0, data), |(m, r)| (*m % 3, r));
    match mode {
        0 => {
            if let Ok(header) = format::parse_header(rest) {
                // Only reached with a valid checksum; keep the KDF cheap whatever the file says.
                if header.params != CHEAP_KDF {
                    return;
                }
            }
            open_and_decode(&pass, rest);
        }
        1 => {
            let mut file = rest.to_vec();
            if file.len() >= HEADER_LEN + CHECKSUM_LEN {
                file[12..16].copy_from_slice(&CHEAP_KDF.m_kib.to_be_bytes());
                file[16..20].copy_from_slice(&CHEAP_KDF.t.to_be_bytes());
                file[20..24].copy_from_slice(&CHEAP_KDF.p.to_be_bytes());
                let body_len = file.len() - CHECKSUM_LEN;
                let sum = <sha2::Sha256 as sha2::Digest>::digest(&file[..body_len]);
                file[body_len..].copy_from_slice(&sum);
            }
            open_and_decode(&pass, &file);
        }
        _ => {
            let _ = VaultContents::from_json(rest);
            if let Ok(file) = format::seal(&pass, CHEAP_KDF, [7; 16], [9; 12], rest) {
                let plain = format::open(&pass, &file).expect("a freshly sealed vault opens");
                assert_eq!(
                    plain.as_slice(),
                    rest,
                    "a sealed vault did not open to its plaintext"
                );
                let _ = VaultContents::from_json(&plain);
            }
        }
    }
}

fn open_and_decode(pass: &SecretString, file: &[u8]) {
    match format::open(pass, file) {
        Ok(plain) => {
            let _ = VaultContents::from_json(&plain);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

// ----------------------------------------------------------------------------- 6. journal

/// The journal's tables and the columns the fuzz target fills (not `meta.mode`, which says
/// whose journal it is and is checked at open).
const JOURNAL_TABLES: &[(&str, &[&str])] = &[
    (
        "orders",
        &[
            "client_order_id",
            "order_id",
            "order_list_id",
            "symbol",
            "side",
            "type",
            "price",
            "stop_price",
            "qty",
            "executed_qty",
            "cum_quote_qty",
            "state",
            "purpose",
            "created_ms",
            "updated_ms",
            "last_error",
        ],
    ),
    (
        "trades",
        &[
            "symbol",
            "trade_id",
            "order_id",
            "client_order_id",
            "side",
            "price",
            "qty",
            "commission",
            "commission_asset",
            "time_ms",
            "is_maker",
        ],
    ),
    (
        "risk_events",
        &[
            "time_ms", "source", "symbol", "side", "ticket", "approved", "codes", "reason",
        ],
    ),
    ("equity_curve", &["time_ms", "equity", "asset"]),
    (
        "trading_state",
        &[
            "time_ms",
            "kind",
            "state",
            "reason",
            "trigger",
            "actor",
            "limit_name",
            "old_value",
            "new_value",
            "confirmed",
        ],
    ),
    ("events", &["time_ms", "kind", "symbol", "detail"]),
    ("bot_metrics", &["time_ms", "name", "value"]),
    ("meta", &["key", "value"]),
];

const JOURNAL_TEXTS: &[&str] = &[
    "BTCUSDT",
    "ETHUSDT",
    "BUY",
    "SELL",
    "LIMIT",
    "MARKET",
    "STOP_LOSS_LIMIT",
    "LIMIT_MAKER",
    "NEW",
    "FILLED",
    "CANCELED",
    "PENDING",
    "UNKNOWN",
    "SENT",
    "OPEN",
    "ENTRY",
    "STOP_LOSS",
    "TAKE_PROFIT",
    "EXTERNAL",
    "tui",
    "cli",
    "engine",
    "STATE",
    "LIMIT",
    "ACTIVE",
    "REDUCING",
    "HALTED",
    "USDT",
    "BNB",
    "0.001",
    "97000.5",
    "-1",
    "79228162514264337593543950335",
    "1e10",
    "",
    "{}",
    "[]",
    "{\"symbol\":\"BTCUSDT\",\"side\":\"BUY\"}",
    "MAX_DAILY_LOSS",
];

struct JournalFixture {
    _dir: tempfile_dir::TempDir,
    journal: Journal,
    raw: rusqlite::Connection,
    export_dir: PathBuf,
}

/// A self-removing temporary folder (the `tempfile` crate is only a dev-dependency).
mod tempfile_dir {
    use std::path::{Path, PathBuf};

    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new(prefix: &str) -> std::io::Result<TempDir> {
            let n: u64 = rand::random();
            let dir = std::env::temp_dir().join(format!("{prefix}-{}-{n:016x}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            Ok(TempDir(dir))
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn journal_fixture() -> &'static Mutex<JournalFixture> {
    static FIXTURE: OnceLock<Mutex<JournalFixture>> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile_dir::TempDir::new("crbot-fuzz-journal").expect("a temporary folder");
        let path = dir.path().join("journal-sim.db");
        let journal = Journal::open(&path, Mode::Sim).expect("a new journal opens");
        let raw = rusqlite::Connection::open(&path).expect("a second connection to the journal");
        // The fuzz target's own writes need no durability; the journal's connection keeps its
        // own settings.
        raw.pragma_update(None, "synchronous", "OFF")
            .expect("synchronous=OFF is a valid pragma");
        let export_dir = dir.path().join("export");
        Mutex::new(JournalFixture {
            _dir: dir,
            journal,
            raw,
            export_dir,
        })
    })
}

fn journal_value(inp: &mut Input<'_>) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match inp.byte() % 8 {
        0 => V::Null,
        1 => V::Integer(inp.u64() as i64),
        2 => V::Integer(i64::from(inp.byte()) - 8),
        3 => V::Real(f64::from_bits(inp.u64())),
        4 => V::Blob(inp.chunk().to_vec()),
        5 => V::Text(inp.text()),
        _ => V::Text((*inp.pick(JOURNAL_TEXTS)).to_string()),
    }
}

/// Rows whose columns hold arbitrary values (any SQLite type, any text) written straight into
/// a journal, then every read path of `Journal` over them: the journal must answer with a
/// value or an error, never a panic.
pub fn journal_rows(data: &[u8]) {
    let fixture = lock(journal_fixture());
    let mut inp = Input::new(data);
    let wipe = "DELETE FROM orders; DELETE FROM trades; DELETE FROM risk_events; \
                DELETE FROM equity_curve; DELETE FROM trading_state; DELETE FROM events; \
                DELETE FROM bot_metrics; DELETE FROM meta WHERE key NOT IN ('mode', 'created_ms');";
    fixture
        .raw
        .execute_batch(wipe)
        .expect("the fuzz target can empty its own journal");
    let mut cids: Vec<String> = vec!["c1".into()];
    let mut symbols: Vec<String> = vec!["BTCUSDT".into()];
    let mut meta_keys: Vec<String> = vec!["mode".into()];
    while !inp.is_empty() {
        let (table, columns) = *inp.pick(JOURNAL_TABLES);
        let values: Vec<rusqlite::types::Value> = columns.iter().map(|_| journal_value(&mut inp)).collect();
        for (c, v) in columns.iter().zip(&values) {
            if let rusqlite::types::Value::Text(t) = v {
                match *c {
                    "client_order_id" => cids.push(t.clone()),
                    "symbol" => symbols.push(t.clone()),
                    "key" => meta_keys.push(t.clone()),
                    _ => {}
                }
            }
        }
        let verb = if table == "meta" {
            "INSERT OR IGNORE"
        } else {
            "INSERT"
        };
        let sql = format!(
            "{verb} INTO {table} ({}) VALUES ({})",
            columns.join(", "),
            vec!["?"; columns.len()].join(", ")
        );
        // Constraint failures (NOT NULL, CHECK, UNIQUE) only mean this row is not stored.
        let _ = fixture
            .raw
            .execute(&sql, rusqlite::params_from_iter(values.iter()));
    }
    let j = &fixture.journal;
    for cid in cids.iter().take(4) {
        if let Ok(cid) = crate::domain::ClientOrderId::new(cid) {
            let _ = j.order(&cid);
            let _ = j.order_last_error(&cid);
        }
    }
    for s in symbols.iter().take(4) {
        if let Ok(sym) = Symbol::new(s) {
            let _ = j.fills_for(&sym);
            let _ = j.last_trade_id(&sym);
        }
    }
    for k in meta_keys.iter().take(4) {
        let _ = j.get_meta(k);
    }
    let _ = j.open_orders();
    let _ = j.recent_orders(50);
    let _ = j.fills();
    let _ = j.recent_risk_events(50);
    let _ = j.latest_trading_state();
    let _ = j.latest_trading_state_id();
    let _ = j.limit_changes();
    let _ = j.equity_curve(i64::MIN);
    let _ = j.recent_events(50);
    let _ = j.integrity_check();
    let _ = j.export_csv(&fixture.export_dir);
}
