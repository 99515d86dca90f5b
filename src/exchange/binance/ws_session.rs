//! The WebSocket session driver shared by the market stream and the user-data stream.
//!
//! Owns: the connection loop common to both — connect (abandoned at once on cancellation),
//! reconnect with backoff and jitter (at once after a proactive renewal or `serverShutdown`),
//! renewal before the connection-age limit, pong for every ping, ending a connection on a
//! read error, a close frame or end of stream, counting and reporting malformed frames, and
//! stopping on the cancellation token. A [`Session`] supplies what differs: where to connect,
//! what to send after connecting, what a text frame means, periodic work, owner commands and
//! the status events. Must not: parse exchange messages, hold trading state, or log what a
//! session sends (a subscription request carries a signature).

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

use super::backoff::{Backoff, ThreadJitter};

/// The socket a session works on.
pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum End {
    /// The task is over: cancelled, the owner is gone, or retrying cannot help.
    Stop,
    /// Connect again; `immediately` skips the backoff (a planned renewal or a server restart,
    /// not a failure).
    Reconnect { reason: String, immediately: bool },
}

impl End {
    /// A failure: reconnect after the backoff delay.
    pub(crate) fn retry(reason: impl Into<String>) -> Self {
        End::Reconnect {
            reason: reason.into(),
            immediately: false,
        }
    }

    /// A planned reconnect: no backoff delay.
    pub(crate) fn renew(reason: impl Into<String>) -> Self {
        End::Reconnect {
            reason: reason.into(),
            immediately: true,
        }
    }
}

/// What a session hook decides: keep the connection, or end it.
pub(crate) type Flow = ControlFlow<End>;

/// What to do before (re)connecting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Prepare {
    Connect(String),
    /// Nothing to connect to yet (or a wait is over): check cancellation and ask again.
    Again,
    Stop,
}

/// Timing of the connection loop.
#[derive(Debug, Clone)]
pub(crate) struct SessionTimings {
    pub reconnect_base: Duration,
    pub reconnect_max: Duration,
    /// Renew the connection before the exchange cuts it (Binance: 24 h).
    pub max_connection_age: Duration,
    /// How often [`Session::on_tick`] runs (and the age limit is checked).
    pub tick_every: Duration,
}

/// The part of a stream that differs between streams. The driver calls the hooks from one
/// task, so a hook must not block: anything slow would leave pings unanswered.
pub(crate) trait Session {
    /// Names the stream in log lines ("market stream", "user-data stream").
    const NAME: &'static str;
    /// A request from the owner while connected (`Infallible` if there are none).
    type Command;

    /// Before each connection attempt: the URL, or wait (observing `cancel`) and ask again.
    async fn prepare(&mut self, cancel: &CancellationToken) -> Prepare;
    /// Right after the socket opened: report it, send subscriptions.
    async fn on_connected(&mut self, ws: &mut Ws) -> Flow;
    /// Periodic work while connected.
    async fn on_tick(&mut self, ws: &mut Ws) -> Flow;
    /// The next owner command; `None` once the owner is gone (the task stops). Must be
    /// cancel-safe: the driver drops it whenever something else happens first.
    async fn next_command(&mut self) -> Option<Self::Command>;
    async fn on_command(&mut self, command: Self::Command) -> Flow;
    /// A text frame. A frame that does not parse goes to [`skip_malformed`]; `backoff` is
    /// reset once the session is known to work.
    async fn on_text(&mut self, ws: &mut Ws, backoff: &mut Backoff, text: &str) -> Flow;
    /// The counter of malformed frames the owner reads.
    fn malformed_counter(&self) -> &AtomicU64;
    /// Reports the malformed-frame total to the owner; `false` once the owner is gone.
    async fn report_malformed(&mut self, total: u64) -> bool;
    /// Reports a lost connection to the owner; `false` once the owner is gone.
    async fn report_disconnected(&mut self, reason: String) -> bool;
}

/// Counts, logs and reports a frame that could not be used; the stream keeps going.
pub(crate) async fn skip_malformed<S: Session>(session: &mut S, why: &str) -> Flow {
    let total = session.malformed_counter().fetch_add(1, Ordering::Relaxed) + 1;
    tracing::warn!(total, why, "{}: malformed frame skipped", S::NAME);
    if session.report_malformed(total).await {
        ControlFlow::Continue(())
    } else {
        ControlFlow::Break(End::Stop)
    }
}

/// Sends a text frame; a failure ends the connection.
pub(crate) async fn send_text(ws: &mut Ws, text: String) -> Flow {
    match ws.send(Message::text(text)).await {
        Ok(()) => ControlFlow::Continue(()),
        Err(e) => ControlFlow::Break(End::retry(format!("send failed: {e}"))),
    }
}

/// Runs `session` until `cancel` fires or a hook stops it.
pub(crate) async fn run<S: Session>(mut session: S, cancel: CancellationToken, timings: SessionTimings) {
    let mut backoff = Backoff::new(timings.reconnect_base, timings.reconnect_max);
    loop {
        if cancel.is_cancelled() {
            return;
        }
        let url = match session.prepare(&cancel).await {
            Prepare::Connect(url) => url,
            Prepare::Again => continue,
            Prepare::Stop => return,
        };
        let connected = tokio::select! {
            _ = cancel.cancelled() => return,
            r = tokio_tungstenite::connect_async(url.as_str()) => r,
        };
        let end = match connected {
            Ok((ws, _)) => connection(&mut session, ws, &cancel, &mut backoff, &timings).await,
            Err(e) => End::retry(format!("connect failed: {e}")),
        };
        let (reason, immediately) = match end {
            End::Stop => return,
            End::Reconnect { reason, immediately } => (reason, immediately),
        };
        tracing::warn!(%reason, "{} disconnected", S::NAME);
        if !session.report_disconnected(reason).await {
            return;
        }
        if !immediately {
            let d = backoff.next_delay(&mut ThreadJitter);
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(d) => {}
            }
        }
    }
}

/// One connection, from the open socket to the reason it ended.
async fn connection<S: Session>(
    session: &mut S,
    mut ws: Ws,
    cancel: &CancellationToken,
    backoff: &mut Backoff,
    timings: &SessionTimings,
) -> End {
    let opened = Instant::now();
    if let ControlFlow::Break(end) = session.on_connected(&mut ws).await {
        return end;
    }
    let mut tick = tokio::time::interval(timings.tick_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let flow = tokio::select! {
            _ = cancel.cancelled() => {
                let _ = ws.close(None).await;
                return End::Stop;
            }
            cmd = session.next_command() => match cmd {
                Some(cmd) => session.on_command(cmd).await,
                None => {
                    let _ = ws.close(None).await;
                    return End::Stop;
                }
            },
            _ = tick.tick() => match session.on_tick(&mut ws).await {
                ControlFlow::Continue(()) if opened.elapsed() >= timings.max_connection_age => {
                    let _ = ws.close(None).await;
                    return End::renew("connection age limit: renewing");
                }
                flow => flow,
            },
            msg = ws.next() => match msg {
                None => return End::retry("closed by the server"),
                Some(Err(e)) => return End::retry(format!("read failed: {e}")),
                Some(Ok(m)) => frame(session, &mut ws, backoff, m).await,
            },
        };
        if let ControlFlow::Break(end) = flow {
            return end;
        }
    }
}

/// One frame read from the socket.
async fn frame<S: Session>(session: &mut S, ws: &mut Ws, backoff: &mut Backoff, msg: Message) -> Flow {
    match msg {
        Message::Text(text) => session.on_text(ws, backoff, text.as_str()).await,
        Message::Binary(_) => skip_malformed(session, "unexpected binary frame").await,
        Message::Ping(payload) => {
            // An explicit pong with the same payload (replaces tungstenite's queued one), sent
            // now so a slow session cannot make the exchange drop us.
            match ws.send(Message::Pong(payload)).await {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => ControlFlow::Break(End::retry(format!("pong failed: {e}"))),
            }
        }
        Message::Close(frame) => {
            let reason = frame.map_or_else(|| "closed".to_string(), |f| format!("closed: {}", f.reason));
            ControlFlow::Break(End::retry(reason))
        }
        Message::Pong(_) | Message::Frame(_) => ControlFlow::Continue(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use tokio::net::TcpListener;
    use tokio::sync::mpsc;
    use tokio_tungstenite::accept_async;

    /// What the probe session saw, in order.
    #[derive(Debug, PartialEq, Eq)]
    enum Seen {
        Connected,
        Text(String),
        Malformed(u64),
        Disconnected(String),
    }

    /// A session that connects to one URL and records every hook the driver calls.
    struct Probe {
        url: String,
        seen: mpsc::UnboundedSender<Seen>,
        malformed: AtomicU64,
    }

    impl Session for Probe {
        const NAME: &'static str = "probe stream";
        type Command = std::convert::Infallible;

        async fn prepare(&mut self, _cancel: &CancellationToken) -> Prepare {
            Prepare::Connect(self.url.clone())
        }

        async fn on_connected(&mut self, _ws: &mut Ws) -> Flow {
            let _ = self.seen.send(Seen::Connected);
            ControlFlow::Continue(())
        }

        async fn on_tick(&mut self, _ws: &mut Ws) -> Flow {
            ControlFlow::Continue(())
        }

        async fn next_command(&mut self) -> Option<Self::Command> {
            std::future::pending().await
        }

        async fn on_command(&mut self, command: Self::Command) -> Flow {
            match command {}
        }

        async fn on_text(&mut self, _ws: &mut Ws, _backoff: &mut Backoff, text: &str) -> Flow {
            let _ = self.seen.send(Seen::Text(text.to_string()));
            ControlFlow::Continue(())
        }

        fn malformed_counter(&self) -> &AtomicU64 {
            &self.malformed
        }

        async fn report_malformed(&mut self, total: u64) -> bool {
            self.seen.send(Seen::Malformed(total)).is_ok()
        }

        async fn report_disconnected(&mut self, reason: String) -> bool {
            self.seen.send(Seen::Disconnected(reason)).is_ok()
        }
    }

    fn timings() -> SessionTimings {
        SessionTimings {
            reconnect_base: Duration::from_millis(10),
            reconnect_max: Duration::from_millis(20),
            max_connection_age: Duration::from_secs(3600),
            tick_every: Duration::from_millis(50),
        }
    }

    /// Starts the driver with a probe against a local server.
    fn start(
        url: String,
    ) -> (
        mpsc::UnboundedReceiver<Seen>,
        CancellationToken,
        tokio::task::JoinHandle<()>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        let probe = Probe {
            url,
            seen: tx,
            malformed: AtomicU64::new(0),
        };
        let cancel = CancellationToken::new();
        let join = tokio::spawn(run(probe, cancel.clone(), timings()));
        (rx, cancel, join)
    }

    async fn next(rx: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("the driver reports in time")
            .expect("the driver is running")
    }

    #[tokio::test]
    async fn reconnects_after_the_server_drops_the_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("ws://{}", listener.local_addr().expect("addr"));
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.expect("accept 1");
            let mut ws = accept_async(tcp).await.expect("handshake 1");
            ws.send(Message::text("first")).await.expect("send 1");
            ws.flush().await.expect("flush 1");
            // Gone without a closing handshake, as when a connection is cut.
            drop(ws);
            let (tcp, _) = listener.accept().await.expect("accept 2");
            let mut ws = accept_async(tcp).await.expect("handshake 2");
            ws.send(Message::text("second")).await.expect("send 2");
            ws
        });
        let (mut rx, cancel, join) = start(url);
        assert_eq!(next(&mut rx).await, Seen::Connected);
        assert_eq!(next(&mut rx).await, Seen::Text("first".into()));
        match next(&mut rx).await {
            Seen::Disconnected(reason) => assert!(
                reason.starts_with("read failed") || reason.starts_with("closed"),
                "{reason}"
            ),
            other => panic!("expected a disconnect, got {other:?}"),
        }
        assert_eq!(next(&mut rx).await, Seen::Connected);
        assert_eq!(next(&mut rx).await, Seen::Text("second".into()));
        let _server_side = server.await.expect("server");
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), join)
            .await
            .expect("stops on cancel")
            .expect("no panic");
    }

    #[tokio::test]
    async fn answers_pings_skips_binary_frames_and_closes_on_cancel() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("ws://{}", listener.local_addr().expect("addr"));
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.expect("accept");
            let mut ws = accept_async(tcp).await.expect("handshake");
            ws.send(Message::Ping(b"hi".to_vec().into())).await.expect("ping");
            ws.send(Message::Binary(b"\x00".to_vec().into()))
                .await
                .expect("binary");
            ws.send(Message::text("after")).await.expect("text");
            let mut seen = Vec::new();
            while let Some(Ok(m)) = ws.next().await {
                let closing = m.is_close();
                seen.push(m);
                if closing {
                    break;
                }
            }
            seen
        });
        let (mut rx, cancel, join) = start(url);
        assert_eq!(next(&mut rx).await, Seen::Connected);
        assert_eq!(next(&mut rx).await, Seen::Malformed(1));
        assert_eq!(next(&mut rx).await, Seen::Text("after".into()));
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), join)
            .await
            .expect("stops on cancel")
            .expect("no panic");
        let from_client = tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("server done")
            .expect("server");
        assert_eq!(
            from_client.first(),
            Some(&Message::Pong(b"hi".to_vec().into())),
            "{from_client:?}"
        );
        assert!(
            from_client.last().is_some_and(Message::is_close),
            "closed on cancel: {from_client:?}"
        );
        assert!(rx.recv().await.is_none(), "no disconnect reported on cancel");
    }
}
