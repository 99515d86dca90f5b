//! The signed REST client (Binance's rest-api.md: signing, filters, rate limits, errors).
//!
//! Owns: building, signing, throttling and sending REST requests; the clock offset; reading
//! rate-limit headers; classifying answers into [`BrokerError`] / [`OrderOutcome`]. Must not:
//! retry anything but GETs, resend an order or a cancel (a POST/DELETE whose outcome is
//! unknown is reported as `Unknown`, never retried), log a URL's query, a signature or a
//! secret (only method, path, status and latency are logged), or keep trading state.
//!
//! Cancels never wait behind the client-side throttle and still go out during a 429 hold, so
//! the kill switch cuts through; a 418 ban stops everything (persisted through [`BanStore`],
//! per REST origin). A GET refused with a 429 is waited out and sent again (bounded: a 429
//! means the exchange rejected it, so a read is safe to repeat); orders and cancels are not
//! repeated here, their callers decide.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use reqwest::Method;

use super::backoff::{Backoff, ThreadJitter};
use super::clock::{Clock, ClockSample, MAX_CLOCK_OFFSET_MS, estimate_offset, local_now_ms};
use super::endpoints::Endpoints;
use super::limits::{
    Admission, BanStore, NoBanStore, RateGovernor, RateLimit, RateUsage, RequestClass, ban_until_ms,
};
use super::sign::{Credentials, sign_rest};
use super::wire::{self, ApiRestrictions, CommissionRates, Depth, ExchangeInfo, Kline, Ticker24h};
use crate::domain::broker::{
    Account, BookQuote, BrokerError, CODE_INVALID_TIMESTAMP, Cancelled, ListReport, OrderOutcome,
    OrderReport, Placed,
};
use crate::domain::{Fill, OrderRequest, OrderType, Symbol, TimeInForce};

/// Tunables; the defaults follow Binance's documented limits and recvWindow advice.
#[derive(Debug, Clone)]
pub struct RestConfig {
    /// `recvWindow` sent with signed requests (ms, ≤ 60000; Binance recommends ≤ 5000).
    pub recv_window_ms: u64,
    /// Order placement and cancel: a bit above the exchange's internal 10 s.
    pub order_timeout: Duration,
    /// Market data and account queries.
    pub query_timeout: Duration,
    /// Attempts for a GET (1 = no retry).
    pub get_attempts: u32,
    /// First retry delay for GETs (doubles, with jitter).
    pub retry_base: Duration,
    /// The longest a non-cancel request waits for the local throttle, or a GET for a 429's
    /// `Retry-After`, before giving up.
    pub max_throttle_wait: Duration,
}

/// Told when a request waits for a rate limit (the command line prints it on stderr; the
/// console logs it). Receives a one-line description of the wait.
pub type WaitNotice = Arc<dyn Fn(&str) + Send + Sync>;

impl Default for RestConfig {
    fn default() -> Self {
        Self {
            recv_window_ms: 5000,
            order_timeout: Duration::from_secs(12),
            query_timeout: Duration::from_secs(5),
            get_attempts: 3,
            retry_base: Duration::from_millis(250),
            max_throttle_wait: Duration::from_secs(10),
        }
    }
}

/// The protective OCO under the path it had here, for the callers not yet moved to the domain
/// name.
use crate::domain::broker::OcoRequest;

/// The exact parameters sent to `POST /api/v3/orderList/oco` for a protective OCO (before
/// timestamp/signature); the legs' types are the ones [`OcoRequest`] documents.
pub fn oco_params(oco: &OcoRequest) -> Vec<(&'static str, String)> {
    let mut p = vec![
        ("symbol", oco.symbol.to_string()),
        ("side", "SELL".to_string()),
        ("quantity", oco.qty.to_string()),
        ("listClientOrderId", oco.list_client_order_id.to_string()),
        ("aboveType", "LIMIT_MAKER".to_string()),
        ("abovePrice", oco.take_profit.to_string()),
        ("aboveClientOrderId", oco.take_profit_client_order_id.to_string()),
        ("belowStopPrice", oco.stop_loss.to_string()),
        ("belowClientOrderId", oco.stop_loss_client_order_id.to_string()),
    ];
    match oco.stop_limit {
        None => p.push(("belowType", "STOP_LOSS".to_string())),
        Some(limit) => {
            p.push(("belowType", "STOP_LOSS_LIMIT".to_string()));
            p.push(("belowPrice", limit.to_string()));
            p.push(("belowTimeInForce", "GTC".to_string()));
        }
    }
    p.push(("newOrderRespType", "FULL".to_string()));
    p
}

/// The exact parameters of `POST /api/v3/order` for a request (before timestamp/signature).
/// LIMIT and the *_LIMIT stop types need a time in force: GTC unless the request says otherwise.
pub fn order_params(o: &OrderRequest) -> Vec<(&'static str, String)> {
    let mut p = vec![
        ("symbol", o.symbol.to_string()),
        ("side", o.side.to_string()),
        ("type", o.order_type.to_string()),
    ];
    let needs_tif = matches!(
        o.order_type,
        OrderType::Limit | OrderType::StopLossLimit | OrderType::TakeProfitLimit
    );
    if needs_tif {
        p.push((
            "timeInForce",
            o.time_in_force.unwrap_or(TimeInForce::Gtc).to_string(),
        ));
    }
    p.push(("quantity", o.qty.to_string()));
    if let Some(price) = o.price
        && o.order_type != OrderType::Market
    {
        p.push(("price", price.to_string()));
    }
    if let Some(stop) = o.stop_price {
        p.push(("stopPrice", stop.to_string()));
    }
    p.push(("newClientOrderId", o.client_order_id.to_string()));
    p.push(("newOrderRespType", "FULL".to_string()));
    p
}

/// How many times one GET waits out a 429 before the error is returned.
const RATE_LIMIT_WAITS: u32 = 3;

/// The REST origin a ban is scoped to (`https://api.binance.com`, `http://127.0.0.1:PORT`).
fn origin(endpoints: &Endpoints) -> String {
    endpoints.rest.as_str().trim_end_matches('/').to_string()
}

/// A 418 says when the ban ends twice: `Retry-After` (relative) and "banned until <ms>" in the
/// message (the exchange's clock). Together they give the exchange's clock now; when that is
/// more than [`MAX_CLOCK_OFFSET_MS`] from ours (a message "banned until 0", say), the offset
/// is returned: the answer says more about the clocks than about a ban.
fn clock_offset_of_418(now_ms: i64, retry_after_s: Option<u64>, msg: &str) -> Option<i64> {
    let after_ms = i64::try_from(retry_after_s?).ok()?.checked_mul(1000)?;
    let until = super::limits::ban_time_in_message(msg)?;
    let offset = until.checked_sub(after_ms)?.checked_sub(now_ms)?;
    (offset.unsigned_abs() > MAX_CLOCK_OFFSET_MS.unsigned_abs()).then_some(offset)
}

/// Weight of `GET /api/v3/depth` by limit.
fn depth_weight(limit: u32) -> u32 {
    match limit {
        0..=100 => 5,
        101..=500 => 25,
        501..=1000 => 50,
        _ => 250,
    }
}

struct Req {
    method: Method,
    path: &'static str,
    params: Vec<(&'static str, String)>,
    signed: bool,
    weight: u32,
    class: RequestClass,
    timeout: Duration,
}

/// The REST client. Cheap to clone: clones share the HTTP pool, clock and rate state.
#[derive(Clone)]
pub struct BinanceRest {
    http: reqwest::Client,
    endpoints: Endpoints,
    /// Shared by every clone, and replaceable (keys fetched again from a secrets backend on a
    /// re-arm): each request reads the ones current when it is signed.
    creds: Arc<std::sync::RwLock<Option<Arc<Credentials>>>>,
    config: RestConfig,
    clock: Clock,
    limits: Arc<Mutex<RateGovernor>>,
    bans: Arc<dyn BanStore>,
    notice: Arc<Mutex<Option<WaitNotice>>>,
}

impl std::fmt::Debug for BinanceRest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BinanceRest")
            .field("rest", &self.endpoints.rest.as_str())
            .field("has_credentials", &self.credentials().is_some())
            .finish()
    }
}

impl BinanceRest {
    /// A client for `endpoints`. `creds` is `None` for market data only. The ban store is read
    /// now, so a ban from before a restart is honoured.
    pub fn new(
        endpoints: Endpoints,
        creds: Option<Credentials>,
        config: RestConfig,
        bans: Arc<dyn BanStore>,
    ) -> Result<Self, BrokerError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| BrokerError::Network(format!("HTTP client: {e}")))?;
        let mut governor = RateGovernor::new(RateLimit::defaults());
        if let Some(until) = bans.load_for(&origin(&endpoints)) {
            governor.on_stored_ban(until, local_now_ms());
        }
        Ok(Self {
            http,
            endpoints,
            creds: Arc::new(std::sync::RwLock::new(creds.map(Arc::new))),
            config,
            clock: Clock::new(),
            limits: Arc::new(Mutex::new(governor)),
            bans,
            notice: Arc::new(Mutex::new(None)),
        })
    }

    /// Who is told when a request waits for a rate limit (shared by every clone).
    pub fn set_wait_notice(&self, notice: WaitNotice) {
        *self.notice.lock().unwrap_or_else(|p| p.into_inner()) = Some(notice);
    }

    fn tell_wait(&self, text: &str) {
        tracing::warn!("{text}");
        let notice = self.notice.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(n) = notice {
            n(text);
        }
    }

    /// A client with no ban persistence (tests, one-shot tools).
    pub fn without_ban_store(
        endpoints: Endpoints,
        creds: Option<Credentials>,
        config: RestConfig,
    ) -> Result<Self, BrokerError> {
        Self::new(endpoints, creds, config, Arc::new(NoBanStore))
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The credentials current now (`None`: market data only).
    pub fn credentials(&self) -> Option<Arc<Credentials>> {
        self.creds.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the credentials for this client and every clone of it, from the next request
    /// on (a request being signed keeps the ones it started with).
    pub fn replace_credentials(&self, creds: Credentials) {
        *self.creds.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(creds));
    }

    /// The shared clock (offset for the screen; streams use it for timestamps).
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn config(&self) -> &RestConfig {
        &self.config
    }

    fn governor(&self) -> MutexGuard<'_, RateGovernor> {
        // A panic while holding this lock cannot leave the counters inconsistent enough to
        // matter; keep going with the inner value.
        self.limits.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a ban reported elsewhere (the WebSocket API answers 418 in its JSON): all REST
    /// traffic stops too, and the time is persisted.
    pub fn note_ban(&self, until_ms: i64) {
        self.governor().on_ban(until_ms);
        self.bans.save_for(&origin(&self.endpoints), until_ms);
    }

    /// Records a 429 answered elsewhere (the WebSocket API): every request but cancels holds
    /// until `until_ms`, as after a REST 429.
    pub fn note_hold(&self, until_ms: i64) {
        let now = local_now_ms();
        let wait = u64::try_from(until_ms.saturating_sub(now)).unwrap_or(0);
        self.governor().on_429(Duration::from_millis(wait), now);
    }

    /// The end of a ban in force, if any (epoch ms).
    pub fn banned_until(&self) -> Option<i64> {
        self.governor().banned_until().filter(|&t| t > local_now_ms())
    }

    /// Rate-limit usage for the screen and `health`.
    pub fn usage(&self) -> RateUsage {
        self.governor().usage(local_now_ms())
    }

    /// Waits for the throttle (never for cancels), or refuses.
    async fn admit(&self, class: RequestClass, weight: u32) -> Result<(), BrokerError> {
        let started = Instant::now();
        loop {
            let decision = self.governor().admit(class, weight, local_now_ms());
            match decision {
                Admission::Go => return Ok(()),
                Admission::Refuse(e) => return Err(e),
                Admission::Wait(d) => {
                    if started.elapsed() + d > self.config.max_throttle_wait {
                        return Err(BrokerError::RateLimited { retry_after: d });
                    }
                    tokio::time::sleep(d).await;
                }
            }
        }
    }

    /// One HTTP exchange with a final, pre-encoded query. Never retried here.
    async fn exchange(&self, req: &Req, query: &str) -> Result<Vec<u8>, BrokerError> {
        self.admit(req.class, req.weight).await?;
        let url = self.endpoints.rest_url(req.path, query);
        let mut builder = self.http.request(req.method.clone(), url).timeout(req.timeout);
        if let Some(c) = self.credentials() {
            builder = builder.header("X-MBX-APIKEY", c.api_key.expose());
        }
        let started = Instant::now();
        let resp = builder.send().await.map_err(|e| {
            tracing::debug!(method = %req.method, path = req.path, error = %e.to_string_without_url(), "request failed");
            classify_transport(&e)
        })?;
        let status = resp.status().as_u16();
        let now = local_now_ms();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(|e| classify_transport(&e))?.to_vec();
        tracing::debug!(
            method = %req.method,
            path = req.path,
            status,
            latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "binance request"
        );
        self.read_answer(req.path, status, &headers, body, now)
    }

    /// Reads one HTTP answer: its rate-limit headers correct the governor, a 2xx gives the
    /// body, anything else becomes its `BrokerError` (a 429 or 418 also arms the client-side
    /// hold). Apart from the transport so that the fuzz targets can feed it arbitrary statuses,
    /// headers and bodies through the same code the client runs.
    pub(crate) fn read_answer(
        &self,
        path: &str,
        status: u16,
        headers: &reqwest::header::HeaderMap,
        body: Vec<u8>,
        now: i64,
    ) -> Result<Vec<u8>, BrokerError> {
        if status != 418 && self.governor().on_answer() {
            // A ban read from disk, but the exchange answers: it is not banning us.
            self.bans.save_for(&origin(&self.endpoints), 0);
            tracing::info!("the stored IP ban does not hold: the exchange answers; lifted");
        }
        let retry_after = headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        {
            let mut g = self.governor();
            for (name, value) in headers {
                if let Ok(v) = value.to_str() {
                    g.observe_header(name.as_str(), v, now);
                }
            }
        }
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let api = wire::parse_api_error(&body);
        let msg = api
            .as_ref()
            .map(|(_, m)| m.clone())
            .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect());
        match status {
            429 => {
                let wait = Duration::from_secs(retry_after.unwrap_or(1));
                self.governor().on_429(wait, now);
                tracing::warn!(path, ?wait, "HTTP 429: only cancels until Retry-After");
                Err(BrokerError::RateLimited { retry_after: wait })
            }
            418 => {
                if let Some(offset_ms) = clock_offset_of_418(now, retry_after, &msg) {
                    // The ban's end in the exchange's clock and its Retry-After put that clock
                    // too far from ours: the clocks are the problem to report.
                    tracing::error!(path, offset_ms, "HTTP 418 from a clock far from ours");
                    return Err(BrokerError::ClockOffset { offset_ms });
                }
                let until = ban_until_ms(now, retry_after, &msg);
                self.governor().on_ban(until);
                self.bans.save_for(&origin(&self.endpoints), until);
                tracing::error!(path, until_ms = until, "HTTP 418: IP banned, all traffic stopped");
                Err(BrokerError::Banned { until_ms: until })
            }
            500..=599 => Err(BrokerError::Server5xx { status, msg }),
            _ => {
                let code = api.map_or(0, |(c, _)| c);
                if code == CODE_INVALID_TIMESTAMP {
                    self.clock.mark_stale();
                }
                Err(BrokerError::Api {
                    http_status: status,
                    code,
                    msg,
                })
            }
        }
    }

    /// Signs (syncing the clock first if it is stale) and sends once.
    async fn send_once(&self, req: &Req) -> Result<Vec<u8>, BrokerError> {
        if !req.signed {
            let query = super::sign::encode_query(&req.params);
            return self.exchange(req, &query).await;
        }
        let creds = self.credentials().ok_or(BrokerError::NoCredentials)?;
        if self.clock.is_stale()
            && let Err(e) = self.sync_clock().await
        {
            // A cancel must not be held up by a clock sync that the throttle refuses (e.g.
            // during a 429 hold): it goes out with the last known offset.
            if req.class != RequestClass::Cancel {
                return Err(e);
            }
            tracing::warn!(error = %e, "clock sync failed; sending the cancel with the last offset");
        }
        let mut params = req.params.clone();
        params.push(("recvWindow", self.config.recv_window_ms.to_string()));
        params.push(("timestamp", self.clock.timestamp_ms().to_string()));
        let signed = sign_rest(&creds.key, &params).map_err(|e| BrokerError::Sign(e.to_string()))?;
        self.exchange(req, &signed.query).await
    }

    /// GETs: retried with backoff and jitter on transient errors, a bounded number of times;
    /// a 429 (the exchange's, or the hold it left) is waited out when its `Retry-After` fits in
    /// `max_throttle_wait`, at most [`RATE_LIMIT_WAITS`] times.
    async fn get(&self, req: Req) -> Result<Vec<u8>, BrokerError> {
        let mut backoff = Backoff::new(self.config.retry_base, Duration::from_secs(5));
        let mut attempt = 1;
        let mut waits = 0;
        loop {
            match self.send_once(&req).await {
                Err(BrokerError::RateLimited { retry_after })
                    if waits < RATE_LIMIT_WAITS && retry_after <= self.config.max_throttle_wait =>
                {
                    waits += 1;
                    self.tell_wait(&format!(
                        "rate limited by the exchange: waiting {} s before reading {} again",
                        retry_after.as_secs_f64().ceil(),
                        req.path
                    ));
                    tokio::time::sleep(retry_after).await;
                }
                Err(e) if e.is_retryable_for_get() && attempt < self.config.get_attempts => {
                    let d = backoff.next_delay(&mut ThreadJitter);
                    tracing::debug!(path = req.path, attempt, error = %e, "GET retry");
                    attempt += 1;
                    tokio::time::sleep(d).await;
                }
                other => return other,
            }
        }
    }

    fn query(
        &self,
        path: &'static str,
        params: Vec<(&'static str, String)>,
        signed: bool,
        weight: u32,
    ) -> Req {
        Req {
            method: Method::GET,
            path,
            params,
            signed,
            weight,
            class: RequestClass::Query,
            timeout: self.config.query_timeout,
        }
    }

    fn mutation(
        &self,
        method: Method,
        path: &'static str,
        params: Vec<(&'static str, String)>,
        class: RequestClass,
    ) -> Req {
        Req {
            method,
            path,
            params,
            signed: true,
            weight: 1,
            class,
            timeout: self.config.order_timeout,
        }
    }

    /// `GET /api/v3/ping`: the round-trip latency.
    pub async fn ping(&self) -> Result<Duration, BrokerError> {
        let started = Instant::now();
        self.get(self.query("/api/v3/ping", vec![], false, 1)).await?;
        Ok(started.elapsed())
    }

    /// `GET /api/v3/time`: the exchange's clock (epoch ms).
    pub async fn server_time(&self) -> Result<i64, BrokerError> {
        Ok(self.time_sample().await?.2)
    }

    async fn time_sample(&self) -> Result<(i64, i64, i64), BrokerError> {
        let req = self.query("/api/v3/time", vec![], false, 1);
        let t_send = local_now_ms();
        let body = self.exchange(&req, "").await?;
        let t_recv = local_now_ms();
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct T {
            server_time: i64,
        }
        let t: T = serde_json::from_slice(&body).map_err(|e| BrokerError::Decode(format!("time: {e}")))?;
        Ok((t_send, t_recv, t.server_time))
    }

    /// Measures the clock offset (best of three round trips: the shortest one bounds the error
    /// best) and stores it. The owner calls this every few minutes; a `-1021` triggers it
    /// before the next signed request. An offset beyond [`MAX_CLOCK_OFFSET_MS`] is refused
    /// (and not stored): one of the two clocks is wrong, and crbot's days, journal times and
    /// ban times would be wrong with it.
    pub async fn sync_clock(&self) -> Result<ClockSample, BrokerError> {
        let mut best: Option<(i64, i64, i64)> = None;
        let mut last_err = None;
        for _ in 0..3 {
            match self.time_sample().await {
                Ok(s) => {
                    if best.is_none_or(|b| s.1 - s.0 < b.1 - b.0) {
                        best = Some(s);
                    }
                }
                Err(e) => last_err = Some(e),
            }
        }
        match best {
            Some((a, b, srv)) => {
                let offset_ms = estimate_offset(a, b, srv);
                if offset_ms.unsigned_abs() > MAX_CLOCK_OFFSET_MS.unsigned_abs() {
                    tracing::error!(offset_ms, "clock offset too large");
                    return Err(BrokerError::ClockOffset { offset_ms });
                }
                let sample = self.clock.record(a, b, srv);
                tracing::info!(
                    offset_ms = sample.offset_ms,
                    rtt_ms = sample.rtt_ms,
                    "clock synced"
                );
                Ok(sample)
            }
            None => Err(last_err.unwrap_or(BrokerError::Timeout)),
        }
    }

    /// `GET /api/v3/exchangeInfo` (all symbols, or the given ones). Also reseeds the rate budgets.
    pub async fn exchange_info(&self, symbols: &[Symbol]) -> Result<ExchangeInfo, BrokerError> {
        let params = match symbols {
            [] => vec![],
            [one] => vec![("symbol", one.to_string())],
            many => vec![("symbols", json_symbols(many))],
        };
        let body = self
            .get(self.query("/api/v3/exchangeInfo", params, false, 20))
            .await?;
        let info = wire::parse_exchange_info(&body)?;
        if !info.rate_limits.is_empty() {
            self.governor().set_limits(info.rate_limits.clone());
        }
        Ok(info)
    }

    /// `GET /api/v3/account` (zero balances omitted).
    pub async fn account(&self) -> Result<Account, BrokerError> {
        let params = vec![("omitZeroBalances", "true".to_string())];
        let body = self.get(self.query("/api/v3/account", params, true, 20)).await?;
        wire::parse_account(&body)
    }

    pub async fn book_ticker(&self, symbol: &Symbol) -> Result<BookQuote, BrokerError> {
        let params = vec![("symbol", symbol.to_string())];
        let body = self
            .get(self.query("/api/v3/ticker/bookTicker", params, false, 2))
            .await?;
        wire::parse_book_ticker(&body)
    }

    /// `GET /api/v3/ticker/24hr` for the given symbols (never for all: that costs 80).
    pub async fn ticker_24hr(&self, symbols: &[Symbol]) -> Result<Vec<Ticker24h>, BrokerError> {
        let (params, weight) = match symbols {
            [] => return Ok(vec![]),
            [one] => (vec![("symbol", one.to_string())], 2),
            many => (
                vec![("symbols", json_symbols(many))],
                if many.len() <= 20 {
                    2
                } else if many.len() <= 100 {
                    40
                } else {
                    80
                },
            ),
        };
        let body = self
            .get(self.query("/api/v3/ticker/24hr", params, false, weight))
            .await?;
        wire::parse_tickers_24h(&body)
    }

    /// `GET /api/v3/klines`; `interval` as Binance spells it (`1m`, `1h`, `1d`…).
    pub async fn klines(
        &self,
        symbol: &Symbol,
        interval: &str,
        limit: u32,
    ) -> Result<Vec<Kline>, BrokerError> {
        let params = vec![
            ("symbol", symbol.to_string()),
            ("interval", interval.to_string()),
            ("limit", limit.clamp(1, 1000).to_string()),
        ];
        let body = self.get(self.query("/api/v3/klines", params, false, 2)).await?;
        wire::parse_klines(&body)
    }

    pub async fn depth(&self, symbol: &Symbol, limit: u32) -> Result<Depth, BrokerError> {
        let limit = limit.clamp(1, 5000);
        let params = vec![("symbol", symbol.to_string()), ("limit", limit.to_string())];
        let body = self
            .get(self.query("/api/v3/depth", params, false, depth_weight(limit)))
            .await?;
        wire::parse_depth(&body)
    }

    /// [`depth`](Self::depth) once no 429 hold or 418 ban is in force: while one is, nothing is
    /// sent (a request during a back-off is what turns a 429 into a ban, and one during a ban
    /// can lengthen it). A read that meets a hold or a ban on its way (one armed meanwhile by
    /// another request, or the exchange's answer to this one) waits it out the same way and
    /// reads again. The guard is looked at again at least every second, so a stored ban that
    /// another request finds lifted is noticed. For the order book's resync, which can always
    /// wait: nothing is lost by reading the snapshot later.
    pub async fn depth_when_allowed(&self, symbol: &Symbol, limit: u32) -> Result<Depth, BrokerError> {
        let mut told = false;
        loop {
            while let Some(left) = self.held_for(local_now_ms()) {
                if !told {
                    told = true;
                    tracing::info!(%symbol, wait_ms = left.as_millis(), "depth snapshot waits for the rate-limit hold to end");
                }
                tokio::time::sleep(left.min(Duration::from_secs(1))).await;
            }
            match self.depth(symbol, limit).await {
                Err(BrokerError::RateLimited { .. } | BrokerError::Banned { .. })
                    if self.held_for(local_now_ms()).is_some() => {}
                other => return other,
            }
        }
    }

    /// How long the 429 hold or 418 ban in force at `now_ms` still lasts, if one is.
    pub fn held_for(&self, now_ms: i64) -> Option<Duration> {
        let usage = self.governor().usage(now_ms);
        let until = usage
            .hold_until_ms
            .into_iter()
            .chain(usage.banned_until_ms)
            .max()?;
        let left = u64::try_from(until.saturating_sub(now_ms)).ok()?;
        (left > 0).then(|| Duration::from_millis(left))
    }

    /// `POST /api/v3/order` with `newOrderRespType=FULL`. Sent once; an unknown outcome is
    /// returned as such and must be reconciled, never resent.
    ///
    /// Sends whatever it is given: no risk check has to have seen it. The client's own tests
    /// and tools use it to put arbitrary orders on an exchange; crbot's engine, commands and
    /// kill switch send through [`Broker::place_order`](crate::risk::Broker::place_order),
    /// which takes only a risk-approved request.
    pub async fn place_order_unchecked(&self, order: &OrderRequest) -> OrderOutcome<Placed> {
        let req = self.mutation(
            Method::POST,
            "/api/v3/order",
            order_params(order),
            RequestClass::Order,
        );
        let outcome = OrderOutcome::from_result(
            self.send_once(&req)
                .await
                .and_then(|b| wire::parse_placed_order(&b)),
        );
        log_outcome("place_order", order.client_order_id.as_str(), &outcome);
        outcome
    }

    /// `POST /api/v3/orderList/oco`: the protective SELL OCO (see [`OcoRequest`]).
    ///
    /// Like [`place_order_unchecked`](Self::place_order_unchecked), sends whatever it is given;
    /// crbot itself sends through [`Broker::place_oco`](crate::risk::Broker::place_oco).
    pub async fn place_oco_unchecked(&self, oco: &OcoRequest) -> OrderOutcome<ListReport> {
        let req = self.mutation(
            Method::POST,
            "/api/v3/orderList/oco",
            oco_params(oco),
            RequestClass::Order,
        );
        let outcome = OrderOutcome::from_result(
            self.send_once(&req)
                .await
                .and_then(|b| wire::parse_order_list(&b)),
        );
        log_outcome("place_oco", oco.list_client_order_id.as_str(), &outcome);
        outcome
    }

    /// `DELETE /api/v3/order` by client order id. Bypasses the throttle.
    pub async fn cancel_order(&self, symbol: &Symbol, client_order_id: &str) -> OrderOutcome<OrderReport> {
        let params = vec![
            ("symbol", symbol.to_string()),
            ("origClientOrderId", client_order_id.to_string()),
        ];
        let req = self.mutation(Method::DELETE, "/api/v3/order", params, RequestClass::Cancel);
        let outcome =
            OrderOutcome::from_result(self.send_once(&req).await.and_then(|b| wire::parse_order(&b)));
        log_outcome("cancel_order", client_order_id, &outcome);
        outcome
    }

    /// `DELETE /api/v3/openOrders`: every open order of the symbol, order lists included.
    /// Bypasses the throttle (the kill switch's path).
    pub async fn cancel_all(&self, symbol: &Symbol) -> OrderOutcome<Vec<Cancelled>> {
        let params = vec![("symbol", symbol.to_string())];
        let req = self.mutation(Method::DELETE, "/api/v3/openOrders", params, RequestClass::Cancel);
        let outcome = OrderOutcome::from_result(
            self.send_once(&req)
                .await
                .and_then(|b| wire::parse_cancel_all(&b)),
        );
        log_outcome("cancel_all", symbol.as_str(), &outcome);
        outcome
    }

    /// `DELETE /api/v3/orderList` by list client order id.
    pub async fn cancel_order_list(
        &self,
        symbol: &Symbol,
        list_client_order_id: &str,
    ) -> OrderOutcome<ListReport> {
        let params = vec![
            ("symbol", symbol.to_string()),
            ("listClientOrderId", list_client_order_id.to_string()),
        ];
        let req = self.mutation(Method::DELETE, "/api/v3/orderList", params, RequestClass::Cancel);
        let outcome = OrderOutcome::from_result(
            self.send_once(&req)
                .await
                .and_then(|b| wire::parse_order_list(&b)),
        );
        log_outcome("cancel_order_list", list_client_order_id, &outcome);
        outcome
    }

    /// `GET /api/v3/openOrders` (weight 6 per symbol, 80 without: use sparingly).
    pub async fn open_orders(&self, symbol: Option<&Symbol>) -> Result<Vec<OrderReport>, BrokerError> {
        let (params, weight) = match symbol {
            Some(s) => (vec![("symbol", s.to_string())], 6),
            None => (vec![], 80),
        };
        let body = self
            .get(self.query("/api/v3/openOrders", params, true, weight))
            .await?;
        wire::parse_orders(&body)
    }

    /// `GET /api/v3/openOrderList`.
    pub async fn open_order_lists(&self) -> Result<Vec<ListReport>, BrokerError> {
        let body = self
            .get(self.query("/api/v3/openOrderList", vec![], true, 6))
            .await?;
        wire::parse_order_lists(&body)
    }

    /// `GET /api/v3/order` by client order id. `-2013` means not found (yet).
    pub async fn query_order(
        &self,
        symbol: &Symbol,
        orig_client_order_id: &str,
    ) -> Result<OrderReport, BrokerError> {
        let params = vec![
            ("symbol", symbol.to_string()),
            ("origClientOrderId", orig_client_order_id.to_string()),
        ];
        let body = self.get(self.query("/api/v3/order", params, true, 4)).await?;
        wire::parse_order(&body)
    }

    /// `GET /api/v3/myTrades` from a trade id (inclusive), up to 1000, oldest first.
    pub async fn my_trades(&self, symbol: &Symbol, from_id: Option<u64>) -> Result<Vec<Fill>, BrokerError> {
        let mut params = vec![("symbol", symbol.to_string()), ("limit", "1000".to_string())];
        if let Some(id) = from_id {
            params.push(("fromId", id.to_string()));
        }
        let body = self.get(self.query("/api/v3/myTrades", params, true, 20)).await?;
        wire::parse_trades(&body)
    }

    /// `GET /api/v3/myTrades?orderId=` — one order's fills, from a trade id (inclusive) when
    /// given, up to 1000, oldest first.
    pub async fn my_trades_of_order(
        &self,
        symbol: &Symbol,
        order_id: u64,
        from_id: Option<u64>,
    ) -> Result<Vec<Fill>, BrokerError> {
        let mut params = vec![
            ("symbol", symbol.to_string()),
            ("orderId", order_id.to_string()),
            ("limit", "1000".to_string()),
        ];
        if let Some(id) = from_id {
            params.push(("fromId", id.to_string()));
        }
        let body = self.get(self.query("/api/v3/myTrades", params, true, 5)).await?;
        wire::parse_trades(&body)
    }

    /// `GET /sapi/v1/account/apiRestrictions` (live only; the testnet has no `/sapi`).
    pub async fn api_restrictions(&self) -> Result<ApiRestrictions, BrokerError> {
        let body = self
            .get(self.query("/sapi/v1/account/apiRestrictions", vec![], true, 1))
            .await?;
        wire::parse_api_restrictions(&body)
    }

    /// `GET /api/v3/account/commission`.
    pub async fn commission(&self, symbol: &Symbol) -> Result<CommissionRates, BrokerError> {
        let params = vec![("symbol", symbol.to_string())];
        let body = self
            .get(self.query("/api/v3/account/commission", params, true, 20))
            .await?;
        wire::parse_commission(&body)
    }
}

fn json_symbols(symbols: &[Symbol]) -> String {
    let names: Vec<String> = symbols.iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", names.join(","))
}

fn classify_transport(e: &reqwest::Error) -> BrokerError {
    if e.is_timeout() {
        BrokerError::Timeout
    } else if e.is_connect() {
        BrokerError::Connect(e.to_string_without_url())
    } else if e.is_decode() {
        BrokerError::Decode(e.to_string_without_url())
    } else {
        BrokerError::Network(e.to_string_without_url())
    }
}

trait WithoutUrl {
    fn to_string_without_url(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    /// reqwest puts the URL (query and signature included) in its messages: strip it.
    fn to_string_without_url(&self) -> String {
        let mut s = String::new();
        let mut src: Option<&dyn std::error::Error> = std::error::Error::source(self);
        while let Some(e) = src {
            if !s.is_empty() {
                s.push_str(": ");
            }
            s.push_str(&e.to_string());
            src = e.source();
        }
        if s.is_empty() {
            if self.is_timeout() {
                "timed out".into()
            } else {
                "request failed".into()
            }
        } else {
            s
        }
    }
}

fn log_outcome<T>(what: &str, id: &str, outcome: &OrderOutcome<T>) {
    match outcome {
        OrderOutcome::Done(_) => tracing::info!(what, id, "accepted"),
        OrderOutcome::Rejected(e) => tracing::warn!(what, id, error = %e, "rejected"),
        OrderOutcome::Unknown { reason } => {
            tracing::warn!(what, id, reason = %reason, "outcome UNKNOWN: reconcile, do not resend")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ClientOrderId, Side};

    fn req(order_type: OrderType, price: Option<&str>, stop: Option<&str>) -> OrderRequest {
        OrderRequest {
            symbol: Symbol::new("BTCUSDT").expect("ok"),
            side: Side::Buy,
            order_type,
            time_in_force: None,
            qty: "0.00100".parse().expect("ok"),
            price: price.map(|p| p.parse().expect("ok")),
            stop_price: stop.map(|p| p.parse().expect("ok")),
            client_order_id: ClientOrderId::new("cr-1").expect("ok"),
        }
    }

    fn keys(p: &[(&'static str, String)]) -> Vec<&'static str> {
        p.iter().map(|(k, _)| *k).collect()
    }

    #[test]
    fn limit_order_params_carry_gtc_and_plain_decimals() {
        let p = order_params(&req(OrderType::Limit, Some("60000.10"), None));
        assert_eq!(
            keys(&p),
            vec![
                "symbol",
                "side",
                "type",
                "timeInForce",
                "quantity",
                "price",
                "newClientOrderId",
                "newOrderRespType"
            ]
        );
        assert_eq!(p[3].1, "GTC");
        assert_eq!(p[4].1, "0.001");
        assert_eq!(p[5].1, "60000.1");
        assert_eq!(p[7].1, "FULL");
    }

    #[test]
    fn market_order_params_have_no_price_or_time_in_force() {
        let p = order_params(&req(OrderType::Market, Some("1"), None));
        assert_eq!(
            keys(&p),
            vec![
                "symbol",
                "side",
                "type",
                "quantity",
                "newClientOrderId",
                "newOrderRespType"
            ]
        );
    }

    fn oco(stop_limit: Option<&str>) -> OcoRequest {
        OcoRequest {
            symbol: Symbol::new("BTCUSDT").expect("ok"),
            qty: "0.5".parse().expect("ok"),
            take_profit: "110".parse().expect("ok"),
            stop_loss: "95".parse().expect("ok"),
            stop_limit: stop_limit.map(|p| p.parse().expect("ok")),
            list_client_order_id: ClientOrderId::new("l1").expect("ok"),
            take_profit_client_order_id: ClientOrderId::new("tp1").expect("ok"),
            stop_loss_client_order_id: ClientOrderId::new("sl1").expect("ok"),
        }
    }

    #[test]
    fn oco_sells_with_limit_maker_above_and_stop_loss_below() {
        let p = oco_params(&oco(None));
        let get = |k: &str| p.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("side"), Some("SELL"));
        assert_eq!(get("aboveType"), Some("LIMIT_MAKER"));
        assert_eq!(get("abovePrice"), Some("110"));
        assert_eq!(get("belowType"), Some("STOP_LOSS"));
        assert_eq!(get("belowStopPrice"), Some("95"));
        assert_eq!(get("belowPrice"), None);
        assert_eq!(get("belowTimeInForce"), None);
        let p = oco_params(&oco(Some("94.5")));
        let get = |k: &str| p.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("belowType"), Some("STOP_LOSS_LIMIT"));
        assert_eq!(get("belowPrice"), Some("94.5"));
        assert_eq!(get("belowTimeInForce"), Some("GTC"));
    }

    #[test]
    fn a_418_from_a_clock_far_from_ours_reports_the_clock_offset() {
        let now = 1_764_000_000_000;
        let honest = format!(
            "Way too much request weight used; IP banned until {}.",
            now + 120_000
        );
        assert_eq!(clock_offset_of_418(now, Some(120), &honest), None);
        assert_eq!(clock_offset_of_418(now, None, "IP banned until 0."), None);
        // An exchange whose clock reads 240 000 000 000 ms before the epoch: "until 0".
        let offset = clock_offset_of_418(now, Some(240_000_000), "IP banned until 0.");
        assert_eq!(offset, Some(-240_000_000_000 - now));
    }

    #[test]
    fn symbols_are_sent_as_a_json_array() {
        let s = [
            Symbol::new("BTCUSDT").expect("ok"),
            Symbol::new("BNBUSDT").expect("ok"),
        ];
        assert_eq!(json_symbols(&s), r#"["BTCUSDT","BNBUSDT"]"#);
        assert_eq!(depth_weight(5), 5);
        assert_eq!(depth_weight(5000), 250);
    }
}
