//! The local Binance-compatible exchange: REST, market streams and the
//! WebSocket API on loopback, over a synthetic market (or a Binance bookTicker feed in paper
//! mode), with Binance's signing, timing, filter, rate-limit and error rules.
//!
//! Owns: starting and stopping the server (`start`, `run_cli`), its shared state and the
//! background tasks (market steps, persistence, fault timers). Must not: share protocol code
//! with `exchange::binance` (the client); everything here is written from the official docs
//! and Binance's official API docs, so that a mistake on one side cannot hide on the other.
//!
//! Parts: `market` (synthetic prices), `engine` (account and matching), `auth` (signatures and
//! timestamps), `limits` (rate limits), `faults` (fault switches; grammar in its module doc),
//! `ops` (the authentication and order operations both transports serve), `rest`, `ws`
//! (streams and WebSocket API), `persist` (the state file), `paper` (price feed). `rest` and
//! `ws` do not import each other: `router` here joins them.
//!
//! Control endpoints, for tests and demos: loopback peers only, and every request carries the
//! exchange's own API key (the one the banner prints and the state file keeps) in
//! `X-MBX-APIKEY`, else HTTP 401 `-2015`; JSON bodies.
//! `POST /sim/control/price {"symbol":"BTCUSDT","price":"90000"}` moves a price now (resting
//! orders and stops react at once; the price must pass the symbol's PRICE_FILTER);
//! `POST /sim/control/faults {…}` changes the fault switches it names (`{"reset": true}`
//! clears them; grammar in `faults`); `POST /sim/control/balance {"asset":"USDT","delta":"100"}`
//! deposits (or withdraws) and emits `balanceUpdate`. `SimHandle` offers the same from Rust.
//! `crbot sim --still` (`SimConfig::still`) starts no market steps: an idle market, moved only
//! by that price endpoint.
//!
//! Served beyond plain orders and OCO: cancelReplace (REST `POST /api/v3/order/cancelReplace`,
//! WebSocket API `order.cancelReplace`; `ops`), trailing stops (`trailingDelta` on single
//! STOP_LOSS/TAKE_PROFIT orders; `engine::matching::trail`), OTO and OTOCO lists (REST
//! `POST /api/v3/orderList/oto` and `/otoco`, WebSocket API `orderList.place.oto`/`.otoco`;
//! `engine::oto`) with the list queries (`orderList`, `openOrderList`, `allOrderList`),
//! icebergs (`icebergQty`, the `ICEBERG_PARTS` filter), and self-trade prevention
//! (`selfTradePreventionMode` EXPIRE_TAKER, EXPIRE_MAKER, EXPIRE_BOTH, NONE, and the symbol's
//! default EXPIRE_MAKER for an order that names none, as on Binance; `engine::selftrade`;
//! `myPreventedMatches`). The account's own resting orders are part of the book: every taker
//! of the account meets them as its mode says, and `GET /api/v3/depth` and the partial-depth
//! streams (`@depthN`) show them, an iceberg's visible part only (the diff stream `@depth`
//! follows the synthetic book alone).
//!
//! Not served (answer 404 `-1000` or are rejected as exchangeInfo says): trailing OCO legs,
//! pegged orders, the DECREMENT and TRANSFER prevention modes, OPO lists, amend,
//! `X-MBX-TIME-UNIT`, SBE, listenKey streams (Binance retired them; the trading libraries
//! subscribe through the WebSocket API, which is served), `session.logon`, and
//! everything under `/sapi` but the few endpoints trading libraries read at start-up
//! (`rest::wallet`: trade fees, coins, system and account status, margin pairs answered as
//! for an account without margin).
//!
//! The state is one `Mutex<Engine>` held only for short, non-async sections: the sim is a
//! test double serving one account, and a lock is the simplest correct way to serialise
//! requests, market steps and matching as a real matching engine does.

pub mod auth;
pub mod engine;
pub mod faults;
pub mod limits;
pub mod market;
mod ops;
mod paper;
mod persist;
mod rest;
mod ws;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::routing::{any, post};
use rust_decimal::Decimal;
use serde_json::Value;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub use auth::SimAuth;
pub use faults::{FaultControl, Faults};
pub use limits::RateLimits;

use crate::secret::SecretString;
use engine::{AccountState, Bal, Engine};
use market::{Market, MarketEvent};

/// `crbot sim` options (a command-line contract: README "Commands").
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Address to bind (loopback by default; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub addr: SocketAddr,
    /// Seed of the synthetic market: the same seed gives the same prices.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Time multiplier for the synthetic market (1 = real time).
    #[arg(long, default_value = "1")]
    pub speed: String,
    /// File holding the account (balances, orders, trades) across restarts.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Start over: discard the saved account in --state.
    #[arg(long)]
    pub reset: bool,
    /// Fault switches, e.g. `drop_ws_every_secs=30,order_503=1` (see the README).
    #[arg(long)]
    pub faults: Option<String>,
    /// Price source: `synthetic` (default) or `binance[=WS_URL]` (paper mode).
    #[arg(long)]
    pub prices: Option<String>,
    /// Commission rate per fill (0.001 = 0.1 %).
    #[arg(long, default_value = "0.001")]
    pub commission: String,
    /// Pay commissions in BNB (25 % off) while the account holds enough BNB.
    #[arg(long)]
    pub bnb_fees: bool,
    /// Hold the synthetic market still: no price steps, no book or trade updates
    /// (`POST /sim/control/price` still moves a price).
    #[arg(long)]
    pub still: bool,
}

/// Errors starting the exchange.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("state file {path}: {reason}")]
    State { path: PathBuf, reason: String },
    #[error("bad option: {0}")]
    Config(String),
}

/// Where prices come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PriceSource {
    /// The seeded random walk.
    #[default]
    Synthetic,
    /// A Binance combined `@bookTicker` stream at this base URL (e.g. `wss://stream.binance.com:9443`).
    Binance(String),
}

impl PriceSource {
    pub const BINANCE_STREAMS: &'static str = "wss://data-stream.binance.vision:443";

    /// `synthetic` | `binance` | `binance=WS_URL`.
    pub fn parse(s: &str) -> Result<PriceSource, SimError> {
        match s.split_once('=') {
            None if s == "synthetic" => Ok(PriceSource::Synthetic),
            None if s == "binance" => Ok(PriceSource::Binance(Self::BINANCE_STREAMS.to_string())),
            Some(("binance", url)) if !url.is_empty() => Ok(PriceSource::Binance(url.to_string())),
            _ => Err(SimError::Config(format!(
                "--prices `{s}`: expected synthetic, binance or binance=WS_URL"
            ))),
        }
    }
}

/// An API key the exchange accepts, with the permissions `apiRestrictions` reports.
#[derive(Debug, Clone)]
pub struct SimKey {
    pub api_key: String,
    pub auth: SimAuth,
    pub enable_withdrawals: bool,
    pub ip_restrict: bool,
    pub enable_spot_trading: bool,
}

impl SimKey {
    /// An HMAC key with trading on, withdrawals off.
    pub fn hmac(api_key: &str, secret: SecretString) -> Self {
        SimKey {
            api_key: api_key.to_string(),
            auth: SimAuth::Hmac(secret),
            enable_withdrawals: false,
            ip_restrict: false,
            enable_spot_trading: true,
        }
    }
}

/// Everything `start` needs.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    /// Market time per real time (1 = real time).
    pub speed: Decimal,
    pub state_file: Option<PathBuf>,
    /// Ignore (and overwrite) the saved account.
    pub reset: bool,
    pub faults: Faults,
    pub commission_rate: Decimal,
    /// Charge commissions in BNB, discounted, while the account holds enough (like Binance's
    /// "use BNB to pay for fees"; rule in `engine`'s module doc).
    pub bnb_fees: bool,
    /// Extra keys; the default HMAC key (generated or from the state file) is always accepted.
    pub keys: Vec<SimKey>,
    pub price_source: PriceSource,
    pub starting_balances: Vec<(String, Decimal)>,
    pub rate_limits: RateLimits,
    /// Stream and WebSocket API connections are closed after this long (Binance: 24 h).
    pub ws_lifetime: Duration,
    /// Server ping interval (Binance: 20 s) and the pong deadline (Binance: 60 s).
    pub ws_ping_interval: Duration,
    pub ws_pong_timeout: Duration,
    /// Real time between two market steps.
    pub step_interval: Duration,
    /// The synthetic market takes no steps at all (`crbot sim --still`): prices, books and
    /// klines stay as they start until `/sim/control/price` moves them. For an idle market.
    pub still: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 42,
            speed: Decimal::ONE,
            state_file: None,
            reset: false,
            faults: Faults::default(),
            commission_rate: Decimal::new(1, 3),
            bnb_fees: false,
            keys: Vec::new(),
            price_source: PriceSource::Synthetic,
            starting_balances: vec![
                ("USDT".into(), Decimal::from(10_000)),
                ("BNB".into(), Decimal::new(5, 1)),
            ],
            rate_limits: RateLimits::default(),
            ws_lifetime: Duration::from_secs(24 * 3600),
            ws_ping_interval: Duration::from_secs(20),
            ws_pong_timeout: Duration::from_secs(60),
            step_interval: Duration::from_millis(market::STEP_MS as u64),
            still: false,
        }
    }
}

/// A rendered stream message: stream name and JSON text.
pub(crate) type StreamBatch = Arc<Vec<(String, String)>>;

/// State shared by the HTTP handlers, WebSocket connections and background tasks.
#[derive(Debug)]
pub(crate) struct Shared {
    engine: Mutex<Engine>,
    rate: Mutex<limits::RateState>,
    keys: Vec<SimKey>,
    faults: FaultControl,
    market_tx: broadcast::Sender<StreamBatch>,
    user_tx: broadcast::Sender<Arc<Value>>,
    shutdown: CancellationToken,
    dirty: AtomicBool,
    state_file: Option<PathBuf>,
    default_key: (String, SecretString),
    config: SimConfig,
    started_ms: i64,
}

fn system_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Shared {
    /// The server clock: the machine clock plus the fault offset.
    pub(crate) fn now(&self) -> i64 {
        system_ms() + self.faults.clock_offset_ms()
    }

    pub(crate) fn engine(&self) -> MutexGuard<'_, Engine> {
        // A poisoned lock means a handler panicked mid-update; the state is still the best we have.
        self.engine.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn rate(&self) -> MutexGuard<'_, limits::RateState> {
        self.rate.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes the events the engine produced since the last call.
    pub(crate) fn publish(&self, e: &mut Engine) {
        let user: Vec<Value> = std::mem::take(&mut e.user_events);
        if !user.is_empty() {
            self.dirty.store(true, Ordering::Relaxed);
        }
        for ev in user {
            let _ = self.user_tx.send(Arc::new(ev));
        }
        let events: Vec<MarketEvent> = std::mem::take(&mut e.market_events);
        if events.is_empty() {
            return;
        }
        let batch = ws::render_events(&e.market, &events);
        let _ = self.market_tx.send(Arc::new(batch));
    }

    fn save(&self) -> Result<(), SimError> {
        let Some(path) = &self.state_file else {
            return Ok(());
        };
        let (account, prices) = {
            let e = self.engine();
            let prices = e
                .market
                .symbols
                .iter()
                .map(|s| (s.spec.symbol.to_string(), s.mid))
                .collect();
            (e.account.clone(), prices)
        };
        persist::save(path, &self.default_key, &account, &prices)
    }
}

/// A running exchange.
#[derive(Debug)]
pub struct SimHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    pub fn rest_url(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }
    pub fn ws_api_url(&self) -> String {
        format!("ws://{}/ws-api/v3", self.addr)
    }
    pub fn api_key(&self) -> String {
        self.shared.default_key.0.clone()
    }
    pub fn api_secret(&self) -> SecretString {
        self.shared.default_key.1.clone()
    }
    /// Fault switches, settable while running.
    pub fn faults(&self) -> FaultControl {
        self.shared.faults.clone()
    }
    /// Moves a symbol's price now (like `POST /sim/control/price`).
    pub fn set_price(&self, symbol: &str, price: Decimal) -> Result<(), engine::ApiError> {
        let now = self.shared.now();
        let mut e = self.shared.engine();
        let r = e.force_price(symbol, price, now);
        self.shared.publish(&mut e);
        r
    }
    /// Deposits (positive) or withdraws (negative) `amount` of `asset` (`balanceUpdate` event),
    /// like `POST /sim/control/balance`.
    pub fn deposit(&self, asset: &str, amount: Decimal) -> Result<(), engine::ApiError> {
        let now = self.shared.now();
        let mut e = self.shared.engine();
        let r = e.adjust_balance(asset, amount, now);
        self.shared.publish(&mut e);
        r
    }
    /// Current mid prices, in symbol order (determinism checks).
    pub fn mids(&self) -> Vec<(String, Decimal)> {
        let e = self.shared.engine();
        e.market
            .symbols
            .iter()
            .map(|s| (s.spec.symbol.to_string(), s.mid))
            .collect()
    }
    /// The one line `crbot sim` prints.
    pub fn banner(&self) -> String {
        format!(
            "rest={} ws={} ws_api={} api_key={} api_secret={}",
            self.rest_url(),
            self.ws_url(),
            self.ws_api_url(),
            self.api_key(),
            self.api_secret().expose()
        )
    }

    /// Stops serving: `serverShutdown` to every WebSocket, state saved, tasks ended.
    pub async fn shutdown(self) {
        self.shared.shutdown.cancel();
        for t in self.tasks {
            t.abort();
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), self.server).await;
        if let Err(e) = self.shared.save() {
            tracing::warn!("sim: saving state at shutdown failed: {e}");
        }
    }
}

fn random_alnum(n: usize) -> String {
    use rand::RngExt;
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..n).map(|_| A[rng.random_range(0..A.len())] as char).collect()
}

/// All routes: WebSockets, control endpoints, and everything else through the REST dispatcher.
fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/ws", any(ws::stream_handler_root))
        .route("/ws/{*streams}", any(ws::stream_handler_raw))
        .route("/stream", any(ws::stream_handler_combined))
        .route("/ws-api/v3", any(ws::api_handler))
        .route("/sim/control/faults", post(rest::control_faults))
        .route("/sim/control/price", post(rest::control_price))
        .route("/sim/control/balance", post(rest::control_balance))
        .fallback(rest::rest)
        .with_state(shared)
}

/// Starts the exchange on `addr` (use port 0 for a free port) inside the current tokio runtime.
pub async fn start(addr: SocketAddr, config: SimConfig) -> Result<SimHandle, SimError> {
    let now = system_ms() + config.faults.clock_offset_ms;
    let saved = match (&config.state_file, config.reset) {
        (Some(path), false) => persist::load(path)?,
        _ => None,
    };
    let (default_key, account, prices) = match saved {
        Some(s) => (s.key, s.account, s.prices),
        None => {
            let mut account = AccountState::default();
            for (asset, amount) in &config.starting_balances {
                account.balances.insert(
                    asset.clone(),
                    Bal {
                        free: *amount,
                        locked: Decimal::ZERO,
                    },
                );
            }
            (
                (random_alnum(64), SecretString::new(random_alnum(64))),
                account,
                Default::default(),
            )
        }
    };
    let mut keys = config.keys.clone();
    keys.push(SimKey::hmac(&default_key.0, default_key.1.clone()));
    let mut market = Market::resume(config.seed, config.speed, now, &prices);
    if matches!(config.price_source, PriceSource::Binance(_)) {
        paper::await_real_prices(&mut market);
    }
    let mut engine = Engine::new(market, account, config.commission_rate);
    engine.bnb_fees = config.bnb_fees;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| SimError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| SimError::Bind { addr, source })?;
    let (market_tx, _) = broadcast::channel(4096);
    let (user_tx, _) = broadcast::channel(4096);
    let shared = Arc::new(Shared {
        engine: Mutex::new(engine),
        rate: Mutex::new(limits::RateState::new(config.rate_limits)),
        keys,
        faults: FaultControl::new(config.faults.clone()),
        market_tx,
        user_tx,
        shutdown: CancellationToken::new(),
        dirty: AtomicBool::new(true),
        state_file: config.state_file.clone(),
        default_key,
        config: config.clone(),
        started_ms: now,
    });
    shared.save()?;
    let app = router(shared.clone());
    let token = shared.shutdown.clone();
    let server = tokio::spawn(async move {
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        let r = axum::serve(listener, service)
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await;
        if let Err(e) = r {
            tracing::warn!("sim: server stopped: {e}");
        }
    });
    let mut tasks = Vec::new();
    match &config.price_source {
        PriceSource::Synthetic if config.still => {}
        PriceSource::Synthetic => tasks.push(tokio::spawn(market_task(shared.clone()))),
        PriceSource::Binance(url) => tasks.push(tokio::spawn(paper::feed_task(shared.clone(), url.clone()))),
    }
    tasks.push(tokio::spawn(persist_task(shared.clone())));
    tasks.push(tokio::spawn(drop_timer_task(shared.clone())));
    Ok(SimHandle {
        shared,
        addr: local,
        server,
        tasks,
    })
}

async fn market_task(shared: Arc<Shared>) {
    // The first step one interval after the start, not at once: a price set right after
    // `start` (tests, demos) is not moved by a step racing it.
    let step = shared.config.step_interval;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + step, step);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tick.tick() => {
                let now = shared.now();
                let mut e = shared.engine();
                // `Market::step` already isolates each symbol; this catches the matching that
                // follows, so that a bug there is logged and the market keeps stepping instead
                // of this task ending silently and every quote going stale.
                let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| e.step(now)));
                if stepped.is_err() {
                    tracing::error!("sim: matching after a market step failed; the market keeps moving");
                }
                shared.publish(&mut e);
            }
        }
    }
}

async fn persist_task(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tick.tick() => {
                if shared.dirty.swap(false, Ordering::Relaxed) && let Err(e) = shared.save() {
                    tracing::warn!("sim: saving state failed: {e}");
                }
            }
        }
    }
}

async fn drop_timer_task(shared: Arc<Shared>) {
    let mut last = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tick.tick() => {
                match shared.faults.get().drop_ws_every_secs {
                    Some(n) if last.elapsed() >= Duration::from_secs(n) => {
                        last = tokio::time::Instant::now();
                        shared.faults.drop_ws_now();
                    }
                    Some(_) => {}
                    None => last = tokio::time::Instant::now(),
                }
            }
        }
    }
}

/// Builds a `SimConfig` from the command line.
pub fn config_from_args(args: &SimArgs) -> Result<SimConfig, SimError> {
    let speed: Decimal = args
        .speed
        .parse()
        .map_err(|_| SimError::Config(format!("--speed `{}` is not a number", args.speed)))?;
    if speed <= Decimal::ZERO || speed > Decimal::from(10_000) {
        return Err(SimError::Config("--speed must be in (0, 10000]".into()));
    }
    let commission: Decimal = args
        .commission
        .parse()
        .map_err(|_| SimError::Config(format!("--commission `{}` is not a number", args.commission)))?;
    // A rate is a fraction of the fill: negative or >= 1 would pay the trader or take more than
    // the fill, and drive balances negative.
    if commission < Decimal::ZERO || commission >= Decimal::ONE {
        return Err(SimError::Config("--commission must be in [0, 1)".into()));
    }
    let faults = match &args.faults {
        Some(s) => Faults::parse(s).map_err(|e| SimError::Config(e.to_string()))?,
        None => Faults::default(),
    };
    let price_source = match &args.prices {
        Some(p) => PriceSource::parse(p)?,
        None => PriceSource::Synthetic,
    };
    let seed = args.seed.unwrap_or_else(|| {
        use rand::RngExt;
        rand::rng().random::<u64>()
    });
    Ok(SimConfig {
        seed,
        speed,
        state_file: args.state.clone(),
        reset: args.reset,
        faults,
        commission_rate: commission,
        bnb_fees: args.bnb_fees,
        price_source,
        still: args.still,
        ..SimConfig::default()
    })
}

/// Runs `crbot sim` until SIGINT/SIGTERM: prints the one banner line, then serves.
pub fn run_cli(args: &SimArgs) -> anyhow::Result<()> {
    let config = config_from_args(args)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let handle = start(args.addr, config).await?;
        {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", handle.banner())?;
            out.flush()?;
        }
        wait_for_signal().await;
        handle.shutdown().await;
        Ok(())
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn args(commission: &str) -> SimArgs {
        SimArgs {
            addr: "127.0.0.1:0".parse().unwrap(),
            seed: Some(1),
            speed: "1".into(),
            state: None,
            reset: false,
            faults: None,
            prices: None,
            commission: commission.into(),
            bnb_fees: false,
            still: false,
        }
    }

    #[test]
    fn commission_rates_outside_zero_to_one_are_refused() {
        for bad in ["-0.001", "1", "79228162514264337593543950335"] {
            assert!(config_from_args(&args(bad)).is_err(), "{bad}");
        }
        assert_eq!(
            config_from_args(&args("0.001")).unwrap().commission_rate,
            Decimal::new(1, 3)
        );
    }

    #[test]
    fn still_comes_from_the_command_line() {
        let mut a = args("0.001");
        assert!(!config_from_args(&a).unwrap().still);
        a.still = true;
        assert!(config_from_args(&a).unwrap().still);
    }

    /// Every symbol's mid at the start and after a second of steps 10 ms apart (tokio's clock
    /// is paused: the second passes as soon as nothing else is left to run).
    async fn mids_over_a_second(still: bool) -> (Vec<(String, Decimal)>, Vec<(String, Decimal)>) {
        let config = SimConfig {
            still,
            step_interval: Duration::from_millis(10),
            ..SimConfig::default()
        };
        let h = start("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
        let before = h.mids();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let after = h.mids();
        h.shutdown().await;
        (before, after)
    }

    #[tokio::test(start_paused = true)]
    async fn a_still_market_takes_no_steps_where_a_moving_one_does() {
        let (before, after) = mids_over_a_second(false).await;
        assert_ne!(before, after, "a hundred steps move some price");
        let (before, after) = mids_over_a_second(true).await;
        assert_eq!(before, after, "--still: no price moved");
    }
}
