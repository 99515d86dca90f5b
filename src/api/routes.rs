//! The route handlers: read routes answer from the latest snapshot; trade routes send a
//! command to the engine and answer with the state it then publishes.
//!
//! Owns: what each route checks before a command leaves (an unknown order is 404, a protective
//! leg needs `?unprotect=true`, a re-arm needs the typed `RESUME`) and its status codes. Must
//! not: change state itself or talk to the exchange: the engine does both, as for the screen.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::auth::{self, ReadAccess, TradeAccess};
use super::error::{ApiError, Body, BodyOrDefault, PathOf, QueryOf};
use super::{AppState, docs, metrics};
use crate::domain::ClientOrderId;
use crate::engine::machine::Reply;
use crate::engine::snapshot::{Command, KillSource, Snapshot, TradingState};
use crate::secret::SecretString;

/// How long a trade route waits to see its command's effect in a snapshot before answering
/// 202 with whatever state there is (the kill switch's halt is written before anything else,
/// so it shows within one engine step).
const SETTLE: Duration = Duration::from_secs(5);
/// A re-arm in a mode with keys checks the vault passphrase first (Argon2: slow on purpose).
const REARM_SETTLE: Duration = Duration::from_secs(15);
/// How long the flatten of `POST /api/kill` waits for the cancel sweep to finish.
const SWEEP_WAIT: Duration = Duration::from_secs(120);

fn latest(state: &AppState) -> Snapshot {
    state.snapshots.borrow().clone()
}

async fn send(state: &AppState, command: Command) -> Result<(), ApiError> {
    state
        .commands
        .send_timeout(command, Duration::from_secs(2))
        .await
        .map_err(|_| ApiError::unavailable("the engine is not taking commands (stopping or busy)"))
}

/// Waits until `cond` holds for a published snapshot, at most `within`.
async fn settle(
    mut rx: watch::Receiver<Snapshot>,
    within: Duration,
    cond: impl Fn(&Snapshot) -> bool,
) -> bool {
    matches!(
        tokio::time::timeout(within, rx.wait_for(|s| cond(s))).await,
        Ok(Ok(_))
    )
}

pub async fn health(State(state): State<AppState>) -> Json<Value> {
    let s = state.snapshots.borrow();
    Json(json!({
        "status": docs::health_status(&s),
        "role": "leader",
        "mode": s.mode.to_string(),
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

pub async fn positions(_: ReadAccess, State(state): State<AppState>) -> Json<Value> {
    Json(docs::positions(&state.snapshots.borrow()))
}

pub async fn orders(_: ReadAccess, State(state): State<AppState>) -> Json<Value> {
    Json(docs::orders(&state.snapshots.borrow()))
}

pub async fn pnl(_: ReadAccess, State(state): State<AppState>) -> Json<Value> {
    Json(docs::pnl(&state.snapshots.borrow()))
}

pub async fn risk(_: ReadAccess, State(state): State<AppState>) -> Json<Value> {
    Json(docs::risk(&state.snapshots.borrow()))
}

pub async fn equity(_: ReadAccess, State(state): State<AppState>) -> Json<Value> {
    Json(docs::equity(&state.snapshots.borrow()))
}

pub async fn balance(_: ReadAccess, State(state): State<AppState>) -> Json<Value> {
    Json(docs::balance(&state.snapshots.borrow()))
}

pub async fn ping(_: ReadAccess, State(state): State<AppState>) -> Json<Value> {
    Json(docs::ping(&state.snapshots.borrow()))
}

pub async fn metrics(_: ReadAccess, State(state): State<AppState>) -> impl IntoResponse {
    let text = metrics::render(&state.snapshots.borrow());
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KillBody {
    #[serde(default)]
    flatten: bool,
    /// Answer with the kill's whole outcome once it is done (the sweep, the backup after it,
    /// the flatten's sells) instead of 202 at once: `crbot kill` through the engine.
    #[serde(default)]
    wait: bool,
}

/// The kill switch: halt and cancel everything; with `flatten`, sell all of crbot's positions
/// once the cancel sweep has finished (as `crbot kill --flatten` does). No body is
/// `{"flatten": false}`.
pub async fn kill(
    access: TradeAccess,
    State(state): State<AppState>,
    BodyOrDefault(body): BodyOrDefault<KillBody>,
) -> Result<impl IntoResponse, ApiError> {
    // Over the unix socket it is `crbot kill` in another shell; over TCP, a client of the API.
    let source = if access.0.sub == auth::SOCKET_SUBJECT {
        KillSource::Shell
    } else {
        KillSource::Api
    };
    // The engine stamps the kill with its clock, read after this one: a kill progress from
    // before (an earlier kill's finished sweep) never passes for this one's.
    if body.wait {
        return kill_and_wait(&state, source, body.flatten).await;
    }
    let sent_ms = chrono::Utc::now().timestamp_millis();
    let this_kill = move |s: &Snapshot| s.kill.as_ref().is_some_and(|k| k.started_ms >= sent_ms);
    send(&state, Command::KillFrom(source)).await?;
    settle(state.snapshots.clone(), SETTLE, move |s| {
        s.header.trading.is_halted() && this_kill(s)
    })
    .await;
    if body.flatten {
        let rx = state.snapshots.clone();
        let commands = state.commands.clone();
        tokio::spawn(async move {
            let swept = settle(rx, SWEEP_WAIT, move |s| {
                this_kill(s) && s.kill.as_ref().is_some_and(|k| k.done)
            })
            .await;
            if !swept {
                tracing::warn!("kill through the API: the cancel sweep did not finish; flatten not sent");
                return;
            }
            if commands.send(Command::Flatten { percent: 100 }).await.is_err() {
                tracing::warn!("kill through the API: the engine stopped before the flatten");
            }
        });
    }
    let s = latest(&state);
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "trading_state": docs::state_text(&s.header.trading),
            "trading": docs::trading(&s.header.trading),
            "flatten": body.flatten,
            "kill": s.kill.as_ref().map(docs::kill),
        })),
    ))
}

/// `POST /api/kill` with `"wait": true`: the kill with a request id, answered 200
/// `{"outcome": KillOutcome}` once the engine has done all of it.
async fn kill_and_wait(
    state: &AppState,
    source: KillSource,
    flatten: bool,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (request, answer) = state.replies.register();
    let command = Command::KillReport {
        request,
        source,
        flatten,
    };
    if let Err(e) = send(state, command).await {
        state.replies.forget(request);
        return Err(e);
    }
    match tokio::time::timeout(SWEEP_WAIT, answer).await {
        Ok(Ok(Reply::Kill(outcome))) => Ok((StatusCode::OK, Json(json!({"outcome": *outcome})))),
        _ => Err(ApiError::unavailable(
            "the engine took the kill but did not report it in time; see GET /api/risk",
        )),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResumeBody {
    confirm: Option<String>,
    /// The vault passphrase a re-arm needs in a mode with keys, from `crbot resume` in another
    /// shell (unix socket only: an engine with no passphrase of its own, the console's, has
    /// nothing else to check).
    #[serde(default, deserialize_with = "secret")]
    passphrase: Option<SecretString>,
}

/// A string field kept as a [`SecretString`] from the moment it is read.
fn secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(SecretString::from))
}

/// Re-arm, confirmed by typing `RESUME`; 200 when the engine re-armed, 202 when it has not
/// (yet): a refused re-arm says why in the engine's log.
pub async fn resume(
    access: TradeAccess,
    State(state): State<AppState>,
    Body(body): Body<ResumeBody>,
) -> Result<impl IntoResponse, ApiError> {
    if body.passphrase.is_some() && access.0.sub != auth::SOCKET_SUBJECT {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "PASSPHRASE_NOT_ALLOWED",
            "a passphrase is taken only over the engine's unix socket; the engine re-arms with its own",
        ));
    }
    if body.confirm.as_deref() != Some("RESUME") {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "CONFIRMATION_REQUIRED",
            r#"re-arming needs the body {"confirm": "RESUME"}"#,
        ));
    }
    if latest(&state).header.trading != TradingState::Active {
        let passphrase = body.passphrase.or_else(|| {
            state
                .rearm_passphrase
                .as_deref()
                .map(crate::secret::SealedSecret::open_string)
        });
        send(&state, Command::Rearm { passphrase }).await?;
        settle(state.snapshots.clone(), REARM_SETTLE, |s| {
            s.header.trading == TradingState::Active
        })
        .await;
    }
    let s = latest(&state);
    let status = if s.header.trading == TradingState::Active {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((
        status,
        Json(json!({
            "trading_state": docs::state_text(&s.header.trading),
            "trading": docs::trading(&s.header.trading),
        })),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelQuery {
    #[serde(default)]
    unprotect: bool,
}

/// Cancels one open order. A protective leg (stop-loss or take-profit) cancels its whole OCO
/// and leaves the position unprotected, so it needs `?unprotect=true`.
pub async fn cancel(
    _: TradeAccess,
    State(state): State<AppState>,
    PathOf(client_order_id): PathOf<String>,
    QueryOf(query): QueryOf<CancelQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let unknown = || ApiError::not_found(format!("no open order {client_order_id}"));
    let cid = ClientOrderId::new(&client_order_id).map_err(|_| unknown())?;
    let order = latest(&state)
        .orders
        .into_iter()
        .find(|o| o.client_order_id == cid)
        .ok_or_else(unknown)?;
    if order.purpose.is_protective() && !query.unprotect {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "PROTECTIVE_ORDER",
            format!(
                "{cid} is a {} leg: cancelling it cancels the OCO and leaves the {} position unprotected; add ?unprotect=true",
                order.purpose.as_code(),
                order.symbol
            ),
        ));
    }
    send(&state, Command::CancelOrder(cid.clone())).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(
            json!({"client_order_id": cid.as_str(), "status": "CANCEL_REQUESTED", "order": docs::order(&order)}),
        ),
    ))
}
