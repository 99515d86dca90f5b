//! What every command-line command shares: the loaded configuration, the exit-code carrying
//! error, printing (text or one JSON document), and the preparation of a trading command —
//! connect, restore the journal into a [`Core`], load the exchange's rules, balances and
//! quotes, and reconcile the journal with the exchange before anything is decided.
//!
//! Owns: the order of the start-up reconciliation for one-shot commands. Must not: decide on
//! tickets or send orders (the commands do, through `Core`), print a secret.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::cli::GlobalOpts;
use crate::cli::remote::{self, Route};
use crate::config::{Config, redact_urls};
use crate::domain::broker::OrderReport;
use crate::domain::{ClientOrderId, LocalOrderState, Quote, Symbol};
use crate::engine::core::{Core, FollowUp};
use crate::engine::limits_from;
use crate::engine::lock::EngineLock;
use crate::engine::oneshot::{OneShot, pull_fills_with, startup_resolve};
use crate::engine::session::{Session, Unlock};
use crate::exchange::binance::reconcile::{self, Resolution};
use crate::exchange::binance::rest::BinanceRest;
use crate::journal::lease::{Candidate, Lease, LeaseGuard, LeaseState};
use crate::journal::{Journal, JournalError, TicketSource};

/// A command's failure: the exit code and the one line printed on stderr.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub line: String,
}

impl Failure {
    /// A failure line; a URL in it (from a configured endpoint or a client error) is shown
    /// without its password or query values.
    pub fn new(line: impl Into<String>) -> Self {
        Self {
            code: super::exit::FAILURE,
            line: redact_urls(&line.into()),
        }
    }

    pub fn usage(line: impl Into<String>) -> Self {
        Self {
            code: super::exit::USAGE,
            line: redact_urls(&line.into()),
        }
    }
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::new(e.to_string())
    }
}

/// A command's result: the exit code on success (0, or 3 for a risk rejection).
pub type Outcome = Result<i32, Failure>;

/// The context every command runs in.
#[derive(Debug)]
pub struct Ctx {
    pub config: Config,
    pub global: GlobalOpts,
}

impl Ctx {
    pub fn json(&self) -> bool {
        self.global.json
    }

    pub fn unlock(&self) -> Unlock {
        if self.global.passphrase_stdin {
            Unlock::Stdin
        } else {
            Unlock::Terminal
        }
    }

    /// Prints human text, or the JSON document with `--json` (never both). URLs in either are
    /// shown without their password or query values.
    pub fn print(&self, text: &str, json: serde_json::Value) {
        if self.json() {
            print_json(json);
        } else if !text.is_empty() {
            println!("{}", redact_urls(text.trim_end()));
        }
    }
}

/// Prints a `--json` document (pretty, URLs in its strings redacted) and notes that it is out.
pub fn print_json(json: serde_json::Value) {
    note_document_printed();
    let json = redact_json(json);
    println!(
        "{}",
        serde_json::to_string_pretty(&json).unwrap_or_else(|_| json.to_string())
    );
}

/// Whether this process printed its `--json` document already (a failure then adds none: one
/// document on stdout).
static DOCUMENT_PRINTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Notes that the command's `--json` document is on stdout.
fn note_document_printed() {
    DOCUMENT_PRINTED.store(true, std::sync::atomic::Ordering::Relaxed);
}

pub fn document_printed() -> bool {
    DOCUMENT_PRINTED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Every string in a JSON document passed through [`redact_urls`].
pub fn redact_json(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(redact_urls(&s)),
        Value::Array(items) => Value::Array(items.into_iter().map(redact_json).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, redact_json(v))).collect()),
        other => other,
    }
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Finds the account's running engine, or takes the account's lock for this command (waiting
/// at most [`remote::ENGINE_WAIT`] for another command that holds it).
pub async fn route(ctx: &Ctx) -> Result<Route, Failure> {
    remote::route_within(&ctx.config.paths.data_dir, ctx.config.mode, remote::ENGINE_WAIT)
        .await
        .map_err(Failure::new)
}

/// Opens this mode's journal and restores the engine state from it (no network), for a
/// command that writes: a journal that cannot be written is refused, saying so.
pub fn open_core(config: &Config) -> Result<Core, Failure> {
    let path = config.journal_path();
    let journal =
        Journal::open_at(&config.journal_location(), config.mode).map_err(|e| journal_failure(&path, &e))?;
    restore(config, journal)
}

/// Like [`open_core`], for a command that only reads: a journal that cannot be written is
/// opened read-only, and the note returned says that nothing new will be recorded.
pub fn open_core_to_read(config: &Config) -> Result<(Core, Option<String>), Failure> {
    let path = config.journal_path();
    let (journal, read_only) = Journal::open_for_reading_at(&config.journal_location(), config.mode)
        .map_err(|e| journal_failure(&path, &e))?;
    let note = read_only.then(|| {
        format!(
            "the journal {} is read-only: shown as recorded; what the exchange reports now is not \
             recorded",
            path.display()
        )
    });
    Ok((restore(config, journal)?, note))
}

/// The journal opened read-only (queries only), for a command that reads beside a running
/// engine: the engine is the one process that writes it.
fn open_core_read_only(config: &Config) -> Result<Core, Failure> {
    let path = config.journal_path();
    let journal = Journal::open_read_only_at(&config.journal_location(), config.mode)
        .map_err(|e| journal_failure(&path, &e))?;
    restore(config, journal)
}

fn restore(config: &Config, journal: Journal) -> Result<Core, Failure> {
    let path = journal.path().to_path_buf();
    Core::restore(
        journal,
        config.mode,
        limits_from(config),
        TicketSource::Cli,
        now_ms(),
    )
    .map_err(|e| journal_failure(&path, &e))
}

/// The one line for a journal error: the error's own message, prefixed with the path when the
/// message does not already name it.
pub fn journal_failure(path: &std::path::Path, e: &JournalError) -> Failure {
    let text = e.to_string();
    let shown = path.display().to_string();
    if text.contains(&shown) {
        Failure::new(text)
    } else {
        Failure::new(format!("journal {shown}: {text}"))
    }
}

/// A connected session with the restored core.
#[derive(Debug)]
pub struct Ready {
    pub session: Session,
    pub core: Core,
    /// Things the preparation could not do (reported, not fatal).
    pub notes: Vec<String>,
    /// The account's lock, when this command is the account's engine for its duration.
    pub lock: Option<EngineLock>,
    /// An engine runs for the account: this command only reads (the journal opened read-only,
    /// nothing recorded, nothing sent: the engine places what a fill calls for).
    pub beside_engine: bool,
}

impl Ready {
    pub fn rest(&self) -> BinanceRest {
        self.session.rest.clone()
    }

    /// The command's engine over this session: sends, follows up, settles.
    pub fn oneshot(&mut self) -> OneShot<'_, BinanceRest> {
        OneShot {
            core: &mut self.core,
            broker: self.session.rest.clone(),
            notes: &mut self.notes,
            max_throttle_wait: self.session.rest.config().max_throttle_wait,
            say: &say_on_stderr,
        }
    }
}

/// Progress of a command's engine, on stderr as the commands say everything else.
fn say_on_stderr(line: &str) {
    eprintln!("crbot: {line}");
}

pub async fn connect(ctx: &Ctx) -> Result<Session, Failure> {
    let session = Session::connect(&ctx.config, ctx.unlock(), false)
        .await
        .map_err(|e| Failure::new(format!("cannot connect ({} mode): {e:#}", ctx.config.mode)))?;
    // A command that waits out a rate limit says so, instead of hanging silently.
    session
        .rest
        .set_wait_notice(std::sync::Arc::new(|text: &str| eprintln!("crbot: {text}")));
    Ok(session)
}

/// Connect, restore, and reconcile with the exchange. `extra` are the symbols the command
/// needs quotes for.
pub async fn prepare(ctx: &Ctx, extra: &[Symbol]) -> Result<Ready, Failure> {
    prepare_with(ctx, extra, false).await
}

/// [`prepare`] for a command that only reads: it also works on a journal that cannot be
/// written (opened read-only; a note says so).
pub async fn prepare_to_read(ctx: &Ctx, extra: &[Symbol]) -> Result<Ready, Failure> {
    prepare_with(ctx, extra, true).await
}

/// [`prepare_to_read`] for a command that found no engine on this machine and holds the
/// account's `lock`. On a PostgreSQL journal the account's engine may run on another machine:
/// the command then also takes the account's lease for its duration (returned: keep it until
/// done), or, when another engine holds it, only reads: the journal opened read-only (nothing
/// recorded, nothing sent, as beside an engine on this machine) and a note saying that this is
/// the journal's and the exchange's view, and who leads.
pub async fn prepare_routed(
    ctx: &Ctx,
    extra: &[Symbol],
    lock: Option<EngineLock>,
) -> Result<Routed, Failure> {
    match read_lease(&ctx.config).await {
        ReadLease::Own(lease) => {
            let fence = lease.as_ref().map(Lease::guard);
            let ready = prepare_locked_fenced(ctx, extra, true, lock, false, fence).await?;
            Ok(Routed {
                ready,
                lease,
                elsewhere: None,
            })
        }
        ReadLease::Elsewhere(line) => {
            let ready = prepare_locked(ctx, extra, true, lock, true).await?;
            Ok(Routed {
                ready,
                lease: None,
                elsewhere: Some(line),
            })
        }
    }
}

/// A read command prepared by [`prepare_routed`].
#[derive(Debug)]
pub struct Routed {
    pub ready: Ready,
    /// The account's lease on PostgreSQL while this command holds it (keep it until done).
    pub lease: Option<Lease>,
    /// Another engine leads the account: the line saying whose view this is (print it).
    pub elsewhere: Option<String>,
}

/// Whether a read command may write (reconcile into the journal) or only read.
enum ReadLease {
    /// SQLite (the `flock` is the lock), or this command holds the account's lease.
    Own(Option<Lease>),
    /// Another engine leads (or the lease could not be asked): read only; the sentence says so.
    Elsewhere(String),
}

/// The account's lease for a read command on a PostgreSQL journal (see [`prepare_routed`]).
async fn read_lease(config: &Config) -> ReadLease {
    let location = config.journal_location();
    let crate::journal::Location::Postgres(target) = &location else {
        return ReadLease::Own(None);
    };
    let mode = config.mode;
    let mut lease = Lease::campaign(target, mode, Candidate::this_process(None));
    let view = "this shows the journal's view, reconciled with the exchange in memory only: \
                nothing was written to the shared journal";
    match lease.first_answer(Duration::from_secs(15)).await {
        LeaseState::Leader { .. } => ReadLease::Own(Some(lease)),
        LeaseState::Standby { leader: Some(l), .. } => ReadLease::Elsewhere(format!(
            "the {mode} account's engine runs elsewhere ({}): {view}; its own figures are on its API{}",
            l.describe(),
            l.address
                .as_ref()
                .map(|a| format!(" ({a}, with CRBOT_API_URL)"))
                .unwrap_or_default()
        )),
        LeaseState::Standby { leader: None, note } => ReadLease::Elsewhere(format!(
            "the {mode} account's lease could not be asked ({}): {view}",
            note.as_deref().unwrap_or("another engine holds it")
        )),
        LeaseState::Lost { why } => ReadLease::Elsewhere(format!(
            "the {mode} account's lease was lost at once ({why}): {view}"
        )),
    }
}

async fn prepare_with(ctx: &Ctx, extra: &[Symbol], read_only_ok: bool) -> Result<Ready, Failure> {
    // A command that only reads runs beside a running engine (it never writes the journal the
    // engine owns); with none, it holds the account's lock while it runs. A command that
    // writes (`order`) took the lock, or went through the engine, before it got here.
    let (lock, beside_engine) = if read_only_ok {
        match route(ctx).await? {
            Route::Engine(_) => (None, true),
            Route::Alone(lock) => (lock, false),
        }
    } else {
        (None, false)
    };
    prepare_locked(ctx, extra, read_only_ok, lock, beside_engine).await
}

async fn prepare_locked(
    ctx: &Ctx,
    extra: &[Symbol],
    read_only_ok: bool,
    lock: Option<EngineLock>,
    beside_engine: bool,
) -> Result<Ready, Failure> {
    prepare_locked_fenced(ctx, extra, read_only_ok, lock, beside_engine, None).await
}

/// [`prepare_locked`], the journal's order writes fenced by `fence` (the account's lease this
/// command holds on PostgreSQL) before anything is reconciled or placed.
async fn prepare_locked_fenced(
    ctx: &Ctx,
    extra: &[Symbol],
    read_only_ok: bool,
    lock: Option<EngineLock>,
    beside_engine: bool,
    fence: Option<LeaseGuard>,
) -> Result<Ready, Failure> {
    let session = connect(ctx).await?;
    let opened = if beside_engine {
        open_core_read_only(&ctx.config).map(|c| (c, None))
    } else if read_only_ok {
        open_core_to_read(&ctx.config)
    } else {
        open_core(&ctx.config).map(|c| (c, None))
    };
    let (mut core, note) = match opened {
        Ok(c) => c,
        Err(e) => {
            session.close(&ctx.config).await;
            return Err(e);
        }
    };
    if let Some(guard) = fence {
        core.journal.set_fence(guard);
    }
    let mut ready = Ready {
        session,
        core,
        notes: note.into_iter().collect(),
        lock,
        beside_engine,
    };
    if let Err(e) = sync(&mut ready, extra).await {
        ready.session.close(&ctx.config).await;
        return Err(e);
    }
    Ok(ready)
}

/// The start-up reconciliation: clock, rules, balances, quotes, every locally unfinished
/// order queried by client id, fills since the last known trade, orders made elsewhere
/// adopted as external, then an equity sample.
pub async fn sync(ready: &mut Ready, extra: &[Symbol]) -> Result<(), Failure> {
    let rest = ready.rest();
    let core = &mut ready.core;
    match rest.sync_clock().await {
        Ok(s) => core.state.clock_offset_ms = Some(s.offset_ms),
        Err(e) => ready.notes.push(format!("clock sync failed: {e}")),
    }
    let info = rest
        .exchange_info(&[])
        .await
        .map_err(|e| Failure::new(format!("exchangeInfo: {e}")))?;
    for r in info.symbols {
        core.state.rules.insert(r.symbol.clone(), r);
    }
    core.replay_fills();
    let account = rest
        .account()
        .await
        .map_err(|e| Failure::new(format!("account: {e}")))?;
    let account_time_ms = account.update_time_ms;
    core.state.set_balances(account.balances, true);

    let (follow, fills_complete) = reconcile_orders(core, &rest, &mut ready.notes).await;

    // Quotes: the command's symbols, every position and open order, every asset held.
    let mut symbols: BTreeSet<Symbol> = extra.iter().cloned().collect();
    symbols.extend(core.state.positions.open().map(|p| p.symbol.clone()));
    symbols.extend(core.state.symbols_with_open_orders());
    for asset in core.state.balances.keys() {
        if let Ok(s) = Symbol::new(&format!("{asset}USDT"))
            && core.state.rules.contains_key(&s)
        {
            symbols.insert(s);
        }
    }
    fetch_quotes(core, &rest, &symbols, &mut ready.notes).await;
    // Balance changes the journaled fills do not explain are capital flows (deposits,
    // withdrawals): journaled and kept out of today's P&L before the sample below sees them.
    for f in core.reconcile_capital_flows(account_time_ms, fills_complete, now_ms()) {
        let line = format!(
            "capital flow detected: {} {} (kept out of today's P&L and the drawdown)",
            f.delta.normalize(),
            f.asset
        );
        eprintln!("crbot: {line}");
        ready.notes.push(line);
    }
    core.sample_equity(now_ms(), true);
    // An entry that filled while no crbot process was running gets its protective OCO now
    // (beside a running engine, the engine places it).
    if !follow.is_empty() && !ready.beside_engine {
        let mut log = Vec::new();
        let result = ready.oneshot().follow_up(follow, &mut log).await;
        for l in &log {
            eprintln!("crbot: {l}");
        }
        ready.notes.extend(log);
        if let Err(e) = result {
            ready.notes.push(e);
        }
        // The protective orders just placed lock the position's balance: read the balances
        // again, or the command would decide (a sell, a flatten) on a free balance that is
        // no longer free.
        refresh_balances(ready).await;
    }
    Ok(())
}

/// Re-reads the exchange's balances after crbot itself placed or cancelled something. The
/// capital-flow checkpoint stays where the start-up read put it: an order placed here may fill
/// before its fill is journaled, and that is no flow.
pub async fn refresh_balances(ready: &mut Ready) {
    match ready.rest().account().await {
        Ok(a) => ready.core.state.set_balances(a.balances, true),
        Err(e) => ready
            .notes
            .push(format!("balances not re-read after start-up orders: {e}")),
    }
}

pub async fn fetch_quotes(
    core: &mut Core,
    rest: &BinanceRest,
    symbols: &BTreeSet<Symbol>,
    notes: &mut Vec<String>,
) {
    let asks = symbols
        .iter()
        .filter(|s| core.state.rules.contains_key(*s))
        .map(|s| async move { (s.clone(), rest.book_ticker(s).await) });
    let answers = futures_util::future::join_all(asks).await;
    let now = now_ms();
    for (s, answer) in answers {
        match answer {
            Ok(b) => core.state.on_quote(
                s,
                Quote {
                    bid: b.bid,
                    ask: b.ask,
                    time_ms: now,
                },
            ),
            Err(e) => notes.push(format!("{s}: no quote ({e})")),
        }
    }
}

/// Brings the journal's orders and fills up to the exchange's truth. Order of operations:
/// the exchange's open orders; each locally open order it does not list, queried by client
/// id (that also learns its exchange id); fills since the last known trade, attributed by
/// exchange order id; only then the statuses (a filled entry's protection sees its fills).
/// Returns what the statuses call for (protective OCOs to place) and whether every fill since
/// the last known trade could be read (a capital-flow check needs them all).
async fn reconcile_orders(
    core: &mut Core,
    rest: &BinanceRest,
    notes: &mut Vec<String>,
) -> (Vec<FollowUp>, bool) {
    let mut reports: Vec<OrderReport> = match rest.open_orders(None).await {
        Ok(list) => list,
        Err(e) => {
            notes.push(format!("open orders not fetched ({e})"));
            Vec::new()
        }
    };
    let listed: BTreeSet<String> = reports.iter().map(|r| r.order_client_id().to_string()).collect();
    for o in core.state.open_orders() {
        let cid = o.client_order_id.clone();
        if listed.contains(cid.as_str()) {
            continue;
        }
        match reconcile::resolve_unknown(rest, &o.symbol, cid.as_str(), &startup_resolve()).await {
            Resolution::Found(report) => reports.push(report),
            Resolution::NotFound => {
                if matches!(
                    o.state,
                    LocalOrderState::Sending | LocalOrderState::Unknown | LocalOrderState::Pending
                ) {
                    core.mark_not_sent(&cid, "not found on the exchange at start-up", now_ms());
                } else {
                    notes.push(format!(
                        "order {cid} ({}) is open in the journal but the exchange does not know it",
                        o.symbol
                    ));
                }
            }
            Resolution::StillUnknown { reason } => {
                notes.push(format!("order {cid} ({}): still unknown ({reason})", o.symbol));
            }
        }
    }
    let learned: BTreeMap<u64, ClientOrderId> = reports
        .iter()
        .filter_map(|r| Some((r.order_id, ClientOrderId::new(r.order_client_id()).ok()?)))
        .collect();
    let mut symbols: BTreeSet<Symbol> = core
        .state
        .orders
        .values()
        .filter(|o| o.state != LocalOrderState::NotSent)
        .map(|o| o.symbol.clone())
        .collect();
    symbols.extend(reports.iter().map(|r| r.symbol.clone()));
    let mut fills_complete = true;
    for s in &symbols {
        if let Err(e) = pull_fills_with(core, rest, s, &learned, &reports).await {
            notes.push(format!("{s}: trades not fetched ({e})"));
            fills_complete = false;
        }
    }
    let mut follow = Vec::new();
    for r in &reports {
        follow.extend(core.on_exchange_order(r, now_ms()));
    }
    (follow, fills_complete)
}
