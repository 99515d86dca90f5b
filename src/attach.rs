//! The console as a screen of an engine that runs in another process (a `crbot serve`, or
//! another console): the same `ui::run_terminal`, fed by the engine's `GET /api/stream`.
//!
//! Owns: finding the engine to attach to ([`local_engine`]: this account's lock is held by
//! another process; or `CRBOT_API_URL`/`CRBOT_API_TOKEN`), the connection (the unix socket, or
//! TCP with a bearer token, `ws`/`wss`), and the bridge task that turns the WebSocket into the
//! screen's two channels. While the stream is down the bridge shows it (a warning first in the
//! header, streams down, quotes stale, no ticket verdict: nothing stale passes for live),
//! reconnects with backoff and keeps a kill key pressed meanwhile to send it first on
//! reconnection. Attached to a standby `crbot serve` (PostgreSQL), the stream is the standby's
//! own snapshot (`Snapshot::standby`: the header's STANDBY banner names the leader); when that
//! standby takes the lease its stream ends and the bridge's reconnection reaches the leader's
//! live stream, nothing else needed here. Must not: stop the engine (a screen's `Quit` never leaves this process),
//! replay any other command typed while disconnected, print or log the token, or send a re-arm's
//! passphrase over a connection that is not the unix socket or TLS.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use anyhow::Context as _;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, header};
use tokio_tungstenite::tungstenite::{self, Message};

use crate::api::stream::{self, FrameError, ServerFrame};
use crate::config::RemoteEngine;
use crate::domain::Mode;
use crate::engine::lock::{EngineLock, LockError, socket_path};
use crate::engine::snapshot::{Command, Snapshot, StreamStatus};
use crate::ui::UiConfig;

/// How long connecting (and the first snapshot) may take.
const CONNECT_WAIT: Duration = Duration::from_secs(10);
/// Reconnection backoff: from the first to the longest wait.
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// How long the engine's refusal of a command stays in the header.
const NOTE_FOR: Duration = Duration::from_secs(10);

/// The engine a screen attaches to.
#[derive(Debug, Clone)]
pub enum Target {
    /// This machine's engine for the account, over its control socket (no token: the socket's
    /// permissions are its authentication). `holder` is the lock holder's pid, when known.
    Local { socket: PathBuf, holder: Option<String> },
    /// An engine's API over TCP, with a bearer token.
    Remote(RemoteEngine),
}

impl Target {
    /// Where the engine runs, for messages (never the token).
    pub fn describe(&self) -> String {
        match self {
            Target::Local { socket, holder } => format!(
                "pid {}, socket {}",
                holder.as_deref().unwrap_or("unknown"),
                socket.display()
            ),
            Target::Remote(r) => r.url.to_string(),
        }
    }

    /// A re-arm's passphrase leaves only over the unix socket or TLS.
    fn may_send_passphrase(&self) -> bool {
        match self {
            Target::Local { .. } => true,
            Target::Remote(r) => r.is_tls(),
        }
    }
}

/// The engine to attach to when another process holds this account's engine lock; `None` when
/// the lock is free (this process may run the engine itself).
pub fn local_engine(data_dir: &Path, mode: Mode) -> Result<Option<Target>, LockError> {
    match EngineLock::try_acquire(data_dir, mode) {
        Ok(lock) => {
            drop(lock);
            Ok(None)
        }
        Err(LockError::Held { holder, .. }) => Ok(Some(Target::Local {
            socket: socket_path(data_dir, mode),
            holder,
        })),
        Err(e) => Err(e),
    }
}

/// Opens the screen on `target`'s engine until the trader quits; the engine keeps running, and
/// the last line printed says where.
/// An engine in LIVE mode first asks for the typed confirmation, as a live console does,
/// whatever this machine's own mode is: the screen can trade real money.
pub async fn run(target: Target, ui_config: UiConfig) -> anyhow::Result<()> {
    let attached = open(target.clone()).await?;
    let mode = attached.snapshots.borrow().mode;
    if mode == Mode::Live {
        let confirmed = tokio::task::spawn_blocking(|| confirm_live(&mut std::io::stdin().lock())).await?;
        if let Err(e) = confirmed {
            attached.task.abort();
            return Err(e);
        }
    }
    let Attached {
        snapshots,
        commands,
        task,
    } = attached;
    let result = crate::ui::run_terminal(snapshots, commands, ui_config).await;
    // The screen's sender is gone: the bridge sends what is still queued (a kill pressed just
    // before quitting), closes the stream and ends.
    let ended = tokio::time::timeout(Duration::from_secs(2), task).await;
    if matches!(ended, Ok(Ok(true))) {
        eprintln!(
            "crbot: the kill key pressed while disconnected was NOT sent: the engine was never reached again"
        );
    }
    println!(
        "crbot: screen closed; the engine keeps running ({})",
        target.describe()
    );
    result.map(|_| ())
}

/// The live confirmation, read from `input`: the engine keeps running either way.
fn confirm_live(input: &mut impl std::io::BufRead) -> anyhow::Result<()> {
    eprintln!("This engine runs in LIVE mode: orders from this screen move real money on Binance.");
    eprintln!("Type `{}` to continue:", crate::vault::LIVE_CONFIRMATION_PHRASE);
    let mut line = String::new();
    input.read_line(&mut line)?;
    if !crate::vault::confirm_live(&line) {
        anyhow::bail!("live mode not confirmed; the screen was not opened (the engine keeps running)");
    }
    Ok(())
}

/// A screen's two channels to an engine in another process, and the bridge task behind them.
#[derive(Debug)]
pub struct Attached {
    pub snapshots: watch::Receiver<Snapshot>,
    pub commands: mpsc::Sender<Command>,
    /// Ends when the screen's command sender is gone; true when a kill pressed while
    /// disconnected was never sent.
    pub task: tokio::task::JoinHandle<bool>,
}

/// Connects to `target`, waits for its first snapshot and starts the bridge. A refusal (no
/// engine there, a refused token, another protocol version) is one line.
pub async fn open(target: Target) -> anyhow::Result<Attached> {
    let describe = target.describe();
    let first = tokio::time::timeout(CONNECT_WAIT, async {
        let mut conn = connect(&target).await?;
        let first = first_snapshot(&mut conn).await?;
        Ok::<_, String>((conn, first))
    })
    .await
    .unwrap_or_else(|_| Err(format!("no answer within {}s", CONNECT_WAIT.as_secs())));
    let (conn, first) = first
        .map_err(|why| anyhow::anyhow!(why))
        .with_context(|| format!("cannot attach to the engine ({describe})"))?;
    // The first frame says whose it is too, as every later one does.
    let mut shown = first.clone();
    shown.attached_to = Some(describe.clone());
    let (snap_tx, snap_rx) = watch::channel(shown);
    let (cmd_tx, cmd_rx) = mpsc::channel(256);
    let bridge = Bridge {
        engine: target.describe(),
        target,
        screen: snap_tx,
        commands: cmd_rx,
        last: first,
        note: None,
        kill_pending: false,
    };
    Ok(Attached {
        snapshots: snap_rx,
        commands: cmd_tx,
        task: tokio::spawn(bridge.run(conn)),
    })
}

/// A WebSocket over the unix socket or TCP (with or without TLS), behind one type.
trait Duplex:
    Stream<Item = Result<Message, tungstenite::Error>> + Sink<Message, Error = tungstenite::Error> + Send
{
}

impl<T> Duplex for T where
    T: Stream<Item = Result<Message, tungstenite::Error>> + Sink<Message, Error = tungstenite::Error> + Send
{
}

type Conn = Pin<Box<dyn Duplex>>;

/// `…/api/stream` on `base`'s host, as a WebSocket URL.
pub fn stream_url(base: &url::Url) -> url::Url {
    let mut url = base.clone();
    let scheme = match base.scheme() {
        "https" | "wss" => "wss",
        _ => "ws",
    };
    // http → ws and https → wss are allowed changes of a special scheme.
    let _ = url.set_scheme(scheme);
    let path = url.path().trim_end_matches('/').to_string();
    if !path.ends_with("/api/stream") {
        url.set_path(&format!("{path}/api/stream"));
    }
    url
}

async fn connect(target: &Target) -> Result<Conn, String> {
    match target {
        Target::Local { socket, .. } => {
            let stream = tokio::net::UnixStream::connect(socket)
                .await
                .map_err(|e| format!("the engine's socket does not answer: {e}"))?;
            let (ws, _) = tokio_tungstenite::client_async("ws://localhost/api/stream", stream)
                .await
                .map_err(|e| handshake_error(&e))?;
            Ok(Box::pin(ws))
        }
        Target::Remote(remote) => {
            let mut request = stream_url(&remote.url)
                .as_str()
                .into_client_request()
                .map_err(|e| format!("not a usable URL: {e}"))?;
            let mut bearer = HeaderValue::from_str(&format!("Bearer {}", remote.token.expose()))
                .map_err(|_| "the token is not a valid header value".to_string())?;
            bearer.set_sensitive(true);
            request.headers_mut().insert(header::AUTHORIZATION, bearer);
            let (ws, _) = tokio_tungstenite::connect_async(request)
                .await
                .map_err(|e| handshake_error(&e))?;
            Ok(Box::pin(ws))
        }
    }
}

/// A failed handshake in one line: the API's own message for a refusal (401, 403, 429).
fn handshake_error(e: &tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Http(response) => {
            let message = response
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
                .and_then(|v| v["message"].as_str().map(str::to_string));
            let status = response.status();
            match (status.as_u16(), message) {
                (401, Some(m)) => format!("the engine refused the token (401: {m})"),
                (_, Some(m)) => format!("the engine answered {status}: {m}"),
                (_, None) => format!("the engine answered {status}"),
            }
        }
        other => other.to_string(),
    }
}

async fn first_snapshot(conn: &mut Conn) -> Result<Snapshot, String> {
    while let Some(message) = conn.next().await {
        match message.map_err(|e| e.to_string())? {
            Message::Text(text) => {
                return match stream::decode_server(text.as_str()).map_err(|e| e.to_string())? {
                    ServerFrame::Snapshot(s) => Ok(*s),
                    ServerFrame::Error { code, message } => Err(format!("{code}: {message}")),
                };
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    Err("the engine closed the stream".into())
}

/// Why a connected stretch ended.
enum End {
    /// The screen quit.
    Quit,
    /// The stream dropped, with why.
    Lost(String),
}

/// The task between the WebSocket and the screen's channels.
struct Bridge {
    target: Target,
    /// Where the engine runs, as the screen says it (written once, not per frame).
    engine: String,
    screen: watch::Sender<Snapshot>,
    commands: mpsc::Receiver<Command>,
    /// The engine's last snapshot, as it sent it.
    last: Snapshot,
    /// The engine's last refusal of a command, and since when.
    note: Option<(String, Instant)>,
    /// The kill key was pressed while disconnected: sent first on reconnection.
    kill_pending: bool,
}

impl Bridge {
    /// Until the screen quits; true when a kill pressed while disconnected was never sent.
    async fn run(mut self, conn: Conn) -> bool {
        let mut conn = Some(conn);
        let mut attempt: u32 = 0;
        let mut why = String::new();
        loop {
            if let Some(c) = conn.take() {
                attempt = 0;
                match self.pump(c).await {
                    End::Quit => return false,
                    End::Lost(reason) => why = reason,
                }
            }
            attempt = attempt.saturating_add(1);
            self.show_disconnected(&why, attempt);
            let shift = attempt.saturating_sub(1).min(8);
            let wait = RETRY_FIRST.saturating_mul(1 << shift).min(RETRY_MAX);
            let sleep = tokio::time::sleep(wait);
            if self.while_disconnected(sleep, &why, attempt).await.is_none() {
                return self.kill_pending;
            }
            // The screen's commands are still taken (and dropped, but a kill) while connecting:
            // nothing typed during the attempt is sent once it succeeds.
            let target = self.target.clone();
            let connecting = tokio::time::timeout(CONNECT_WAIT, connect(&target));
            match self.while_disconnected(connecting, &why, attempt).await {
                None => return self.kill_pending,
                Some(Ok(Ok(c))) => conn = Some(c),
                Some(Ok(Err(e))) => why = e,
                Some(Err(_)) => why = format!("no answer within {}s", CONNECT_WAIT.as_secs()),
            }
        }
    }

    /// One connected stretch: commands out, snapshots in.
    async fn pump(&mut self, mut conn: Conn) -> End {
        if self.kill_pending {
            if let Err(e) = self.send(&mut conn, &Command::Kill).await {
                return End::Lost(e);
            }
            self.kill_pending = false;
            tracing::warn!("kill pressed while disconnected: sent on reconnection");
        }
        loop {
            tokio::select! {
                biased;
                command = self.commands.recv() => match command {
                    None | Some(Command::Quit) => {
                        let _ = conn.close().await;
                        return End::Quit;
                    }
                    Some(command) => {
                        if let Err(e) = self.send(&mut conn, &command).await {
                            self.kill_pending |= command == Command::Kill;
                            return End::Lost(e);
                        }
                    }
                },
                message = conn.next() => match message {
                    Some(Ok(Message::Text(text))) => {
                        if let Err(e) = self.on_frame(text.as_str()) {
                            return End::Lost(e);
                        }
                    }
                    Some(Ok(Message::Close(_))) | None => return End::Lost("the engine closed the stream".into()),
                    Some(Err(e)) => return End::Lost(e.to_string()),
                    Some(Ok(_)) => {}
                },
            }
        }
    }

    async fn send(&mut self, conn: &mut Conn, command: &Command) -> Result<(), String> {
        let passphrase = match command {
            Command::Rearm { passphrase: Some(p) } if self.target.may_send_passphrase() => Some(p),
            Command::Rearm { passphrase: Some(_) } => {
                self.note(
                    "passphrase not sent over a connection without TLS: the engine re-arms only with its own passphrase file",
                );
                None
            }
            _ => None,
        };
        let text = stream::encode_command(command, passphrase).map_err(|e| e.to_string())?;
        conn.send(Message::Text(text.as_str().into()))
            .await
            .map_err(|e| format!("sending to the engine failed: {e}"))
    }

    fn on_frame(&mut self, text: &str) -> Result<(), String> {
        match stream::decode_server(text) {
            Ok(ServerFrame::Snapshot(s)) => {
                self.last = *s;
                self.publish();
            }
            Ok(ServerFrame::Error { code, message }) => {
                tracing::warn!(%code, %message, "the engine refused a command from this screen");
                self.note(&format!("engine: {message}"));
            }
            Err(e @ FrameError::Version { .. }) => return Err(e.to_string()),
            Err(FrameError::Malformed(m)) => {
                tracing::warn!(problem = %m, "a frame from the engine did not read");
                self.note("a frame from the engine did not read; see the log");
            }
        }
        Ok(())
    }

    fn note(&mut self, text: &str) {
        self.note = Some((text.to_string(), Instant::now()));
        self.publish();
    }

    /// The engine's snapshot, with a recent refusal in the header.
    fn publish(&mut self) {
        let mut s = self.last.clone();
        s.attached_to = Some(self.engine.clone());
        if let Some((text, at)) = &self.note {
            if at.elapsed() < NOTE_FOR {
                s.header.warnings.insert(0, text.clone());
            } else {
                self.note = None;
            }
        }
        let _ = self.screen.send(s);
    }

    /// The last snapshot, marked as what it is: the engine's state as of a moment ago, with the
    /// streams down, every quote stale and no ticket verdict.
    fn show_disconnected(&mut self, why: &str, attempt: u32) {
        let mut s = disconnected_view(&self.last, &self.engine, why, attempt);
        s.attached_to = Some(self.engine.clone());
        if self.kill_pending {
            // First: the header's warning row is one line, and this one must not be cut off.
            s.header
                .warnings
                .insert(0, "KILL PENDING: sent the moment the engine is reached".into());
        }
        let _ = self.screen.send(s);
    }

    /// Runs `work` (a wait, a connection attempt) while disconnected, taking the screen's
    /// commands meanwhile: a kill is kept for the reconnection, anything else is dropped (never
    /// replayed later). `None` when the screen quit.
    async fn while_disconnected<F: std::future::Future>(
        &mut self,
        work: F,
        why: &str,
        attempt: u32,
    ) -> Option<F::Output> {
        tokio::pin!(work);
        loop {
            tokio::select! {
                done = &mut work => return Some(done),
                command = self.commands.recv() => match command {
                    None | Some(Command::Quit) => return None,
                    Some(Command::Kill) => {
                        self.kill_pending = true;
                        self.show_disconnected(why, attempt);
                    }
                    Some(_) => {}
                },
            }
        }
    }
}

/// `last` as a disconnected screen shows it (the clock moves on: the header says since when).
pub fn disconnected_view(last: &Snapshot, engine: &str, why: &str, attempt: u32) -> Snapshot {
    let mut s = last.clone();
    let since = chrono::DateTime::from_timestamp_millis(last.now_ms)
        .map(|t| t.format("%H:%M:%S UTC").to_string())
        .unwrap_or_default();
    s.now_ms = chrono::Utc::now().timestamp_millis();
    s.header.warnings.insert(
        0,
        format!(
            "DISCONNECTED from the engine ({engine}) since {since}: {why}; reconnecting (attempt {attempt}); figures are as of then"
        ),
    );
    s.header.market_stream.status = StreamStatus::Down;
    s.header.user_stream.status = StreamStatus::Down;
    s.header.market_stream.latency_ms = None;
    s.header.user_stream.latency_ms = None;
    for row in &mut s.watchlist {
        row.stale = true;
    }
    s.ticket_preview = None;
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_engine_s_screen_opens_only_on_the_typed_phrase() {
        let phrase = format!("{}\n", crate::vault::LIVE_CONFIRMATION_PHRASE);
        assert!(confirm_live(&mut std::io::Cursor::new(phrase)).is_ok());
        for typed in ["", "yes\n", "i understand this is live\n"] {
            let err = confirm_live(&mut std::io::Cursor::new(typed)).expect_err("refused");
            assert!(err.to_string().contains("engine keeps running"), "{err}");
        }
    }

    #[test]
    fn the_stream_url_is_the_api_path_on_a_websocket_scheme() {
        for (base, want) in [
            ("http://127.0.0.1:8002", "ws://127.0.0.1:8002/api/stream"),
            ("https://ops.example.com", "wss://ops.example.com/api/stream"),
            (
                "wss://ops.example.com/crbot/",
                "wss://ops.example.com/crbot/api/stream",
            ),
            ("ws://h:1/api/stream", "ws://h:1/api/stream"),
        ] {
            let url = url::Url::parse(base).expect("url");
            assert_eq!(stream_url(&url).as_str(), want, "{base}");
        }
    }
}
