//! `POST /api/orders`: a ticket through the engine's live risk state, and the documents an
//! order's answer is made of (shared with `crbot order`, so that a command run against the
//! engine prints what a command run alone prints).
//!
//! Owns: the body's checks (400), the mapping of the engine's [`Reply`] to statuses
//! (201 sent and accepted, 202 outcome unknown, 200 dry run, 422 risk rejection, 502 refused by
//! the exchange, 503 nothing decided) and the order and dry-run documents. Must not: decide,
//! send or resend anything: the engine does, once, as for a screen ticket.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::{ReadAccess, TradeAccess};
use super::error::{ApiError, Body, QueryOf};
use crate::domain::{Order, Price, Qty, Side, Symbol, Ticket, TicketKind};
use crate::engine::machine::{Placement, Reply};
use crate::engine::snapshot::{Command, RuleLine};
use crate::risk::{ApprovedOrder, Denial};

/// How long a client waits for the engine's answer: the risk decision is immediate, the
/// placement waits on the exchange (the client's own timeouts and rate-limit waits bound it).
pub const ORDER_WAIT: Duration = Duration::from_secs(60);

/// The error code of a ticket that came before the engine's start-up reconciliation finished
/// (503; nothing decided, so asking again is safe).
pub const ENGINE_STARTING: &str = "ENGINE_STARTING";

/// The body of `POST /api/orders`. Decimals as strings (numbers are taken too).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderBody {
    symbol: String,
    side: String,
    quantity: Decimalish,
    limit_price: Option<Decimalish>,
    stop_loss: Option<Decimalish>,
    take_profit: Option<Decimalish>,
    #[serde(default)]
    dry_run: bool,
}

/// A decimal given as a JSON string or number, kept as its text.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Decimalish {
    Text(String),
    Number(serde_json::Number),
}

impl Decimalish {
    fn text(&self) -> String {
        match self {
            Decimalish::Text(t) => t.trim().to_string(),
            Decimalish::Number(n) => n.to_string(),
        }
    }
}

fn field<T: std::str::FromStr>(name: &str, v: &Decimalish) -> Result<T, ApiError> {
    let text = v.text();
    text.parse::<T>()
        .map_err(|_| ApiError::bad_request(format!("{name} `{text}` is not a valid positive number")))
}

/// The ticket a body describes, or why it is not one (400).
pub fn ticket_of(body: &OrderBody) -> Result<Ticket, ApiError> {
    let symbol = Symbol::new(&body.symbol.trim().to_uppercase())
        .map_err(|e| ApiError::bad_request(format!("symbol `{}`: {e}", body.symbol)))?;
    let side = match body.side.trim().to_ascii_uppercase().as_str() {
        "BUY" => Side::Buy,
        "SELL" => Side::Sell,
        _ => return Err(ApiError::bad_request("side must be BUY or SELL")),
    };
    let qty: Qty = field("quantity", &body.quantity)?;
    let kind = match &body.limit_price {
        Some(p) => TicketKind::Limit {
            price: field::<Price>("limit_price", p)?,
        },
        None => TicketKind::Market,
    };
    let stop_loss = body
        .stop_loss
        .as_ref()
        .map(|p| field("stop_loss", p))
        .transpose()?;
    let take_profit = body
        .take_profit
        .as_ref()
        .map(|p| field("take_profit", p))
        .transpose()?;
    Ok(Ticket {
        symbol,
        side,
        kind,
        qty,
        stop_loss,
        take_profit,
    })
}

/// What a request gets when the engine does not take its command.
const BUSY: &str = "the engine is not taking commands (stopping or busy)";

/// Sends a command that carries a request id and returns where its reply will come. A queue the
/// engine does not take from within 2 s is 503 `busy` (and the waiter is forgotten).
async fn ask(
    state: &AppState,
    command: impl FnOnce(crate::engine::snapshot::RequestId) -> Command,
    busy: &'static str,
) -> Result<tokio::sync::oneshot::Receiver<Reply>, ApiError> {
    let (request, answer) = state.replies.register();
    if state
        .commands
        .send_timeout(command(request), Duration::from_secs(2))
        .await
        .is_err()
    {
        state.replies.forget(request);
        return Err(ApiError::unavailable(busy));
    }
    Ok(answer)
}

/// `POST /api/orders`.
pub(crate) async fn place(
    _: TradeAccess,
    State(state): State<AppState>,
    Body(body): Body<OrderBody>,
) -> Result<impl IntoResponse, ApiError> {
    let ticket = ticket_of(&body)?;
    let answer = ask(
        &state,
        |request| Command::Order {
            request,
            ticket,
            dry_run: body.dry_run,
        },
        "the engine is not taking commands (stopping or busy); nothing was sent",
    )
    .await?;
    let reply = match tokio::time::timeout(ORDER_WAIT, answer).await {
        Ok(Ok(reply)) => reply,
        _ => {
            return Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "ENGINE_TIMEOUT",
                "the engine has not answered; the order may have been sent and is not resent: see GET /api/orders",
            ));
        }
    };
    Ok(respond(reply))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TradesQuery {
    /// Epoch milliseconds; fills at or after it (all of them without it).
    since: Option<i64>,
}

/// `GET /api/trades?since=MS`: the journal's fills, oldest first, read by the engine.
pub(crate) async fn trades(
    _: ReadAccess,
    State(state): State<AppState>,
    QueryOf(query): QueryOf<TradesQuery>,
) -> Result<Json<Value>, ApiError> {
    let answer = ask(
        &state,
        |request| Command::Trades {
            request,
            since_ms: query.since.unwrap_or(0),
        },
        BUSY,
    )
    .await?;
    match tokio::time::timeout(Duration::from_secs(10), answer).await {
        Ok(Ok(Reply::Trades(Ok(fills)))) => Ok(Json(
            json!({"trades": fills.iter().map(fill_json).collect::<Vec<_>>()}),
        )),
        Ok(Ok(Reply::Trades(Err(e)))) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "JOURNAL",
            format!("the journal's fills could not be read: {e}"),
        )),
        _ => Err(ApiError::unavailable("the engine did not answer")),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupBody {
    /// An absolute path on the engine's machine.
    path: std::path::PathBuf,
}

/// `POST /api/backup {"path"}` (socket only: it writes a file as the engine's user, where the
/// caller says): an online backup of the journal by the engine, journaled as a `BACKUP` event.
/// 200 `{"source", "path", "bytes"}`; 500 `BACKUP_FAILED` with the reason.
pub(crate) async fn backup(
    _: TradeAccess,
    State(state): State<AppState>,
    Body(body): Body<BackupBody>,
) -> Result<Json<Value>, ApiError> {
    if !body.path.is_absolute() {
        return Err(ApiError::bad_request(
            "path must be absolute (the engine's working folder is not yours)",
        ));
    }
    let answer = ask(
        &state,
        |request| Command::Backup {
            request,
            dest: body.path,
        },
        BUSY,
    )
    .await?;
    match tokio::time::timeout(BACKUP_WAIT, answer).await {
        Ok(Ok(Reply::Backup {
            source,
            dest,
            result: Ok(bytes),
        })) => Ok(Json(json!({
            "source": source.display().to_string(),
            "path": dest.display().to_string(),
            "bytes": bytes,
        }))),
        Ok(Ok(Reply::Backup { result: Err(e), .. })) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "BACKUP_FAILED",
            e,
        )),
        _ => Err(ApiError::unavailable(
            "the engine did not finish the backup in time",
        )),
    }
}

/// `GET /api/report/{orders|positions|pnl|balance}` (socket only): what the read command
/// prints, built by the engine from its state (`engine::reports::Report`), so that
/// `crbot orders` and the others print through the engine what they print alone. 503
/// `ENGINE_STARTING` while the engine reconciles.
pub(crate) async fn report(
    _: ReadAccess,
    State(state): State<AppState>,
    super::error::PathOf(kind): super::error::PathOf<String>,
) -> Result<Json<Value>, ApiError> {
    let kind = crate::engine::reports::ReportKind::from_name(&kind)
        .ok_or_else(|| ApiError::not_found(format!("no report {kind}")))?;
    let answer = ask(&state, |request| Command::Report { request, kind }, BUSY).await?;
    match tokio::time::timeout(Duration::from_secs(10), answer).await {
        Ok(Ok(Reply::Report(report))) => Ok(Json(serde_json::to_value(*report).unwrap_or_default())),
        Ok(Ok(Reply::NotReady)) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ENGINE_STARTING,
            "the engine is still reconciling with the exchange; try again in a moment",
        )),
        _ => Err(ApiError::unavailable("the engine did not answer")),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportBody {
    /// An absolute folder on the engine's machine.
    dir: std::path::PathBuf,
}

/// `POST /api/export {"dir"}` (socket only: it writes files where the caller says): the
/// journal's CSV export by the engine. 200 `{"files": [...]}`; 500 `EXPORT_FAILED`.
pub(crate) async fn export(
    _: ReadAccess,
    State(state): State<AppState>,
    Body(body): Body<ExportBody>,
) -> Result<Json<Value>, ApiError> {
    if !body.dir.is_absolute() {
        return Err(ApiError::bad_request(
            "dir must be absolute (the engine's working folder is not yours)",
        ));
    }
    let answer = ask(
        &state,
        |request| Command::Export {
            request,
            dir: body.dir,
        },
        BUSY,
    )
    .await?;
    match tokio::time::timeout(BACKUP_WAIT, answer).await {
        Ok(Ok(Reply::Exported(Ok(files)))) => Ok(Json(json!({
            "files": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
        }))),
        Ok(Ok(Reply::Exported(Err(e)))) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "EXPORT_FAILED",
            e,
        )),
        _ => Err(ApiError::unavailable(
            "the engine did not finish the export in time",
        )),
    }
}

/// How long `POST /api/backup` waits for the copy.
pub const BACKUP_WAIT: Duration = Duration::from_secs(300);

/// One fill as `GET /api/trades` lists it.
pub fn fill_json(f: &crate::domain::Fill) -> Value {
    json!({
        "symbol": f.symbol.as_str(),
        "trade_id": f.trade_id,
        "order_id": f.order_id,
        "client_order_id": f.client_order_id.as_ref().map(|c| c.as_str()),
        "side": f.side.as_wire(),
        "price": f.price.to_string(),
        "qty": f.qty.to_string(),
        "commission": f.commission.to_string(),
        "commission_asset": f.commission_asset.as_str(),
        "time_ms": f.time_ms,
        "is_maker": f.is_maker,
    })
}

/// The status and document of an engine's answer.
pub fn respond(reply: Reply) -> (StatusCode, Json<Value>) {
    match reply {
        // Not an answer to an order; `trades` handles its own.
        Reply::Trades(_) | Reply::Backup { .. } | Reply::Kill(_) | Reply::Report(_) | Reply::Exported(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": "INTERNAL", "message": "an unexpected answer from the engine"})),
        ),
        Reply::NotReady => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "error": ENGINE_STARTING,
                "message": "the engine is still reconciling with the exchange; nothing was sent; try again in a moment",
            })),
        ),
        Reply::NotSent { message } => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": "NOT_SENT", "message": message})),
        ),
        Reply::RiskRejected { ticket, denials } => {
            let first = denials.first();
            let mut doc = rejection_json(&ticket, &denials);
            doc["error"] = json!("RISK_REJECTED");
            doc["rule"] = json!(first.map(|d| d.code()));
            doc["message"] = json!(first.map(strip_code));
            (StatusCode::UNPROCESSABLE_ENTITY, Json(doc))
        }
        Reply::DryRun {
            ticket,
            lines,
            verdict,
        } => {
            let (text, mut doc) = dry_run_doc(&lines, &verdict);
            if let Err(denials) = &verdict
                && let Value::Object(m) = rejection_json(&ticket, denials)
            {
                for (k, v) in m {
                    doc[k] = v;
                }
                doc["dry_run"] = json!(true);
            }
            doc["text"] = json!(text);
            (StatusCode::OK, Json(doc))
        }
        Reply::Sent {
            placement,
            order,
            protective,
        } => sent(placement, order.as_ref(), &protective),
    }
}

fn sent(placement: Placement, order: Option<&Order>, protective: &[Order]) -> (StatusCode, Json<Value>) {
    let cid = order
        .map(|o| o.client_order_id.as_str().to_string())
        .unwrap_or_default();
    let mut log = Vec::new();
    let (status, code) = match &placement {
        Placement::Accepted => {
            if let Some(o) = order {
                log.push(format!(
                    "placed {cid} ({}): {} {} {} {} executed {} of {}",
                    o.order_id.map(|i| i.to_string()).unwrap_or_else(|| "-".into()),
                    o.state.as_code(),
                    o.side.as_wire(),
                    o.order_type.as_wire(),
                    o.symbol,
                    o.executed_qty,
                    o.qty
                ));
            }
            if !protective.is_empty() {
                log.push(format!(
                    "protective OCO journaled by the engine: {}",
                    protective
                        .iter()
                        .map(|o| o.client_order_id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            } else if order.is_some_and(|o| o.purpose == crate::domain::OrderPurpose::Entry) {
                log.push("the engine places the protective OCO once the entry fills".to_string());
            }
            (StatusCode::CREATED, "ACCEPTED")
        }
        Placement::Refused { message } => {
            log.push(format!("order rejected by the exchange: {message}"));
            (StatusCode::BAD_GATEWAY, "EXCHANGE_REJECTED")
        }
        Placement::Unknown => {
            log.push(format!(
                "order {cid}: no answer from the exchange; the engine resolves it by client order id, not resending"
            ));
            (StatusCode::ACCEPTED, "UNKNOWN")
        }
    };
    let mut doc = json!({
        "approved": true,
        "order": order.map(order_json),
        "protective": protective.iter().map(order_json).collect::<Vec<_>>(),
        "log": log,
        "status": code,
    });
    if status == StatusCode::BAD_GATEWAY {
        doc["error"] = json!(code);
        doc["message"] = json!(log.first());
    }
    (status, Json(doc))
}

/// One order as the commands and the API list it.
pub fn order_json(o: &Order) -> Value {
    json!({
        "client_order_id": o.client_order_id.as_str(),
        "order_id": o.order_id,
        "order_list_id": o.order_list_id,
        "symbol": o.symbol.as_str(),
        "side": o.side.as_wire(),
        "type": o.order_type.as_wire(),
        "price": o.price.map(|p| p.to_string()),
        "stop_price": o.stop_price.map(|p| p.to_string()),
        "qty": o.qty.to_string(),
        "executed_qty": o.executed_qty.to_string(),
        "status": o.state.as_code(),
        "purpose": o.purpose.as_code(),
    })
}

/// A denial's text without its leading `CODE: ` (the code is given separately).
pub fn strip_code(d: &Denial) -> String {
    let text = d.to_string();
    let prefix = format!("{}: ", d.code());
    text.strip_prefix(&prefix).map(str::to_string).unwrap_or(text)
}

/// `{"approved": false, "symbol", "side", "rejections": [{"code", "reason"}]}`.
pub fn rejection_json(ticket: &Ticket, denials: &[Denial]) -> Value {
    let list: Vec<Value> = denials
        .iter()
        .map(|d| json!({"code": d.code(), "reason": d.to_string()}))
        .collect();
    json!({"approved": false, "symbol": ticket.symbol.as_str(), "side": ticket.side.as_wire(), "rejections": list})
}

/// A dry run's text and document: every rule's line, then (approved) the exact orders that
/// would be sent; a refused dry run's text is its rule lines (the rejection follows).
pub fn dry_run_doc(lines: &[RuleLine], verdict: &Result<ApprovedOrder, Vec<Denial>>) -> (String, Value) {
    let rules_text: String = lines
        .iter()
        .map(|l| {
            let detail = l
                .detail
                .strip_prefix(&format!("{}: ", l.code))
                .unwrap_or(&l.detail);
            format!(
                "  {} {}: {}\n",
                if l.passed { "ok  " } else { "FAIL" },
                l.code,
                detail
            )
        })
        .collect();
    let rules_json: Vec<Value> = lines
        .iter()
        .map(|l| json!({"code": l.code, "passed": l.passed, "detail": l.detail}))
        .collect();
    let a = match verdict {
        Err(_) => {
            return (
                format!("dry run: nothing sent\n{rules_text}"),
                json!({"dry_run": true, "approved": false, "rules": rules_json}),
            );
        }
        Ok(a) => a,
    };
    let mut text = format!("dry run: APPROVED, nothing sent\n{rules_text}would send:\n");
    let mut entry = format!("  {} {} {} {}", a.side, a.order_type, a.qty, a.symbol);
    if let Some(p) = a.price {
        entry.push_str(&format!(" @ {p}"));
    }
    if let Some(tif) = a.time_in_force {
        entry.push_str(&format!(" {tif}"));
    }
    if let Some(n) = a.notional {
        entry.push_str(&format!(" (notional ≈ {} USDT)", n.display_dp(2)));
    }
    text.push_str(&entry);
    text.push('\n');
    let mut orders = vec![json!({
        "role": "entry",
        "symbol": a.symbol.as_str(),
        "side": a.side.as_wire(),
        "type": a.order_type.as_wire(),
        "time_in_force": a.time_in_force.map(|t| t.as_wire()),
        "qty": a.qty.to_string(),
        "price": a.price.map(|p| p.to_string()),
        "notional": a.notional.map(|n| n.to_string()),
    })];
    if let (true, Some(sl), Some(tp)) = (a.is_entry, a.stop_loss, a.take_profit) {
        text.push_str(&format!(
            "  then, once filled, a protective OCO for crbot's whole position on the symbol (≈ {} with this fill):\n    SELL LIMIT_MAKER {} @ {} (take-profit)\n    SELL STOP_LOSS {} stop {} (stop-loss)\n",
            a.qty, a.qty, tp, a.qty, sl
        ));
        orders.push(json!({"role": "take_profit", "side": "SELL", "type": "LIMIT_MAKER", "qty": a.qty.to_string(), "price": tp.to_string()}));
        orders.push(json!({"role": "stop_loss", "side": "SELL", "type": "STOP_LOSS", "qty": a.qty.to_string(), "stop_price": sl.to_string()}));
    }
    (
        text,
        json!({"dry_run": true, "approved": true, "rules": rules_json, "orders": orders}),
    )
}
