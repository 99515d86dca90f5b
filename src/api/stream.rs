//! `GET /api/stream`: the engine's snapshots to a client, and the client's commands to the
//! engine, over one WebSocket. An attached screen (`crate::attach`) draws from it.
//!
//! Owns: the wire frames (versioned JSON text) and one session's two halves: the writer sends
//! the snapshot at once, then on change, at most every [`MIN_INTERVAL`] (a `watch` channel
//! underneath, so a slow client gets the newest snapshot, never a queue); the reader takes
//! commands, accepted only from a client that may trade, and answers a refused or malformed
//! one with an error frame, never a close. Must not: queue snapshots per client, stop the
//! engine (a client's `Quit` is refused: the screen that quits is the client's), or log a
//! re-arm's passphrase. The session is generic over where an admitted command goes: the
//! leader's engine here ([`route`]), a standby's shared journal in `api::standby`.
//!
//! Frames, engine to client: `{"v":1,"type":"snapshot","data":SNAPSHOT}`,
//! `{"v":1,"type":"error","code":CODE,"message":TEXT}`. Client to engine:
//! `{"v":1,"type":"command","data":COMMAND}`, with `"passphrase"` beside `data` for a re-arm
//! (a command's own serialisation never carries it; a client sends it only over the unix socket
//! or TLS).

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use zeroize::Zeroizing;

use super::auth::{ReadAccess, Scope};
use super::error::ApiError;
use super::{AppState, BODY_LIMIT};
use crate::engine::snapshot::{Command, Snapshot};
use crate::secret::SecretString;

/// The frames' version; a client speaking another says so instead of misreading them.
pub const PROTOCOL_VERSION: u64 = 1;
/// At most ~20 snapshots a second per client; changes in between coalesce into the next.
pub const MIN_INTERVAL: Duration = Duration::from_millis(50);
/// How long a command waits for room in the engine's channel before the client is told.
const SEND_WAIT: Duration = Duration::from_secs(2);

/// A frame from the engine, decoded.
#[derive(Debug)]
pub enum ServerFrame {
    Snapshot(Box<Snapshot>),
    Error { code: String, message: String },
}

/// Why a frame could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("stream protocol v{theirs}, this crbot speaks v{PROTOCOL_VERSION}: update one of them")]
    Version { theirs: u64 },
    #[error("{0}")]
    Malformed(String),
}

/// The snapshot frame's text.
pub fn encode_snapshot(snapshot: &Snapshot) -> Result<String, serde_json::Error> {
    #[derive(Serialize)]
    struct Frame<'a> {
        v: u64,
        #[serde(rename = "type")]
        kind: &'static str,
        data: &'a Snapshot,
    }
    serde_json::to_string(&Frame {
        v: PROTOCOL_VERSION,
        kind: "snapshot",
        data: snapshot,
    })
}

/// An error frame's text.
pub fn encode_error(code: &str, message: &str) -> String {
    json!({"v": PROTOCOL_VERSION, "type": "error", "code": code, "message": message}).to_string()
}

/// A command frame's text. `passphrase` is a re-arm's, sent beside the command (whose own
/// serialisation skips it); the text is wiped when dropped.
pub fn encode_command(
    command: &Command,
    passphrase: Option<&SecretString>,
) -> Result<Zeroizing<String>, serde_json::Error> {
    #[derive(Serialize)]
    struct Frame<'a> {
        v: u64,
        #[serde(rename = "type")]
        kind: &'static str,
        data: &'a Command,
        #[serde(skip_serializing_if = "Option::is_none")]
        passphrase: Option<&'a str>,
    }
    serde_json::to_string(&Frame {
        v: PROTOCOL_VERSION,
        kind: "command",
        data: command,
        passphrase: passphrase.map(SecretString::expose),
    })
    .map(Zeroizing::new)
}

/// The version and type of a frame, checked; then its value.
fn envelope(text: &str) -> Result<(String, Value), FrameError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| FrameError::Malformed(format!("not JSON: {e}")))?;
    let v = value
        .get("v")
        .and_then(Value::as_u64)
        .ok_or_else(|| FrameError::Malformed("a frame needs a numeric \"v\"".into()))?;
    if v != PROTOCOL_VERSION {
        return Err(FrameError::Version { theirs: v });
    }
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| FrameError::Malformed("a frame needs a \"type\"".into()))?
        .to_string();
    Ok((kind, value))
}

/// Reads a frame from the engine.
pub fn decode_server(text: &str) -> Result<ServerFrame, FrameError> {
    let (kind, mut value) = envelope(text)?;
    match kind.as_str() {
        "snapshot" => {
            let data = value.get_mut("data").map(Value::take).unwrap_or(Value::Null);
            serde_json::from_value(data)
                .map(|s| ServerFrame::Snapshot(Box::new(s)))
                .map_err(|e| FrameError::Malformed(format!("a snapshot that does not read: {e}")))
        }
        "error" => {
            let text = |k: &str| value.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            Ok(ServerFrame::Error {
                code: text("code"),
                message: text("message"),
            })
        }
        other => Err(FrameError::Malformed(format!("unknown frame type {other:?}"))),
    }
}

/// Reads a command frame from a client: the command, with a re-arm's passphrase put back.
pub fn decode_command(text: &str) -> Result<Command, FrameError> {
    let (kind, mut value) = envelope(text)?;
    if kind != "command" {
        return Err(FrameError::Malformed(format!(
            "a client sends only \"command\" frames, not {kind:?}"
        )));
    }
    let passphrase = match value.get_mut("passphrase").map(Value::take) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(SecretString::new(s)),
        Some(_) => return Err(FrameError::Malformed("\"passphrase\" must be a string".into())),
    };
    let data = value.get_mut("data").map(Value::take).unwrap_or(Value::Null);
    let mut command: Command =
        serde_json::from_value(data).map_err(|e| FrameError::Malformed(format!("not a command: {e}")))?;
    if let Command::Rearm { passphrase: p } = &mut command {
        *p = passphrase;
    }
    Ok(command)
}

/// What a session's client may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// Send commands (a trade-scope token, or the unix socket).
    pub may_trade: bool,
}

impl From<&ReadAccess> for Access {
    fn from(access: &ReadAccess) -> Self {
        Access {
            may_trade: access.0.scope.allows(Scope::Trade),
        }
    }
}

/// A refusal sent back to the client as an error frame: its code and message.
pub(crate) type Refusal = (&'static str, String);

/// Why a session's snapshots ended, as the last error frame says it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ending {
    pub code: &'static str,
    pub message: &'static str,
}

/// The leader's engine stopped.
const ENGINE_STOPPED: Ending = Ending {
    code: "ENGINE_STOPPED",
    message: "the engine stopped",
};

/// The route: a read-scope token opens the stream; a trade-scope one may also send commands.
pub(crate) async fn route(
    access: ReadAccess,
    State(state): State<AppState>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let access = Access::from(&access);
    let snapshots = state.snapshots.clone();
    accept(upgrade, move |socket| {
        session(socket, snapshots, access, ENGINE_STOPPED, move |command| {
            let state = state.clone();
            async move { to_engine(command, &state).await }
        })
    })
}

/// The WebSocket upgrade of `GET /api/stream`, the session run on it once upgraded, or the
/// answer to a request that is not a WebSocket one.
pub(crate) fn accept<F, Fut>(upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>, run: F) -> Response
where
    F: FnOnce(WebSocket) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    match upgrade {
        Ok(ws) => ws.max_message_size(BODY_LIMIT).on_upgrade(run).into_response(),
        Err(_) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "UPGRADE_REQUIRED",
            "GET /api/stream is a WebSocket: connect with a WebSocket client",
        )
        .into_response(),
    }
}

/// One client, until it closes or the snapshots end (`ending` says why). Each command the
/// client may send goes to `handle`; its refusal is sent back as an error frame.
pub(crate) async fn session<H, Fut>(
    socket: WebSocket,
    snapshots: watch::Receiver<Snapshot>,
    access: Access,
    ending: Ending,
    handle: H,
) where
    H: Fn(Command) -> Fut,
    Fut: std::future::Future<Output = Result<(), Refusal>>,
{
    let (sink, mut incoming) = socket.split();
    let (errors_tx, errors_rx) = mpsc::channel::<String>(16);
    let writer = tokio::spawn(write_loop(sink, snapshots, errors_rx, ending));
    while let Some(message) = incoming.next().await {
        let reply = match message {
            Ok(Message::Text(text)) => match admit(text.as_str(), access) {
                Ok(command) => handle(command).await,
                Err(refused) => Err(refused),
            },
            Ok(Message::Binary(_)) => Err(("BAD_FRAME", "frames are JSON text".to_string())),
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(Message::Ping(_) | Message::Pong(_)) => Ok(()),
        };
        if let Err((code, message)) = reply
            && errors_tx.try_send(encode_error(code, &message)).is_err()
        {
            // A client that floods bad frames faster than it reads the answers is cut off.
            break;
        }
    }
    drop(errors_tx);
    writer.abort();
}

/// A client's frame, read and checked: a command this client may send on a stream, or why not.
fn admit(text: &str, access: Access) -> Result<Command, Refusal> {
    let command = decode_command(text).map_err(|e| match e {
        FrameError::Version { .. } => ("VERSION", e.to_string()),
        FrameError::Malformed(m) => ("BAD_FRAME", m),
    })?;
    if !access.may_trade {
        return Err((
            "FORBIDDEN",
            "commands need a token with scope trade; this stream is read-only".into(),
        ));
    }
    match &command {
        Command::Quit => Err((
            "NOT_ALLOWED",
            "the engine keeps running when a client quits; close the stream instead".into(),
        )),
        // Their request ids belong to the runtime's reply map: a stream client asks through
        // `POST /api/orders`, `GET /api/trades` and `crbot backup` instead.
        Command::Order { .. }
        | Command::Trades { .. }
        | Command::Backup { .. }
        | Command::KillFrom(_)
        | Command::KillReport { .. }
        | Command::Report { .. }
        | Command::Export { .. } => Err((
            "NOT_ALLOWED",
            "orders, trades, backups and a shell's kill are asked through their own routes; a screen sends Kill"
                .into(),
        )),
        _ => Ok(command),
    }
}

/// An admitted command, to the leader's engine.
async fn to_engine(mut command: Command, state: &AppState) -> Result<(), Refusal> {
    // As `POST /api/resume`: the engine's own passphrase (serve's passphrase file) when the
    // client sent none.
    if let Command::Rearm { passphrase } = &mut command
        && passphrase.is_none()
    {
        *passphrase = state
            .rearm_passphrase
            .as_deref()
            .map(crate::secret::SealedSecret::open_string);
    }
    tracing::info!(command = command_name(&command), "command from a stream client");
    state
        .commands
        .send_timeout(command, SEND_WAIT)
        .await
        .map_err(|_| {
            (
                "ENGINE_UNAVAILABLE",
                "the engine is not taking commands (stopping or busy)".to_string(),
            )
        })
}

/// A command's name for the log (never its fields: a re-arm carries a passphrase).
pub(crate) fn command_name(command: &Command) -> &'static str {
    match command {
        Command::PreviewTicket(_) => "preview_ticket",
        Command::SubmitTicket(_) => "submit_ticket",
        Command::CancelOrder(_) => "cancel_order",
        Command::ClosePosition { .. } => "close_position",
        Command::Kill => "kill",
        Command::Flatten { .. } => "flatten",
        Command::Rearm { .. } => "rearm",
        Command::AddSymbol(_) => "add_symbol",
        Command::RemoveSymbol(_) => "remove_symbol",
        Command::SetPriceAlert { .. } => "set_price_alert",
        Command::ClearPriceAlerts(_) => "clear_price_alerts",
        Command::Reprotect { .. } => "reprotect",
        Command::SelectSymbol(_) => "select_symbol",
        Command::SetChartInterval(_) => "set_chart_interval",
        Command::ProposeLimit { .. } => "propose_limit",
        Command::ConfirmLimit { .. } => "confirm_limit",
        Command::CancelLimitChange => "cancel_limit_change",
        Command::Quit => "quit",
        Command::Order { .. } => "order",
        Command::Trades { .. } => "trades",
        Command::Backup { .. } => "backup",
        Command::KillFrom(_) => "kill_from",
        Command::KillReport { .. } => "kill_report",
        Command::Report { .. } => "report",
        Command::Export { .. } => "export",
    }
}

/// Snapshots (the first at once, then on change, at most every [`MIN_INTERVAL`]) and the
/// reader's error frames, until the client goes or the snapshots end (then `ending`, and a
/// close).
async fn write_loop(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut snapshots: watch::Receiver<Snapshot>,
    mut errors: mpsc::Receiver<String>,
    ending: Ending,
) {
    snapshots.mark_changed();
    let mut next = tokio::time::Instant::now();
    loop {
        let text = tokio::select! {
            biased;
            error = errors.recv() => match error {
                Some(text) => text,
                None => return,
            },
            changed = snapshots.changed() => {
                if changed.is_err() {
                    let _ = sink.send(Message::Text(encode_error(ending.code, ending.message).into())).await;
                    let _ = sink.close().await;
                    return;
                }
                // Changes while waiting coalesce: the newest is what is sent.
                tokio::time::sleep_until(next).await;
                next = tokio::time::Instant::now() + MIN_INTERVAL;
                let encoded = encode_snapshot(&snapshots.borrow_and_update());
                match encoded {
                    Ok(text) => text,
                    Err(e) => {
                        tracing::error!(error = %e, "a snapshot did not serialise for the stream");
                        encode_error("INTERNAL", "a snapshot could not be sent; see the engine's log")
                    }
                }
            }
        };
        if sink.send(Message::Text(text.into())).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::snapshot::TicketDraft;

    #[test]
    fn a_command_round_trips_and_a_rearm_passphrase_travels_only_beside_it() {
        let draft = TicketDraft {
            symbol: "BTCUSDT".into(),
            amount: "0.01".into(),
            ..TicketDraft::default()
        };
        let text = encode_command(&Command::PreviewTicket(draft.clone()), None).expect("encodes");
        assert_eq!(
            decode_command(&text).expect("decodes"),
            Command::PreviewTicket(draft)
        );

        let rearm = Command::Rearm {
            passphrase: Some(SecretString::from("correct horse")),
        };
        let bare = serde_json::to_string(&rearm).expect("serialises");
        assert!(!bare.contains("correct horse"), "{bare}");
        let text = encode_command(&rearm, Some(&SecretString::from("correct horse"))).expect("encodes");
        assert_eq!(decode_command(&text).expect("decodes"), rearm);
    }

    #[test]
    fn another_version_or_a_bad_frame_is_named_not_misread() {
        let other = r#"{"v":2,"type":"command","data":"Kill"}"#;
        assert_eq!(decode_command(other), Err(FrameError::Version { theirs: 2 }));
        assert!(
            decode_command(other)
                .expect_err("refused")
                .to_string()
                .contains("v2, this crbot speaks v1")
        );
        for bad in [
            "",
            "[]",
            r#"{"v":1}"#,
            r#"{"v":1,"type":"snapshot"}"#,
            r#"{"v":1,"type":"command","data":"Explode"}"#,
        ] {
            assert!(
                matches!(decode_command(bad), Err(FrameError::Malformed(_))),
                "{bad}"
            );
        }
        assert_eq!(
            decode_command(r#"{"v":1,"type":"command","data":"Kill"}"#),
            Ok(Command::Kill)
        );
    }
}
