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
