//! The run loop against `TestBackend`: key presses only, commands out without blocking (the
//! kill first), redraw only after a change and at most ~30 times a second, quit only after
//! the confirmation. Time is tokio's paused clock, so nothing here sleeps for real.

mod support {
    pub mod demo;
}

use std::time::Duration;

use crbot::engine::snapshot::{Command, Snapshot};
use crbot::ui::{RunStats, UiConfig, run};
use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use futures_util::{Stream, StreamExt, stream};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use support::demo;
use tokio::sync::{mpsc, watch};

const NOW: i64 = 1_764_333_296_000;

fn key(c: char) -> Event {
    Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

fn ctrl(c: char) -> Event {
    Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

fn release(c: char) -> Event {
    Event::Key(KeyEvent::new_with_kind(
        KeyCode::Char(c),
        KeyModifiers::NONE,
        KeyEventKind::Release,
    ))
}

/// Each event after its delay.
fn script(steps: Vec<(u64, Event)>) -> impl Stream<Item = Event> {
    stream::iter(steps).then(|(delay_ms, event)| async move {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        event
    })
}

async fn run_script(
    steps: Vec<(u64, Event)>,
    snapshots: watch::Receiver<Snapshot>,
    commands: mpsc::Sender<Command>,
) -> (RunStats, Terminal<TestBackend>) {
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let stats = run(
        &mut terminal,
        snapshots,
        commands,
        script(steps),
        UiConfig::default(),
    )
    .await
    .unwrap();
    (stats, terminal)
}

fn drain(rx: &mut mpsc::Receiver<Command>) -> Vec<Command> {
    let mut out = Vec::new();
    while let Ok(c) = rx.try_recv() {
        out.push(c);
    }
    out
}

#[tokio::test(start_paused = true)]
async fn key_releases_are_ignored_and_quit_needs_the_confirmation() {
    let (_tx, snaps) = watch::channel(demo::snapshot(NOW));
    let (cmd_tx, mut cmd_rx) = mpsc::channel(16);
    // A release of `q` must not open the quit dialog, so the `y` after it means nothing.
    let (_, _) = run_script(
        vec![(0, release('q')), (0, key('y'))],
        snaps.clone(),
        cmd_tx.clone(),
    )
    .await;
    assert!(drain(&mut cmd_rx).is_empty());

    let (_, _) = run_script(vec![(0, ctrl('k')), (0, key('q')), (0, key('y'))], snaps, cmd_tx).await;
    assert_eq!(drain(&mut cmd_rx), vec![Command::Kill, Command::Quit]);
}

#[tokio::test(start_paused = true)]
async fn a_quiet_screen_draws_nothing() {
    let (_tx, snaps) = watch::channel(demo::snapshot(NOW));
    let (cmd_tx, _cmd_rx) = mpsc::channel(16);
    // Ten quiet seconds, then `q` (one frame for the dialog) and `y`.
    let (stats, _) = run_script(vec![(10_000, key('q')), (1_000, key('y'))], snaps, cmd_tx).await;
    assert_eq!(stats.frames, 2, "the first frame and the quit dialog only");
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_snapshots_is_coalesced_to_at_most_30_frames_a_second() {
    let (tx, snaps) = watch::channel(demo::snapshot(NOW));
    let (cmd_tx, _cmd_rx) = mpsc::channel(16);
    tokio::spawn(async move {
        for i in 0..1000 {
            tokio::time::sleep(Duration::from_millis(1)).await;
            if tx.send(demo::snapshot(NOW + i)).is_err() {
                break;
            }
        }
        // Keep the sender alive until the screen is gone.
        tx.closed().await;
    });
    let (stats, _) = run_script(vec![(1_000, key('q')), (0, key('y'))], snaps, cmd_tx).await;
    // 1000 snapshots over ~1 s: at most one frame per 33 ms, plus the first and the dialog.
    assert!(stats.frames <= 33, "{} frames", stats.frames);
    assert!(
        stats.frames >= 10,
        "{} frames: the screen must still follow the market",
        stats.frames
    );
}

#[tokio::test(start_paused = true)]
async fn the_kill_command_jumps_a_full_queue_and_nothing_blocks() {
    let (_tx, snaps) = watch::channel(demo::snapshot(NOW));
    let (cmd_tx, mut cmd_rx) = mpsc::channel(1);
    cmd_tx.try_send(Command::Rearm { passphrase: None }).unwrap(); // the engine is busy: the queue is full
    let reader = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut got = Vec::new();
        while let Some(c) = cmd_rx.recv().await {
            got.push(c);
        }
        got
    });
    // `t` opens a ticket (a preview is queued), then the kill key; a second later the ticket
    // is closed and the screen quits.
    let esc = Event::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
    let steps = vec![
        (0, key('t')),
        (0, ctrl('k')),
        (1_000, esc),
        (0, key('q')),
        (0, key('y')),
    ];
    let (_, terminal) = run_script(steps, snaps, cmd_tx).await;
    let got = reader.await.unwrap();
    let kill = got.iter().position(|c| *c == Command::Kill).unwrap();
    let preview = got
        .iter()
        .position(|c| matches!(c, Command::PreviewTicket(_)))
        .unwrap();
    assert!(
        kill < preview,
        "kill must leave before the queued preview: {got:?}"
    );
    assert_eq!(got.last(), Some(&Command::Quit));
    // The frame drawn while the queue was full already showed HALTED.
    assert!(format!("{}", terminal.backend()).contains("HALTED"));
}

#[tokio::test(start_paused = true)]
async fn the_screen_follows_new_snapshots() {
    let (tx, snaps) = watch::channel(demo::snapshot(NOW));
    let (cmd_tx, _cmd_rx) = mpsc::channel(16);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = tx.send(demo::killing(NOW + 1000));
        tx.closed().await;
    });
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let input = script(vec![(500, key('?')), (0, Event::FocusLost)]).chain(stream::pending());
    let fut = run(&mut terminal, snaps, cmd_tx, input, UiConfig::default());
    let _ = tokio::time::timeout(Duration::from_secs(2), fut).await;
    let screen = format!("{}", terminal.backend());
    assert!(screen.contains("HALTED"), "{screen}");
    assert!(
        screen.contains("12:34:57 UTC"),
        "the clock comes from the snapshot: {screen}"
    );
}

/// `demo::snapshot` with the best bid of the selected symbol's book at `bid`.
fn with_best_bid(now_ms: i64, bid: &str) -> Snapshot {
    let mut snap = demo::snapshot(now_ms);
    snap.focus.book.bids[0].price = bid.parse().unwrap();
    snap
}

/// The 160×48 screen (book panel on the Market tab) after snapshots with the best bid at
/// 3111.11 (at 100 ms) and 3122.22 (at 150 ms), when the input ends at `end_ms`.
async fn book_after(end_ms: u64) -> String {
    let (tx, snaps) = watch::channel(demo::snapshot(NOW));
    let (cmd_tx, _cmd_rx) = mpsc::channel(16);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = tx.send(with_best_bid(NOW + 100, "3111.11"));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = tx.send(with_best_bid(NOW + 150, "3122.22"));
        tx.closed().await;
    });
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).unwrap();
    run(
        &mut terminal,
        snaps,
        cmd_tx,
        script(vec![(end_ms, Event::FocusLost)]),
        UiConfig::default(),
    )
    .await
    .unwrap();
    format!("{}", terminal.backend())
}

#[tokio::test(start_paused = true)]
async fn the_book_is_shown_anew_at_most_twice_a_second_and_the_newest_is_never_lost() {
    // The first change shows at once; one 50 ms later is held back...
    let early = book_after(200).await;
    assert!(early.contains("3111.11"), "{early}");
    assert!(!early.contains("3122.22"), "held for 500 ms: {early}");
    // ...and shown when its time comes, although no snapshot follows it.
    let late = book_after(700).await;
    assert!(late.contains("3122.22"), "{late}");
    assert!(!late.contains("3111.11"), "{late}");
}
