//! `GET /api/stream` in process: the router over the demo snapshot and a scripted engine, a real
//! WebSocket client on loopback. The first frame is the snapshot, changes follow (coalesced),
//! a trade-scope client's commands reach the engine, a read-scope client's and bad frames get an
//! error frame and the stream goes on. Then `attach::open`, the attached screen's bridge, over
//! the same router: its channels, what it shows while the stream is cut (and the kill key
//! pressed meanwhile, sent on reconnection) through a relay the test can cut, a re-arm's
//! passphrase kept off plain TCP; and the local way in: the account's lock held by another
//! engine, reached on its unix socket (a stand-in engine there; the real socket serves the same
//! router).

mod support {
    pub mod demo;
}

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use crbot::api::auth::{Scope, TokenKeys};
use crbot::api::stream::{self, PROTOCOL_VERSION, ServerFrame};
use crbot::api::{ApiSettings, EngineLink};
use crbot::attach::{self, Target};
use crbot::config::{Environment, RemoteEngine};
use crbot::engine::snapshot::{Command, Snapshot, StreamStatus, TicketDraft, TradingState};
use crbot::secret::SecretString;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;

const KEY: &str = "a stream test key of at least 32 characters";
/// Generous bound for something that happens at once; a failure names what never came.
const WAIT: Duration = Duration::from_secs(10);

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

struct Engine {
    addr: std::net::SocketAddr,
    snapshots: watch::Sender<Snapshot>,
    /// Every command the engine received, in order.
    commands: mpsc::UnboundedReceiver<Command>,
    stop: CancellationToken,
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The router over a scripted engine that records each command and halts on `Kill`.
async fn start() -> Engine {
    let now = chrono::Utc::now().timestamp_millis();
    let (snap_tx, snap_rx) = watch::channel(support::demo::snapshot(now));
    let (cmd_tx, mut cmd_rx) = mpsc::channel::<Command>(16);
    let (seen_tx, seen_rx) = mpsc::unbounded_channel();
    let engine_tx = snap_tx.clone();
    tokio::spawn(async move {
        while let Some(c) = cmd_rx.recv().await {
            if c == Command::Kill {
                engine_tx.send_modify(|s| {
                    s.header.trading = TradingState::Halted {
                        reason: "kill switch pressed".into(),
                        since_ms: chrono::Utc::now().timestamp_millis(),
                    }
                });
            }
            let _ = seen_tx.send(c);
        }
    });
    let link = EngineLink {
        commands: cmd_tx,
        snapshots: snap_rx,
        rearm_passphrase: None,
        replies: Default::default(),
    };
    let settings = ApiSettings {
        env: Environment::Development,
        keys: TokenKeys::new(&SecretString::from(KEY)).unwrap(),
        rate_limit: None,
        cors_origins: Vec::new(),
    };
    let app = crbot::api::router(link, settings);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(crbot::api::serve(listener, app, stop.clone()));
    Engine {
        addr,
        snapshots: snap_tx,
        commands: seen_rx,
        stop,
    }
}

fn token(scope: Scope) -> String {
    TokenKeys::new(&SecretString::from(KEY))
        .unwrap()
        .issue("test", scope, 1, chrono::Utc::now().timestamp())
        .unwrap()
}

async fn connect(addr: std::net::SocketAddr, scope: Scope) -> Ws {
    let mut request = format!("ws://{addr}/api/stream").into_client_request().unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", token(scope)).parse().unwrap(),
    );
    tokio_tungstenite::connect_async(request)
        .await
        .expect("the stream opens")
        .0
}

/// The next text frame, as JSON.
async fn next_frame(ws: &mut Ws) -> Value {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame within the wait")
            .expect("the stream is open")
            .expect("a frame");
        if let Message::Text(text) = message {
            return serde_json::from_str(text.as_str()).expect("frames are JSON");
        }
    }
}

/// Frames until one that is not a snapshot (the snapshots skipped are counted out).
async fn next_non_snapshot(ws: &mut Ws) -> Value {
    loop {
        let frame = next_frame(ws).await;
        if frame["type"] != "snapshot" {
            return frame;
        }
    }
}

async fn send_command(ws: &mut Ws, command: &Command) {
    let text = stream::encode_command(command, None).unwrap();
    ws.send(Message::Text(text.as_str().into())).await.unwrap();
}

async fn next_command(engine: &mut Engine) -> Command {
    tokio::time::timeout(WAIT, engine.commands.recv())
        .await
        .expect("the engine received a command")
        .expect("the engine runs")
}

#[test]
fn the_demo_snapshot_survives_the_wire_unchanged() {
    let snapshot = support::demo::snapshot(1_764_000_000_000);
    let text = stream::encode_snapshot(&snapshot).unwrap();
    let frame: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(frame["v"], json!(PROTOCOL_VERSION));
    assert_eq!(frame["type"], "snapshot");
    match stream::decode_server(&text).unwrap() {
        ServerFrame::Snapshot(back) => assert_eq!(*back, snapshot),
        other => panic!("not a snapshot: {other:?}"),
    }
    let killing = support::demo::killing(1_764_000_000_000);
    match stream::decode_server(&stream::encode_snapshot(&killing).unwrap()).unwrap() {
        ServerFrame::Snapshot(back) => assert_eq!(*back, killing),
        other => panic!("not a snapshot: {other:?}"),
    }
}

#[tokio::test]
async fn the_first_frame_is_the_snapshot_and_changes_follow_coalesced() {
    let engine = start().await;
    let mut ws = connect(engine.addr, Scope::Read).await;
    let first = next_frame(&mut ws).await;
    assert_eq!(
        (first["v"].clone(), first["type"].clone()),
        (json!(1), json!("snapshot"))
    );
    let expected = engine.snapshots.borrow().clone();
    match stream::decode_server(&first.to_string()).unwrap() {
        ServerFrame::Snapshot(s) => assert_eq!(*s, expected),
        other => panic!("{other:?}"),
    }

    // 500 changes in a burst: the client gets the newest, not 500 frames.
    for i in 1..=500 {
        engine
            .snapshots
            .send_modify(|s| s.header.warnings = vec![format!("change {i}")]);
    }
    let mut frames = 0;
    loop {
        let frame = next_frame(&mut ws).await;
        frames += 1;
        if frame["data"]["header"]["warnings"] == json!(["change 500"]) {
            break;
        }
    }
    assert!(frames < 500, "{frames} frames for 500 changes: not coalesced");
}

#[tokio::test]
async fn a_trade_token_s_command_reaches_the_engine_and_its_effect_comes_back() {
    let mut engine = start().await;
    let mut ws = connect(engine.addr, Scope::Trade).await;
    next_frame(&mut ws).await;
    let draft = TicketDraft {
        symbol: "BTCUSDT".into(),
        side: "BUY".into(),
        amount: "0.001".into(),
        ..TicketDraft::default()
    };
    send_command(&mut ws, &Command::PreviewTicket(draft.clone())).await;
    assert_eq!(next_command(&mut engine).await, Command::PreviewTicket(draft));
    send_command(&mut ws, &Command::Kill).await;
    assert_eq!(next_command(&mut engine).await, Command::Kill);
    loop {
        let frame = next_frame(&mut ws).await;
        if frame["data"]["header"]["trading"].get("Halted").is_some() {
            break;
        }
    }
}

#[tokio::test]
async fn a_read_token_s_command_gets_an_error_frame_and_the_stream_goes_on() {
    let mut engine = start().await;
    let mut ws = connect(engine.addr, Scope::Read).await;
    next_frame(&mut ws).await;
    send_command(&mut ws, &Command::Kill).await;
    let error = next_non_snapshot(&mut ws).await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["code"], "FORBIDDEN");
    assert!(
        error["message"].as_str().unwrap().contains("scope trade"),
        "{error}"
    );
    engine
        .snapshots
        .send_modify(|s| s.header.warnings = vec!["still here".into()]);
    loop {
        let frame = next_frame(&mut ws).await;
        if frame["data"]["header"]["warnings"] == json!(["still here"]) {
            break;
        }
    }
    assert!(engine.commands.try_recv().is_err(), "nothing reached the engine");
    assert!(!engine.snapshots.borrow().header.trading.is_halted());
}

#[tokio::test]
async fn bad_frames_get_error_frames_and_a_good_one_still_works_after_them() {
    let mut engine = start().await;
    let mut ws = connect(engine.addr, Scope::Trade).await;
    next_frame(&mut ws).await;
    let cases: [(Message, &str); 6] = [
        (Message::Text("not json".into()), "BAD_FRAME"),
        (Message::Binary(vec![1u8, 2, 3].into()), "BAD_FRAME"),
        (
            Message::Text(r#"{"v":2,"type":"command","data":"Kill"}"#.into()),
            "VERSION",
        ),
        (
            Message::Text(r#"{"v":1,"type":"command","data":"SelfDestruct"}"#.into()),
            "BAD_FRAME",
        ),
        (
            Message::Text(r#"{"v":1,"type":"command","data":{"Flatten":{"percent":"all"}}}"#.into()),
            "BAD_FRAME",
        ),
        (
            Message::Text(r#"{"v":1,"type":"command","data":"Quit"}"#.into()),
            "NOT_ALLOWED",
        ),
    ];
    for (message, code) in cases {
        let shown = format!("{message:?}");
        ws.send(message).await.unwrap();
        let error = next_non_snapshot(&mut ws).await;
        assert_eq!(
            (error["type"].as_str(), error["code"].as_str()),
            (Some("error"), Some(code)),
            "{shown}: {error}"
        );
        assert_eq!(error["v"], json!(1));
    }
    send_command(&mut ws, &Command::Flatten { percent: 50 }).await;
    assert_eq!(next_command(&mut engine).await, Command::Flatten { percent: 50 });
}

#[tokio::test]
async fn no_token_is_refused_at_the_handshake_and_a_plain_get_is_told_to_upgrade() {
    let engine = start().await;
    let err = tokio_tungstenite::connect_async(format!("ws://{}/api/stream", engine.addr))
        .await
        .expect_err("refused");
    match err {
        tokio_tungstenite::tungstenite::Error::Http(r) => assert_eq!(r.status(), 401),
        other => panic!("{other}"),
    }
    let res = reqwest::Client::new()
        .get(format!("http://{}/api/stream", engine.addr))
        .bearer_auth(token(Scope::Read))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "UPGRADE_REQUIRED");
}

/// A TCP relay in front of the router that the test can cut (existing connections dropped,
/// new ones closed at once), stall (new connections held with nothing forwarded, as a hung
/// network does; a restore then lets them through, late) and restore.
struct Relay {
    addr: std::net::SocketAddr,
    /// 0 up, 1 refusing, 2 stalling.
    mode: Arc<AtomicU8>,
    cut: watch::Sender<u64>,
    /// Connections held by a stall so far.
    stalled: Arc<AtomicUsize>,
}

impl Relay {
    async fn start(upstream: std::net::SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(0));
        let stalled = Arc::new(AtomicUsize::new(0));
        let (cut, cuts) = watch::channel(0u64);
        let (m, held) = (mode.clone(), stalled.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut cuts = cuts.clone();
                cuts.mark_unchanged();
                match m.load(Ordering::SeqCst) {
                    1 => continue,
                    2 => {
                        held.fetch_add(1, Ordering::SeqCst);
                        let mode = m.clone();
                        tokio::spawn(async move {
                            let mut early = Vec::new();
                            let mut buf = [0u8; 4096];
                            loop {
                                tokio::select! {
                                    _ = cuts.changed() => break,
                                    read = inbound.read(&mut buf) => match read {
                                        Ok(0) | Err(_) => return,
                                        Ok(n) => early.extend_from_slice(&buf[..n]),
                                    },
                                }
                            }
                            // Restored: the held attempt goes through, late; cut: dropped.
                            if mode.load(Ordering::SeqCst) != 0 {
                                return;
                            }
                            let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                                return;
                            };
                            if outbound.write_all(&early).await.is_ok() {
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            }
                        });
                        continue;
                    }
                    _ => {}
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cuts.changed() => {}
                    }
                });
            }
        });
        Relay {
            addr,
            mode,
            cut,
            stalled,
        }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    fn cut(&self) {
        self.set(1);
    }

    fn stall(&self) {
        self.set(2);
    }

    fn restore(&self) {
        self.set(0);
    }
}

fn remote(addr: std::net::SocketAddr, scope: Scope) -> Target {
    Target::Remote(RemoteEngine {
        url: url::Url::parse(&format!("http://{addr}")).unwrap(),
        token: SecretString::from(token(scope)),
    })
}

async fn wait_screen(
    rx: &mut watch::Receiver<Snapshot>,
    what: &str,
    cond: impl Fn(&Snapshot) -> bool,
) -> Snapshot {
    tokio::time::timeout(WAIT, rx.wait_for(|s| cond(s)))
        .await
        .unwrap_or_else(|_| panic!("the screen never showed {what}"))
        .expect("the bridge runs")
        .clone()
}

#[tokio::test]
async fn an_attached_screen_shows_a_cut_as_disconnected_and_sends_a_kill_pressed_meanwhile() {
    let mut engine = start().await;
    let relay = Relay::start(engine.addr).await;
    let attached = attach::open(remote(relay.addr, Scope::Trade))
        .await
        .expect("attaches");
    let mut screen = attached.snapshots.clone();
    let mut expected = engine.snapshots.borrow().clone();
    expected.attached_to = screen.borrow().attached_to.clone();
    assert!(expected.attached_to.is_some(), "the first frame names the engine");
    assert_eq!(*screen.borrow(), expected, "the first snapshot is the engine's");

    // Live: a change on the engine reaches the screen, a command from the screen the engine.
    engine
        .snapshots
        .send_modify(|s| s.header.warnings = vec!["live".into()]);
    wait_screen(&mut screen, "the engine's change", |s| {
        s.header.warnings == ["live"]
    })
    .await;
    attached.commands.send(Command::CancelLimitChange).await.unwrap();
    assert_eq!(next_command(&mut engine).await, Command::CancelLimitChange);

    // Cut: the screen says so and nothing passes for live.
    relay.cut();
    let shown = wait_screen(&mut screen, "the disconnection", |s| {
        s.header
            .warnings
            .first()
            .is_some_and(|w| w.starts_with("DISCONNECTED"))
    })
    .await;
    assert_eq!(shown.header.market_stream.status, StreamStatus::Down);
    assert_eq!(shown.header.user_stream.status, StreamStatus::Down);
    assert!(shown.watchlist.iter().all(|w| w.stale), "every quote is stale");
    assert!(shown.ticket_preview.is_none(), "no verdict from before the cut");

    // A ticket typed while cut is dropped; the kill key is kept and shown as pending.
    attached
        .commands
        .send(Command::SubmitTicket(TicketDraft::default()))
        .await
        .unwrap();
    attached.commands.send(Command::Kill).await.unwrap();
    wait_screen(&mut screen, "the pending kill", |s| {
        s.header.warnings.iter().any(|w| w.starts_with("KILL PENDING"))
    })
    .await;

    relay.restore();
    assert_eq!(
        next_command(&mut engine).await,
        Command::Kill,
        "the kill, and only it, on reconnection"
    );
    wait_screen(&mut screen, "the halt, live again", |s| {
        s.header.trading.is_halted() && !s.header.warnings.iter().any(|w| w.starts_with("DISCONNECTED"))
    })
    .await;
    assert!(
        engine.commands.try_recv().is_err(),
        "the ticket typed while cut was never sent"
    );

    // Quitting the screen never stops the engine; the kill went, so none is reported unsent.
    attached.commands.send(Command::Quit).await.unwrap();
    let unsent = tokio::time::timeout(WAIT, attached.task)
        .await
        .expect("the bridge ends")
        .unwrap();
    assert!(!unsent);
    assert!(engine.commands.try_recv().is_err(), "Quit stays in the client");
}

#[tokio::test]
async fn a_read_token_attaches_and_the_engine_s_refusal_is_shown() {
    let mut engine = start().await;
    let attached = attach::open(remote(engine.addr, Scope::Read))
        .await
        .expect("attaches");
    let mut screen = attached.snapshots.clone();
    // The very first frame already says whose screen this is.
    assert!(
        screen.borrow().attached_to.is_some(),
        "the first frame does not name the engine"
    );
    attached.commands.send(Command::Kill).await.unwrap();
    wait_screen(&mut screen, "the refusal", |s| {
        s.header
            .warnings
            .first()
            .is_some_and(|w| w.contains("scope trade"))
    })
    .await;
    assert!(engine.commands.try_recv().is_err());
}

#[tokio::test]
async fn a_refused_token_or_no_engine_is_one_line_without_the_token() {
    let engine = start().await;
    let bad = Target::Remote(RemoteEngine {
        url: url::Url::parse(&format!("http://{}", engine.addr)).unwrap(),
        token: SecretString::from("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.AAAA"),
    });
    let err = format!("{:#}", attach::open(bad).await.expect_err("refused"));
    assert!(err.contains("refused the token (401"), "{err}");
    assert!(!err.contains("eyJ"), "{err}");
    assert!(!err.contains('\n'), "{err}");

    let free = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let err = format!(
        "{:#}",
        attach::open(remote(free, Scope::Read))
            .await
            .expect_err("nothing there")
    );
    assert!(
        err.starts_with("cannot attach to the engine (http://127.0.0.1:"),
        "{err}"
    );
}

#[tokio::test]
async fn a_rearm_passphrase_is_not_sent_over_plain_tcp_and_the_screen_says_so() {
    let mut engine = start().await;
    let attached = attach::open(remote(engine.addr, Scope::Trade))
        .await
        .expect("attaches");
    let mut screen = attached.snapshots.clone();
    attached
        .commands
        .send(Command::Rearm {
            passphrase: Some(SecretString::from("vault passphrase")),
        })
        .await
        .unwrap();
    assert_eq!(
        next_command(&mut engine).await,
        Command::Rearm { passphrase: None },
        "the engine got the re-arm without the passphrase"
    );
    wait_screen(&mut screen, "why the passphrase stayed here", |s| {
        s.header
            .warnings
            .iter()
            .any(|w| w.starts_with("passphrase not sent"))
    })
    .await;
}

/// A stand-in for the engine's unix socket (the real one serves the API's router there): it
/// sends one snapshot and hands over every text frame it receives.
async fn fake_socket_engine(path: &std::path::Path, snapshot: Snapshot) -> mpsc::UnboundedReceiver<String> {
    let listener = tokio::net::UnixListener::bind(path).unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
        let frame = stream::encode_snapshot(&snapshot).unwrap();
        ws.send(Message::Text(frame.into())).await.unwrap();
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Text(text) = message {
                let _ = tx.send(text.as_str().to_string());
            }
        }
    });
    rx
}

#[tokio::test]
async fn a_local_engine_is_found_by_its_lock_and_reached_on_its_socket() {
    use crbot::domain::Mode;
    use crbot::engine::lock::{EngineLock, socket_path};

    let dir = tempfile::tempdir().unwrap();
    assert!(
        attach::local_engine(dir.path(), Mode::Sim).unwrap().is_none(),
        "a free lock: this process runs the engine itself"
    );
    let _held = EngineLock::try_acquire(dir.path(), Mode::Sim).unwrap();
    let target = attach::local_engine(dir.path(), Mode::Sim)
        .unwrap()
        .expect("the lock is held: attach");
    let socket = socket_path(dir.path(), Mode::Sim);
    assert_eq!(
        target.describe(),
        format!("pid {}, socket {}", std::process::id(), socket.display())
    );

    let snapshot = support::demo::snapshot(chrono::Utc::now().timestamp_millis());
    let mut frames = fake_socket_engine(&socket, snapshot.clone()).await;
    let describe = target.describe();
    let attached = attach::open(target).await.expect("attaches over the socket");
    let mut expected = snapshot.clone();
    expected.attached_to = Some(describe);
    assert_eq!(
        *attached.snapshots.borrow(),
        expected,
        "the engine's, marked as attached"
    );
    // Over the socket a re-arm's passphrase goes with it.
    let rearm = Command::Rearm {
        passphrase: Some(SecretString::from("vault passphrase")),
    };
    attached.commands.send(rearm.clone()).await.unwrap();
    let text = tokio::time::timeout(WAIT, frames.recv()).await.unwrap().unwrap();
    assert_eq!(stream::decode_command(&text).unwrap(), rearm);
}

#[tokio::test]
async fn a_ticket_typed_while_a_reconnection_hangs_is_never_sent_and_the_kill_is() {
    let mut engine = start().await;
    let relay = Relay::start(engine.addr).await;
    let attached = attach::open(remote(relay.addr, Scope::Trade))
        .await
        .expect("attaches");
    let mut screen = attached.snapshots.clone();

    // The link drops and the next attempt hangs: the bridge is inside a connection attempt.
    relay.stall();
    wait_screen(&mut screen, "the disconnection", |s| {
        s.header.warnings.iter().any(|w| w.starts_with("DISCONNECTED"))
    })
    .await;
    tokio::time::timeout(WAIT, async {
        while relay.stalled.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the bridge tried to reconnect");
    attached
        .commands
        .send(Command::SubmitTicket(TicketDraft::default()))
        .await
        .unwrap();
    attached.commands.send(Command::Kill).await.unwrap();
    wait_screen(&mut screen, "the pending kill", |s| {
        s.header.warnings.iter().any(|w| w.starts_with("KILL PENDING"))
    })
    .await;

    // The hung attempt goes through, late: the kill, and nothing else.
    relay.restore();
    assert_eq!(next_command(&mut engine).await, Command::Kill);
    wait_screen(&mut screen, "the halt, live again", |s| {
        s.header.trading.is_halted()
    })
    .await;
    assert_eq!(
        relay.stalled.load(Ordering::SeqCst),
        1,
        "the held attempt is the one that connected"
    );
    assert!(
        engine.commands.try_recv().is_err(),
        "the ticket typed meanwhile was never sent"
    );
}

#[tokio::test]
async fn quitting_while_cut_with_a_kill_pending_reports_it_unsent() {
    let engine = start().await;
    let relay = Relay::start(engine.addr).await;
    let attached = attach::open(remote(relay.addr, Scope::Trade))
        .await
        .expect("attaches");
    let mut screen = attached.snapshots.clone();
    relay.cut();
    wait_screen(&mut screen, "the disconnection", |s| {
        s.header.warnings.iter().any(|w| w.starts_with("DISCONNECTED"))
    })
    .await;
    attached.commands.send(Command::Kill).await.unwrap();
    wait_screen(&mut screen, "the pending kill", |s| {
        s.header.warnings.iter().any(|w| w.starts_with("KILL PENDING"))
    })
    .await;
    drop(attached.commands);
    let unsent = tokio::time::timeout(WAIT, attached.task)
        .await
        .expect("the bridge ends")
        .unwrap();
    assert!(unsent, "the bridge reports the kill it could not send");
    assert!(!engine.snapshots.borrow().header.trading.is_halted());
}
