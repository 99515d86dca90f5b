//! The control API of a standby: a `crbot serve` waiting for the account's lease on PostgreSQL
//! while another engine leads. And the switch that lets one listener serve the standby's routes,
//! then the leader's, without closing.
//!
//! Owns: what a standby answers. `GET /api/health` answers `"role": "standby"` with the leader
//! (holder, address, epoch, since) when known; `POST /api/kill` (trade token) writes the halt to
//! the shared journal, where the leader's engine picks it up (it reads the journal's trading
//! state every tick, and cancels every open order), and answers 202 saying so: a kill is never refused; every other route
//! answers 503 `STANDBY` naming the leader's address when known. Must not: send anything to the
//! exchange (a standby has no session), or write anything but the kill's halt.

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

use super::auth::{TokenKeys, TradeAccess};
use super::error::ApiError;
use crate::domain::Mode;
use crate::journal::lease::Leader;
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
                None => format!("the leader is {}", l.holder),
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
}

impl FromRef<StandbyState> for Arc<TokenKeys> {
    fn from_ref(state: &StandbyState) -> Self {
        state.keys.clone()
    }
}

/// The standby's routes (no layers: see [`super::standby_router`]).
pub(super) fn routes(
    keys: TokenKeys,
    view: watch::Receiver<StandbyView>,
    mode: Mode,
    journal: Location,
) -> Router {
    let state = StandbyState {
        keys: Arc::new(keys),
        view,
        mode,
        journal,
    };
    Router::new()
        .route("/api/health", get(health))
        .route("/api/kill", post(kill))
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
    let (location, mode) = (state.journal.clone(), state.mode);
    let written = tokio::task::spawn_blocking(move || {
        let journal = Journal::open_at(&location, mode)?;
        journal.record_trading_state(&TradingStateRecord {
            time_ms: chrono::Utc::now().timestamp_millis(),
            state: TradingStateCode::Halted,
            reason: "kill switch asked of a standby's API".into(),
            trigger: KillTrigger::Api.as_code().into(),
            actor: TicketSource::Engine.as_code().into(),
        })
    })
    .await;
    match written {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            return Err(ApiError::unavailable(format!(
                "the halt could not be written to the shared journal ({e}); {}",
                view.message(state.mode)
            )));
        }
        Err(_) => return Err(ApiError::unavailable("the halt could not be written")),
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
