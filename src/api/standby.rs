//! The control API of a standby: a `crbot serve` waiting for the account's lease on PostgreSQL
//! while another engine leads. And the switch that lets one listener serve the standby's routes,
//! then the leader's, without closing.
//!
//! Owns: what a standby answers. `GET /api/health` answers `"role": "standby"` with the leader
//! (holder, address, epoch, since) when known; `POST /api/kill` (trade token) writes the halt to
//! the shared journal, where the leader's engine picks it up (it reads the journal's trading
//! state every tick, and cancels every open order), and answers 202 saying so: a kill is never
//! refused; `GET /api/stream` (read token) serves the standby's own snapshot
//! ([`StandbyFeed`]: a STANDBY banner naming the leader, the trading state read from the shared
//! journal as soon as a change is announced, and no account figure, since a standby knows none),
//! takes a screen's kill key as `POST /api/kill` does and refuses every other command with the
//! `STANDBY` message; every other route answers 503 `STANDBY` naming the leader's address when
//! known. Must not: send anything to the exchange (a standby has no session), write anything but
//! the kill's halt, or show a figure of the account it has not read (unknown is not zero).

use std::sync::{Arc, RwLock};

use axum::Json;
use axum::Router;
use axum::extract::{FromRef, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::sync::watch;
use tower::ServiceExt as _;

use axum::extract::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::auth::{ReadAccess, TokenKeys, TradeAccess};
use super::error::ApiError;
use super::stream::{self, Access, Ending, Refusal};
use crate::domain::Mode;
use crate::engine::snapshot::{Command, Snapshot, StandbyBanner, StreamHealth, StreamStatus, TradingState};
use crate::engine::state::EngineState;
use crate::journal::lease::Leader;
use crate::journal::notify;
use crate::journal::{Journal, KillTrigger, Location, TicketSource, TradingStateCode, TradingStateRecord};

/// What a standby knows: who leads (when its row could be read) and, after this process lost
/// its own lease, why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StandbyView {
    pub leader: Option<Leader>,
    pub lost: Option<String>,
}

impl StandbyView {
    /// The sentence a refused request carries.
    pub fn message(&self, mode: Mode) -> String {
        let who = match &self.leader {
            Some(l) => match &l.address {
                Some(a) => format!("the leader is {} at {a}", l.holder),
                None => format!(
                    "the leader is {}, its address unknown (it advertises none: CRBOT_ADVERTISE_URL)",
                    l.holder
                ),
            },
            None => "the leader's address is not known".into(),
        };
        match &self.lost {
            Some(why) => format!(
                "this crbot serve lost the lease on the {mode} account's PostgreSQL journal ({why}) and is a standby: it trades no more; {who}"
            ),
            None => format!("this crbot serve is a standby for the {mode} account: {who}"),
        }
    }
}

#[derive(Debug, Clone)]
struct StandbyState {
    keys: Arc<TokenKeys>,
    view: watch::Receiver<StandbyView>,
    mode: Mode,
    journal: Location,
    snapshots: watch::Receiver<Snapshot>,
}

impl FromRef<StandbyState> for Arc<TokenKeys> {
    fn from_ref(state: &StandbyState) -> Self {
        state.keys.clone()
    }
}

/// The standby's routes (no layers: see [`super::standby_router`]).
pub(super) fn routes(keys: TokenKeys, feed: &StandbyFeed, mode: Mode, journal: Location) -> Router {
    let state = StandbyState {
        keys: Arc::new(keys),
        view: feed.view.clone(),
        mode,
        journal,
        snapshots: feed.snapshots.clone(),
    };
    Router::new()
        .route("/api/health", get(health))
        .route("/api/kill", post(kill))
        .route("/api/stream", get(stream_route))
        .fallback(refused)
        .with_state(state)
}

async fn health(State(state): State<StandbyState>) -> Json<serde_json::Value> {
    let view = state.view.borrow().clone();
    Json(json!({
        "status": "ok",
        "role": "standby",
        "mode": state.mode.to_string(),
        "version": env!("CARGO_PKG_VERSION"),
        "leader": view.leader,
        "lease_lost": view.lost,
    }))
}

async fn refused(State(state): State<StandbyState>) -> ApiError {
    let view = state.view.borrow().clone();
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "STANDBY",
        view.message(state.mode),
    )
}

/// A kill on a standby: the halt goes into the shared journal, where the leader's engine hears
/// it (NOTIFY, or its next read of the trading state), stops trading and cancels every open
/// order; 202, never 503.
async fn kill(_: TradeAccess, State(state): State<StandbyState>) -> Result<Response, ApiError> {
    let view = state.view.borrow().clone();
    if let Err(e) = write_halt(
        state.journal.clone(),
        state.mode,
        "kill switch asked of a standby's API",
    )
    .await
    {
        return Err(ApiError::unavailable(format!(
            "the halt could not be written to the shared journal ({e}); {}",
            view.message(state.mode)
        )));
    }
    let leader = view.leader.as_ref().and_then(|l| l.address.clone());
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "role": "standby",
            "trading_state": "HALTED",
            "leader": leader,
            "message": format!(
                "HALTED in the shared journal: the leading engine stops trading and cancels every open order \
                 as soon as it hears it (within a second) ({})",
                view.message(state.mode)
            ),
        })),
    )
        .into_response())
}

/// Writes HALTED to the shared journal (its own connection, off the async threads); the
/// journal announces it (NOTIFY) on commit.
async fn write_halt(location: Location, mode: Mode, reason: &'static str) -> Result<(), String> {
    let written = tokio::task::spawn_blocking(move || {
        let journal = Journal::open_at(&location, mode)?;
        journal.record_trading_state(&TradingStateRecord {
            time_ms: chrono::Utc::now().timestamp_millis(),
            state: TradingStateCode::Halted,
            reason: reason.into(),
            trigger: KillTrigger::Api.as_code().into(),
            actor: TicketSource::Engine.as_code().into(),
        })
    })
    .await;
    match written {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the write did not finish".into()),
    }
}

/// How a standby's stream ends: this process leads now (or stops); a screen that reconnects
/// reaches what it serves then.
const STANDBY_ENDED: Ending = Ending {
    code: "STANDBY_ENDED",
    message: "this crbot serve is no longer a standby (it leads the account now, or stops): reconnecting",
};

/// `GET /api/stream` on a standby: its own snapshot; a screen's kill key halts the leader
/// through the shared journal; every other command is refused with the `STANDBY` message.
async fn stream_route(
    access: ReadAccess,
    State(state): State<StandbyState>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if state.snapshots.has_changed().is_err() {
        // The standby is over (it leads now, or stops): a screen retries and finds the leader.
        return refused(State(state)).await.into_response();
    }
    let access = Access::from(&access);
    let snapshots = state.snapshots.clone();
    stream::accept(upgrade, move |socket| {
        stream::session(socket, snapshots, access, STANDBY_ENDED, move |command| {
            let state = state.clone();
            async move { standby_command(command, &state).await }
        })
    })
}

/// A screen's command on a standby: the kill is written to the shared journal (never refused
/// for being on a standby); anything else is the leader's to do.
async fn standby_command(command: Command, state: &StandbyState) -> Result<(), Refusal> {
    let view = state.view.borrow().clone();
    tracing::info!(
        command = stream::command_name(&command),
        "command from a standby's stream client"
    );
    match command {
        Command::Kill => write_halt(
            state.journal.clone(),
            state.mode,
            "kill key on a screen attached to a standby",
        )
        .await
        .map_err(|e| {
            (
                "STANDBY",
                format!(
                    "the halt could not be written to the shared journal ({e}); {}",
                    view.message(state.mode)
                ),
            )
        }),
        _ => Err(("STANDBY", view.message(state.mode))),
    }
}

/// How often the standby reads the journal's trading state when no notice came (as the
/// engine's tick does).
const POLL_EVERY: std::time::Duration = std::time::Duration::from_millis(250);
/// A snapshot is published at least this often (the screen's clock), and on every change.
const REFRESH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The standby's snapshot for the screens attached to it, kept up to date by a task: the leader
/// from the campaign's view, the trading state from the shared journal, read when a change is
/// announced (`NOTIFY`, [`notify::listen`]) and every [`POLL_EVERY`] besides. Stopped (and its
/// sessions ended) by [`StandbyFeed::stop`] or when dropped.
#[derive(Debug)]
pub struct StandbyFeed {
    view: watch::Receiver<StandbyView>,
    snapshots: watch::Receiver<Snapshot>,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for StandbyFeed {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl StandbyFeed {
    /// Starts the feed of `mode`'s standby on `location`, following `view`; `limits` are the
    /// configured risk limits the screen's limits panel shows (the leader's own may have been
    /// changed since; the figures against them are unknown here).
    pub fn start(
        view: watch::Receiver<StandbyView>,
        location: Location,
        mode: Mode,
        limits: crate::risk::Limits,
    ) -> StandbyFeed {
        let first = standby_snapshot(mode, &limits, &view.borrow(), None, now_ms());
        let (tx, snapshots) = watch::channel(first);
        let stop = CancellationToken::new();
        let task = tokio::spawn(feed(tx, view.clone(), location, mode, limits, stop.clone()));
        StandbyFeed {
            view,
            snapshots,
            stop,
            task: Some(task),
        }
    }

    /// The feed's snapshots.
    pub fn snapshots(&self) -> watch::Receiver<Snapshot> {
        self.snapshots.clone()
    }

    /// Ends the feed: each attached screen gets the stream's ending and reconnects.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The feed's task: reads, then publishes, on each notice, poll and change of the leader.
async fn feed(
    tx: watch::Sender<Snapshot>,
    mut view: watch::Receiver<StandbyView>,
    location: Location,
    mode: Mode,
    limits: crate::risk::Limits,
    stop: CancellationToken,
) {
    let (heard, mut notices) = mpsc::unbounded_channel();
    let _listener = match notify::listen(&location, mode, move |n| {
        let _ = heard.send(n);
    }) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::warn!(
                "standby: trading-state changes are not announced to it ({e}); it polls the journal"
            );
            None
        }
    };
    let mut journal: Option<Journal> = None;
    let mut poll = tokio::time::interval(POLL_EVERY);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sent_at = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            changed = view.changed() => if changed.is_err() { break },
            Some(_) = notices.recv() => {}
            _ = poll.tick() => {}
        }
        let (back, trading) = read_trading(journal.take(), location.clone(), mode).await;
        journal = back;
        let next = standby_snapshot(mode, &limits, &view.borrow_and_update(), trading, now_ms());
        let due = sent_at.elapsed() >= REFRESH_EVERY;
        tx.send_if_modified(|now| {
            let changed = due || !same_but_clock(now, &next);
            if changed {
                *now = next;
            }
            changed
        });
        if due {
            sent_at = tokio::time::Instant::now();
        }
    }
}

fn same_but_clock(a: &Snapshot, b: &Snapshot) -> bool {
    a.header == b.header && a.standby == b.standby
}

/// The journal's trading state (`None`: not readable now, or never written), on a read-only
/// connection kept between reads (dropped after a failure, opened again at the next read).
async fn read_trading(
    journal: Option<Journal>,
    location: Location,
    mode: Mode,
) -> (Option<Journal>, Option<TradingState>) {
    let read = tokio::task::spawn_blocking(move || {
        let journal = match journal {
            Some(j) => j,
            None => match Journal::open_read_only_at(&location, mode) {
                Ok(j) => j,
                Err(e) => {
                    tracing::debug!("standby: the journal cannot be read yet: {e}");
                    return (None, None);
                }
            },
        };
        match journal.latest_trading_state() {
            Ok(Some(stored)) => {
                let state = view_state(&crate::engine::core::state_from_record(&stored.record));
                (Some(journal), Some(state))
            }
            Ok(None) => (Some(journal), None),
            Err(e) => {
                tracing::warn!("standby: the journal's trading state could not be read: {e}");
                (None, None)
            }
        }
    })
    .await;
    read.unwrap_or((None, None))
}

/// The screen's form of a trading state.
fn view_state(state: &crate::risk::TradingState) -> TradingState {
    match state {
        crate::risk::TradingState::Active => TradingState::Active,
        crate::risk::TradingState::Reducing {
            reason,
            since_ms,
            until_ms,
            ..
        } => TradingState::Reducing {
            reason: reason.clone(),
            since_ms: *since_ms,
            until_ms: *until_ms,
        },
        crate::risk::TradingState::Halted { reason, since_ms } => TradingState::Halted {
            reason: reason.clone(),
            since_ms: *since_ms,
        },
    }
}

/// What a standby shows: an empty account (no balances, positions, orders, equity or P&L: the
/// standby knows none, and the screen shows them unknown), its streams down (it has none), the
/// trading state when read, and the banner naming the leader.
pub fn standby_snapshot(
    mode: Mode,
    limits: &crate::risk::Limits,
    view: &StandbyView,
    trading: Option<TradingState>,
    now_ms: i64,
) -> Snapshot {
    let mut s =
        EngineState::new(mode, limits.clone(), crate::risk::TradingState::Active, now_ms).snapshot(now_ms);
    let down = StreamHealth {
        status: StreamStatus::Down,
        latency_ms: None,
    };
    s.header.market_stream = down;
    s.header.user_stream = down;
    s.header.warnings.clear();
    s.standby = Some(StandbyBanner {
        leader: view.leader.as_ref().map(|l| l.holder.clone()),
        leader_address: view.leader.as_ref().and_then(|l| l.address.clone()),
        leader_since_ms: view.leader.as_ref().map(|l| l.since_ms),
        trading_known: trading.is_some(),
        lost: view.lost.clone(),
    });
    // Not read: the screen draws it as unknown (`trading_known`); a client that does not know
    // the banner sees the safe placeholder, HALTED, never ACTIVE.
    s.header.trading = trading.unwrap_or(TradingState::Halted {
        reason: "trading state not read from the journal".into(),
        since_ms: now_ms,
    });
    s
}

/// One listener, the router of the moment: a standby's, then the leader's once it leads (and a
/// standby's again should it lose the lease).
#[derive(Debug, Clone)]
pub struct RouterSwitch {
    current: Arc<RwLock<Router>>,
}

impl RouterSwitch {
    /// Starts with `first`.
    pub fn new(first: Router) -> RouterSwitch {
        RouterSwitch {
            current: Arc::new(RwLock::new(first)),
        }
    }

    /// Requests from now on go to `next` (those in flight finish on the one they started on).
    pub fn set(&self, next: Router) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = next;
    }

    /// The router to serve: each request goes to the router of the moment.
    pub fn router(&self) -> Router {
        let current = self.current.clone();
        Router::new().fallback_service(tower::service_fn(move |req: Request| {
            let router = current.read().unwrap_or_else(|p| p.into_inner()).clone();
            async move { router.oneshot(req).await }
        }))
    }
}
