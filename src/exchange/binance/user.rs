//! The user-data task: order and balance events over the WebSocket API.
//!
//! Owns: the WebSocket API connection, `userDataStream.subscribe.signature` (HMAC hex or
//! Ed25519 base64 over the sorted, unescaped parameters), parsing events into owned
//! [`UserEvent`]s, pong for every ping, reconnect with backoff and jitter (proactively before
//! 24 h and at once on `serverShutdown`), and a [`UserEvent::Subscribed`] marker after every
//! successful subscription so the owner resyncs by REST (events missed in a gap are never
//! replayed). Must not: log the signature or the API key, apply events to state, or die on a
//! malformed frame.

use std::convert::Infallible;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::clock::local_now_ms;
use super::events::{UserEvent, UserFrame, parse_user_frame};
use super::limits::ban_until_ms;
use super::rest::BinanceRest;
use super::sign::{Credentials, sign_ws};
use super::ws_session::{self, End, Flow, Prepare, Session, SessionTimings, Ws};
use crate::domain::broker::{BrokerError, CODE_INVALID_TIMESTAMP};

/// `-2035`: a subscription is already active on this connection (treated as success).
const CODE_SUBSCRIPTION_ACTIVE: i64 = -2035;

/// Tunables of the user-data stream.
#[derive(Debug, Clone)]
pub struct UserStreamConfig {
    pub reconnect_base: Duration,
    pub reconnect_max: Duration,
    pub max_connection_age: Duration,
    /// How long to wait for the subscription's answer.
    pub subscribe_timeout: Duration,
    /// `recvWindow` for the subscription request (ms), if any.
    pub recv_window_ms: Option<u64>,
}

impl Default for UserStreamConfig {
    fn default() -> Self {
        Self {
            reconnect_base: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(30),
            max_connection_age: Duration::from_secs(23 * 3600 + 30 * 60),
            subscribe_timeout: Duration::from_secs(10),
            recv_window_ms: Some(5000),
        }
    }
}

/// The request text of `userDataStream.subscribe.signature` (the signature covers `apiKey`,
/// `recvWindow` if sent, and `timestamp`, sorted by name, unescaped).
pub fn subscribe_request(
    creds: &Credentials,
    id: &str,
    timestamp_ms: i64,
    recv_window_ms: Option<u64>,
) -> Result<String, BrokerError> {
    let mut params: Vec<(&str, String)> = vec![
        ("apiKey", creds.api_key.expose().to_string()),
        ("timestamp", timestamp_ms.to_string()),
    ];
    if let Some(w) = recv_window_ms {
        params.push(("recvWindow", w.to_string()));
    }
    let sig = sign_ws(&creds.key, &params).map_err(|e| BrokerError::Sign(e.to_string()))?;
    let mut p = serde_json::Map::new();
    p.insert("apiKey".into(), creds.api_key.expose().into());
    p.insert("timestamp".into(), timestamp_ms.into());
    if let Some(w) = recv_window_ms {
        p.insert("recvWindow".into(), w.into());
    }
    p.insert("signature".into(), sig.as_raw().into());
    Ok(serde_json::json!({
        "id": id,
        "method": "userDataStream.subscribe.signature",
        "params": p,
    })
    .to_string())
}

/// The owner's handle: counters for the screen.
#[derive(Debug, Clone)]
pub struct UserStreamHandle {
    malformed: Arc<AtomicU64>,
    subscriptions: Arc<AtomicU64>,
}

impl UserStreamHandle {
    pub fn malformed_count(&self) -> u64 {
        self.malformed.load(Ordering::Relaxed)
    }

    /// Successful subscriptions so far (1 + reconnects that resubscribed).
    pub fn subscription_count(&self) -> u64 {
        self.subscriptions.load(Ordering::Relaxed)
    }
}

/// Starts the user-data task with the REST client's endpoints, credentials and clock (and its
/// clock sync on `-1021`). Runs until `cancel` fires or the receiver is dropped. Fails at once
/// if the client has no credentials.
pub fn spawn_user_stream(
    rest: BinanceRest,
    events: mpsc::Sender<UserEvent>,
    cancel: CancellationToken,
    config: UserStreamConfig,
) -> Result<(UserStreamHandle, tokio::task::JoinHandle<()>), BrokerError> {
    // Checked now; each subscription signs with the client's credentials current then (they
    // can be replaced on a re-arm).
    rest.credentials().ok_or(BrokerError::NoCredentials)?;
    let handle = UserStreamHandle {
        malformed: Arc::new(AtomicU64::new(0)),
        subscriptions: Arc::new(AtomicU64::new(0)),
    };
    let timings = SessionTimings {
        reconnect_base: config.reconnect_base,
        reconnect_max: config.reconnect_max,
        max_connection_age: config.max_connection_age,
        // Fine enough to notice an unanswered subscription within its timeout.
        tick_every: Duration::from_millis(500),
    };
    let task = UserTask {
        rest,
        events,
        config,
        malformed: handle.malformed.clone(),
        subscriptions: handle.subscriptions.clone(),
        next_id: 0,
        pending: None,
    };
    Ok((handle, tokio::spawn(ws_session::run(task, cancel, timings))))
}

struct UserTask {
    rest: BinanceRest,
    events: mpsc::Sender<UserEvent>,
    config: UserStreamConfig,
    malformed: Arc<AtomicU64>,
    subscriptions: Arc<AtomicU64>,
    next_id: u64,
    /// The subscription request awaiting its answer: its id and when it was sent.
    pending: Option<(String, Instant)>,
}

impl UserTask {
    async fn emit(&self, ev: UserEvent) -> bool {
        self.events.send(ev).await.is_ok()
    }

    fn subscribe_text(&mut self) -> Result<(String, String), BrokerError> {
        self.next_id += 1;
        let id = format!("sub-{}", self.next_id);
        let creds = self.rest.credentials().ok_or(BrokerError::NoCredentials)?;
        let text = subscribe_request(
            &creds,
            &id,
            self.rest.clock().timestamp_ms(),
            self.config.recv_window_ms,
        )?;
        Ok((id, text))
    }

    /// Signs and sends a subscription and waits for its answer. `Err` if it cannot be
    /// signed: that cannot succeed later either, so the caller stops rather than spin.
    async fn subscribe(&mut self, ws: &mut Ws) -> Result<Flow, BrokerError> {
        let (id, text) = self.subscribe_text()?;
        if let ControlFlow::Break(end) = ws_session::send_text(ws, text).await {
            return Ok(ControlFlow::Break(end));
        }
        self.pending = Some((id, Instant::now()));
        Ok(ControlFlow::Continue(()))
    }

    /// Reports a subscription that could not be signed and stops the task.
    async fn unsignable(&mut self, e: &BrokerError) -> Flow {
        let _ = self
            .emit(UserEvent::Disconnected {
                reason: e.to_string(),
            })
            .await;
        ControlFlow::Break(End::Stop)
    }

    /// The answer to a request on this connection; only the pending subscription's counts.
    async fn on_response(&mut self, ws: &mut Ws, backoff: &mut Backoff, answer: SubscribeAnswer) -> Flow {
        let SubscribeAnswer {
            id,
            status,
            result,
            error,
            retry_after_ms,
        } = answer;
        let ours = self.pending.as_ref().is_some_and(|(p, _)| *p == id);
        if !ours {
            return ControlFlow::Continue(());
        }
        self.pending = None;
        let already = error
            .as_ref()
            .is_some_and(|(c, _)| *c == CODE_SUBSCRIPTION_ACTIVE);
        if status == 200 || already {
            let subscription_id = result
                .as_ref()
                .and_then(|r| r.get("subscriptionId"))
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(-1);
            self.subscriptions.fetch_add(1, Ordering::Relaxed);
            backoff.reset();
            tracing::info!(subscription_id, "user-data stream subscribed");
            if !self.emit(UserEvent::Subscribed { subscription_id }).await {
                return ControlFlow::Break(End::Stop);
            }
            return ControlFlow::Continue(());
        }
        let (code, msg) = error.unwrap_or((0, String::new()));
        if code == CODE_INVALID_TIMESTAMP {
            self.rest.clock().mark_stale();
        }
        let now = local_now_ms();
        if status == 418 {
            let until = retry_after_ms.unwrap_or_else(|| ban_until_ms(now, None, &msg));
            self.rest.note_ban(until);
        }
        if status == 429 {
            // Over the limit: the whole IP holds (REST included) until the exchange says, or
            // for a minute (the weight window) when it does not. Sending on gets it banned.
            let until = retry_after_ms.unwrap_or(now.saturating_add(60_000));
            self.rest.note_hold(until);
        }
        let _ = ws.close(None).await;
        ControlFlow::Break(End::retry(format!(
            "subscription refused (HTTP {status}, code {code}): {msg}"
        )))
    }
}

/// The fields of a [`UserFrame::Response`].
struct SubscribeAnswer {
    id: String,
    status: u16,
    result: Option<serde_json::Value>,
    error: Option<(i64, String)>,
    retry_after_ms: Option<i64>,
}

impl Session for UserTask {
    const NAME: &'static str = "user-data stream";
    type Command = Infallible;

    async fn prepare(&mut self, cancel: &CancellationToken) -> Prepare {
        // While the IP is banned every connection attempt extends the ban, and a request
        // during a 429 hold turns into a ban: wait either out.
        if let Some(wait) = self.rest.held_for(local_now_ms()) {
            tracing::warn!(
                wait_ms = wait.as_millis(),
                "user-data stream: rate-limit hold or IP ban, waiting"
            );
            return tokio::select! {
                _ = cancel.cancelled() => Prepare::Stop,
                _ = tokio::time::sleep(wait) => Prepare::Again,
            };
        }
        Prepare::Connect(self.rest.endpoints().ws_api.as_str().to_owned())
    }

    async fn on_connected(&mut self, ws: &mut Ws) -> Flow {
        self.pending = None;
        if self.rest.clock().is_stale() {
            // Best effort: a failed sync shows up as -1021 in the answer.
            let _ = self.rest.sync_clock().await;
        }
        match self.subscribe(ws).await {
            Ok(flow) => flow,
            Err(e) => {
                tracing::error!(error = %e, "user-data stream: cannot sign the subscription");
                self.unsignable(&e).await
            }
        }
    }

    async fn on_tick(&mut self, ws: &mut Ws) -> Flow {
        if let Some((_, sent)) = &self.pending
            && sent.elapsed() > self.config.subscribe_timeout
        {
            let _ = ws.close(None).await;
            return ControlFlow::Break(End::retry("no answer to the subscription"));
        }
        ControlFlow::Continue(())
    }

    async fn next_command(&mut self) -> Option<Infallible> {
        // The owner sends nothing to this stream.
        std::future::pending().await
    }

    async fn on_command(&mut self, command: Infallible) -> Flow {
        match command {}
    }

    async fn on_text(&mut self, ws: &mut Ws, backoff: &mut Backoff, text: &str) -> Flow {
        match parse_user_frame(text) {
            Ok(UserFrame::Event(UserEvent::Terminated)) => {
                // The exchange ended our subscription: subscribe again, and the
                // Subscribed marker that follows triggers a resync.
                if !self.emit(UserEvent::Terminated).await {
                    return ControlFlow::Break(End::Stop);
                }
                match self.subscribe(ws).await {
                    Ok(flow) => flow,
                    Err(e) => self.unsignable(&e).await,
                }
            }
            Ok(UserFrame::Event(ev)) => {
                if self.emit(ev).await {
                    ControlFlow::Continue(())
                } else {
                    ControlFlow::Break(End::Stop)
                }
            }
            Ok(UserFrame::Response {
                id,
                status,
                result,
                error,
                retry_after_ms,
            }) => {
                let answer = SubscribeAnswer {
                    id,
                    status,
                    result,
                    error,
                    retry_after_ms,
                };
                self.on_response(ws, backoff, answer).await
            }
            Ok(UserFrame::ServerShutdown) => {
                let _ = ws.close(None).await;
                ControlFlow::Break(End::renew("serverShutdown"))
            }
            Ok(UserFrame::Ignored) => ControlFlow::Continue(()),
            Err(e) => ws_session::skip_malformed(self, &e.to_string()).await,
        }
    }

    fn malformed_counter(&self) -> &AtomicU64 {
        &self.malformed
    }

    async fn report_malformed(&mut self, total: u64) -> bool {
        self.emit(UserEvent::Malformed { total }).await
    }

    async fn report_disconnected(&mut self, reason: String) -> bool {
        self.emit(UserEvent::Disconnected { reason }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_request_is_signed_like_the_official_logon_vector() {
        let creds = Credentials::hmac(
            "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
            "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j",
        );
        let text = subscribe_request(&creds, "sub-1", 1649729878532, None).expect("sign");
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["method"], "userDataStream.subscribe.signature");
        assert_eq!(v["id"], "sub-1");
        assert_eq!(v["params"]["timestamp"], 1649729878532i64);
        assert_eq!(
            v["params"]["signature"],
            "1cf54395b336b0a9727ef27d5d98987962bc47aca6e13fe978612d0adee066ed"
        );
        let with_window = subscribe_request(&creds, "sub-2", 1649729878532, Some(5000)).expect("sign");
        let v2: serde_json::Value = serde_json::from_str(&with_window).expect("json");
        assert_eq!(v2["params"]["recvWindow"], 5000);
        assert_ne!(
            v2["params"]["signature"], v["params"]["signature"],
            "recvWindow is signed"
        );
    }
}
