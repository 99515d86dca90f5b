//! Shared harness for the engine tests: the local exchange started in-process, crbot's real
//! REST client, a journal in a temporary folder, a `Core` primed with the exchange's rules,
//! balances and quotes, and a running `Runtime` driven through its command channel.
//!
//! The journal is an SQLite file in the test's folder, or (a [`Home`] of [`Store::Postgres`],
//! `tests/store_support`) a fresh database on the binary's one throw-away PostgreSQL cluster:
//! the tests about restart and recovery run on both through `both_stores!`.
//!
//! Owns: set-up and the `wait_*` helpers (poll with a deadline; never a bare sleep as an
//! assertion). Must not: assert behaviour itself; each test says what it proves.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

#[path = "../sim_support/client.rs"]
pub mod client;
#[path = "../store_support/mod.rs"]
pub mod store_support;

#[allow(unused_imports)]
pub use store_support::{Home, Store, pg_support};

use std::path::{Path, PathBuf};
use std::time::Duration;

use crbot::domain::{ClientOrderId, Mode, OrderPurpose, Price, Quote, Symbol};
use crbot::engine::core::Core;
use crbot::engine::runtime::Runtime;
use crbot::engine::snapshot::{Command, Snapshot, TicketDraft, TradingState as ViewState};
use crbot::exchange::binance::endpoints::Endpoints;
use crbot::exchange::binance::rest::{BinanceRest, RestConfig};
use crbot::exchange::binance::sign::Credentials;
use crbot::exchange::sim::{self, Faults, SimConfig, SimHandle};
use crbot::journal::{Journal, Location, TicketSource};
use crbot::risk::Limits;
use rust_decimal::Decimal;
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

pub const BTC: &str = "BTCUSDT";
pub const ETH: &str = "ETHUSDT";
pub const BNB: &str = "BNBUSDT";

pub fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}

pub fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A market that steps (so quotes stay fresh) but barely moves by itself: speed 1e-6 scales
/// the per-step return by 1e-3, about one tick on BTC. Tests move prices with `set_price`.
pub fn quiet_config(faults: Faults) -> SimConfig {
    SimConfig {
        speed: Decimal::new(1, 6),
        faults,
        ..SimConfig::default()
    }
}

/// The local exchange and crbot's client for it.
pub struct Ex {
    pub sim: SimHandle,
    pub rest: BinanceRest,
    /// A hand-written signed client (not crbot's), for looking at the exchange independently.
    pub raw: client::Client,
}

pub async fn exchange() -> Ex {
    exchange_with(Faults::default(), RestConfig::default()).await
}

pub async fn exchange_with(faults: Faults, rest_config: RestConfig) -> Ex {
    let sim = sim::start("127.0.0.1:0".parse().unwrap(), quiet_config(faults))
        .await
        .unwrap();
    let creds = Credentials::hmac(&sim.api_key(), sim.api_secret().expose());
    let rest =
        BinanceRest::without_ban_store(Endpoints::local(sim.addr()).unwrap(), Some(creds), rest_config)
            .unwrap();
    let raw = client::Client::new(&sim);
    Ex { sim, rest, raw }
}

impl Ex {
    /// Every order the exchange has for `symbol` (allOrders), as raw JSON.
    pub async fn all_orders(&self, symbol: &str) -> Vec<Value> {
        let r = self
            .raw
            .signed("GET", "/api/v3/allOrders", &[("symbol", symbol)])
            .await;
        assert_eq!(r.status, 200, "allOrders: {}", r.body);
        r.body.as_array().cloned().unwrap_or_default()
    }

    /// Open orders on the exchange, every symbol (one cheap request per symbol: the
    /// all-symbols form weighs 80 and polling it would rate-limit the engine under test).
    pub async fn open_orders(&self) -> Vec<Value> {
        let mut all = Vec::new();
        for (symbol, _) in self.sim.mids() {
            let r = self
                .raw
                .signed("GET", "/api/v3/openOrders", &[("symbol", &symbol)])
                .await;
            assert_eq!(r.status, 200, "openOrders: {}", r.body);
            all.extend(r.body.as_array().cloned().unwrap_or_default());
        }
        all
    }

    /// Trades of `symbol` on the exchange, as raw JSON.
    pub async fn trades(&self, symbol: &str) -> Vec<Value> {
        let r = self
            .raw
            .signed("GET", "/api/v3/myTrades", &[("symbol", symbol)])
            .await;
        assert_eq!(r.status, 200, "myTrades: {}", r.body);
        r.body.as_array().cloned().unwrap_or_default()
    }

    /// Free + locked of an asset.
    pub async fn holding(&self, asset: &str) -> Decimal {
        let (free, locked) = self.raw.balance(asset).await;
        free + locked
    }

    /// The exchange's best bid and ask.
    pub async fn book(&self, symbol: &str) -> (Price, Price) {
        let b = self.rest.book_ticker(&sym(symbol)).await.unwrap();
        (b.bid, b.ask)
    }
}

/// Polls `cond` (every 200 ms: it usually asks the exchange, whose request weight the engine
/// under test shares) until it holds; panics with `what` after `timeout`.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if cond().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits for a snapshot that satisfies `pred`; returns it. Panics with the last snapshot's
/// state and log after `timeout`.
pub async fn wait_snapshot(
    rx: &mut watch::Receiver<Snapshot>,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&Snapshot) -> bool,
) -> Snapshot {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        {
            let s = rx.borrow_and_update();
            if pred(&s) {
                return s.clone();
            }
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() || tokio::time::timeout(left, rx.changed()).await.is_err() {
            let s = rx.borrow();
            let log: Vec<&str> = s.log.iter().map(|l| l.text.as_str()).collect();
            panic!(
                "timed out after {timeout:?} waiting for: {what}\nstate: {:?}\norders: {:?}\nresult: {:?}\nlog:\n{}",
                s.header.trading,
                s.orders
                    .iter()
                    .map(|o| (o.purpose, o.symbol.as_str(), o.state))
                    .collect::<Vec<_>>(),
                s.ticket_result,
                log.join("\n")
            );
        }
    }
}

pub fn logged(s: &Snapshot, needle: &str) -> bool {
    s.log.iter().any(|l| l.text.contains(needle))
}

pub fn is_halted(s: &Snapshot) -> bool {
    matches!(s.header.trading, ViewState::Halted { .. })
}

pub fn is_reducing(s: &Snapshot) -> bool {
    matches!(s.header.trading, ViewState::Reducing { .. })
}

pub fn is_active(s: &Snapshot) -> bool {
    matches!(s.header.trading, ViewState::Active)
}

/// Open orders in the snapshot with this purpose on this symbol.
pub fn open_with(s: &Snapshot, symbol: &str, purpose: OrderPurpose) -> Vec<ClientOrderId> {
    s.orders
        .iter()
        .filter(|o| o.symbol.as_str() == symbol && o.purpose == purpose && o.state.is_open())
        .map(|o| o.client_order_id.clone())
        .collect()
}

/// Limits loose enough that the tests' tickets pass, with the given daily-loss limit.
pub fn limits(daily_loss_pct: &str) -> Limits {
    Limits {
        max_daily_loss_pct: dec(daily_loss_pct),
        ..Limits::default()
    }
}

pub fn journal_path(dir: &Path) -> PathBuf {
    dir.join("journal-sim.db")
}

/// A `Core` restored from the journal at `path`, primed from the exchange as the runtime
/// would be: rules, balances, fresh quotes (stamped `now`), and one equity sample.
pub async fn primed_core(ex: &Ex, path: &Path, limits: Limits, now: i64) -> Core {
    primed_core_on(ex, Journal::open(path, Mode::Sim).unwrap(), limits, now).await
}

/// [`primed_core`] on the journal in `home`, on either store.
pub async fn primed_core_at(ex: &Ex, home: &Home, limits: Limits, now: i64) -> Core {
    primed_core_on(ex, home.open(Mode::Sim), limits, now).await
}

async fn primed_core_on(ex: &Ex, journal: Journal, limits: Limits, now: i64) -> Core {
    let mut core = Core::restore(journal, Mode::Sim, limits, TicketSource::Tui, now).unwrap();
    prime(ex, &mut core, now).await;
    core
}

pub async fn prime(ex: &Ex, core: &mut Core, now: i64) {
    let info = ex.rest.exchange_info(&[]).await.unwrap();
    for r in info.symbols {
        core.state.rules.insert(r.symbol.clone(), r);
    }
    core.replay_fills();
    let account = ex.rest.account().await.unwrap();
    core.state.set_balances(account.balances, true);
    for s in [BTC, ETH, BNB] {
        let (bid, ask) = ex.book(s).await;
        core.state.on_quote(
            sym(s),
            Quote {
                bid,
                ask,
                time_ms: now,
            },
        );
    }
    core.sample_equity(now, false);
}

/// A BUY LIMIT that crosses the ask (fills at once), with a stop-loss 2 % below and a
/// take-profit 3 % above.
pub fn crossing_buy(symbol: &str, qty: &str, ask: Price) -> TicketDraft {
    let a = ask.value();
    TicketDraft {
        symbol: symbol.into(),
        side: "BUY".into(),
        order_type: "LIMIT".into(),
        amount: qty.into(),
        price: (a * dec("1.002")).round_dp(2).to_string(),
        stop_loss: (a * dec("0.98")).round_dp(2).to_string(),
        take_profit: (a * dec("1.03")).round_dp(2).to_string(),
    }
}

/// A BUY LIMIT resting 1 % below the bid, with a stop-loss 3 % and a take-profit 4 % away.
pub fn resting_buy(symbol: &str, qty: &str, bid: Price) -> TicketDraft {
    let b = bid.value();
    TicketDraft {
        symbol: symbol.into(),
        side: "BUY".into(),
        order_type: "LIMIT".into(),
        amount: qty.into(),
        price: (b * dec("0.99")).round_dp(2).to_string(),
        stop_loss: (b * dec("0.96")).round_dp(2).to_string(),
        take_profit: (b * dec("1.04")).round_dp(2).to_string(),
    }
}

/// A console engine running against the exchange, without a screen.
pub struct Console {
    pub cmd: mpsc::Sender<Command>,
    pub snap: watch::Receiver<Snapshot>,
    pub cancel: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
    pub journal_path: PathBuf,
    pub dir: tempfile::TempDir,
    pub mode: Mode,
    /// The journal's database, on PostgreSQL.
    pub db: Option<pg_support::PgDatabase>,
    pub location: Location,
}

impl Console {
    pub async fn send(&self, c: Command) {
        self.cmd.send(c).await.unwrap();
    }

    /// A second connection to the console's journal (as another process would open it).
    pub fn journal(&self) -> Journal {
        Journal::open_at(&self.location, self.mode).unwrap()
    }

    /// Stops the engine; returns the folder holding the journal (deleted when dropped).
    pub async fn stop(self) -> tempfile::TempDir {
        self.stop_home().await.dir
    }

    /// Stops the engine; returns where its journal is, for a restart ([`console_at`]).
    pub async fn stop_home(self) -> Home {
        self.cancel.cancel();
        let _ = self.task.await;
        Home {
            dir: self.dir,
            db: self.db,
        }
    }
}

/// Starts `Runtime::run` on a fresh journal and waits until it has quotes and has reconciled.
pub async fn console(ex: &Ex, limits: Limits, auto_flatten: bool) -> Console {
    console_in(ex, tempfile::tempdir().unwrap(), limits, auto_flatten).await
}

/// [`console_in`] on the journal in `home`, on either store.
pub async fn console_at(ex: &Ex, home: Home, limits: Limits, auto_flatten: bool) -> Console {
    console_home(ex, home, limits, auto_flatten, Mode::Sim, None).await
}

/// Starts `Runtime::run` on the journal in `dir` (a restart when it exists), restored as the
/// console does, and waits until it has quotes and has reconciled.
pub async fn console_in(ex: &Ex, dir: tempfile::TempDir, limits: Limits, auto_flatten: bool) -> Console {
    console_with(ex, dir, limits, auto_flatten, Mode::Sim, None).await
}

/// [`console_in`] labelled `mode` (the exchange is the local one whatever the label), with the
/// vault a re-arm's passphrase is checked against.
pub async fn console_with(
    ex: &Ex,
    dir: tempfile::TempDir,
    limits: Limits,
    auto_flatten: bool,
    mode: Mode,
    vault: Option<PathBuf>,
) -> Console {
    console_home(ex, Home::from(dir), limits, auto_flatten, mode, vault).await
}

async fn console_home(
    ex: &Ex,
    home: Home,
    limits: Limits,
    auto_flatten: bool,
    mode: Mode,
    vault: Option<PathBuf>,
) -> Console {
    let path = journal_path(home.dir.path());
    let location = home.location();
    let journal = home.open(mode);
    let now = now_ms();
    let core = Core::restore(journal, mode, limits, TicketSource::Tui, now).unwrap();
    let (snap_tx, mut snap) = watch::channel(core.state.snapshot(now));
    let (cmd, cmd_rx) = mpsc::channel(64);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(Runtime::run(
        core,
        ex.rest.clone(),
        cmd_rx,
        snap_tx,
        cancel.clone(),
        auto_flatten,
        vault,
    ));
    wait_snapshot(
        &mut snap,
        Duration::from_secs(10),
        "quotes and reconciliation",
        |s| {
            logged(s, "reconciled with the exchange")
                && s.equity.is_some()
                && [BTC, ETH, BNB].iter().all(|n| {
                    s.watchlist
                        .iter()
                        .any(|w| w.symbol.as_str() == *n && w.ask.is_some() && !w.stale)
                })
        },
    )
    .await;
    Console {
        cmd,
        snap,
        cancel,
        task,
        journal_path: path,
        dir: home.dir,
        mode,
        db: home.db,
        location,
    }
}
