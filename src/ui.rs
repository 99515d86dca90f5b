//! The console screen: panels, the order ticket, dialogs and the kill key, drawn
//! from the engine's [`Snapshot`] and turned into [`Command`]s.
//!
//! Owns: the Elm-shaped loop — [`App`] (screen-only state), [`Action`] (what a key means, found
//! through the [`Keymap`], which is data), the pure [`update`], the side-effect-free [`view`] —
//! and the terminal: set-up, restore on every exit path (panics included), redraw only on a
//! change and at most ~30 times a second. Must not: hold trading state, read a clock for what
//! it draws, block on the engine or the network, or write to stdout while the screen is up.
//! The UI never imports the exchange client; it speaks only [`Command`].

pub mod action;
pub mod app;
pub mod command;
pub mod format;
pub mod history;
pub mod keymap;
pub mod pace;
pub mod theme;
pub mod view;
pub mod watchlist;

use std::collections::VecDeque;
use std::io::Write;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use crossterm::event::{Event, KeyEventKind};
use futures_util::{Stream, StreamExt};
use ratatui::Terminal;
use ratatui::backend::{Backend, CrosstermBackend, TestBackend};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

pub use action::Action;
pub use app::{App, Dialog, Effect, Focus, Tab, update};
pub use keymap::{Context, KeyError, KeyPress, Keymap};
pub use theme::Theme;
pub use view::view;

use crate::engine::snapshot::{Command, Snapshot};

/// The shortest time between two frames: ~30 fps. (Not `from_secs_f64(30.0)`, which is 30 s.)
pub const FRAME_INTERVAL: Duration = Duration::from_millis(33);

/// How the screen is set up for one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiConfig {
    pub theme: Theme,
    pub keymap: Keymap,
    /// Ring the terminal bell on a fill, a rejection, a limit at 80%.
    pub bell: bool,
    /// Take the mouse (click to focus and select, wheel to scroll). `CRBOT_MOUSE=off` leaves
    /// it to the terminal, for selecting text with it.
    pub mouse: bool,
    pub frame_interval: Duration,
    /// The shortest time between two showings of the order book and the trade tape
    /// ([`pace`], `CRBOT_DETAIL_MS`); zero shows each snapshot's.
    pub detail_interval: Duration,
    /// The theme file's palette (`:theme custom`), when the config folder has a usable one.
    pub custom_palette: Option<theme::Palette>,
    /// Shown on the status line at start: why the chosen theme could not be used.
    pub theme_note: Option<String>,
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            theme: Theme::default(),
            keymap: Keymap::default(),
            bell: true,
            mouse: true,
            frame_interval: FRAME_INTERVAL,
            detail_interval: pace::DETAIL_INTERVAL,
            custom_palette: None,
            theme_note: None,
        }
    }
}

impl UiConfig {
    /// From the environment: `NO_COLOR`, `CRBOT_KILL_KEY` (e.g. `ctrl-k`, `f12`),
    /// `CRBOT_BELL` (`false`/`0`/`off` silences it), and `--ascii`.
    pub fn from_env(ascii: bool) -> Result<UiConfig, KeyError> {
        let kill = match std::env::var("CRBOT_KILL_KEY") {
            Ok(text) if !text.trim().is_empty() => KeyPress::parse_kill_key(&text)?,
            _ => KeyPress::ctrl('k'),
        };
        let bell = !matches!(
            std::env::var("CRBOT_BELL")
                .map(|v| v.trim().to_ascii_lowercase())
                .as_deref(),
            Ok("false" | "0" | "off" | "no")
        );
        let mouse = !matches!(
            std::env::var("CRBOT_MOUSE")
                .map(|v| v.trim().to_ascii_lowercase())
                .as_deref(),
            Ok("false" | "0" | "off" | "no")
        );
        Ok(UiConfig {
            theme: Theme::from_env(ascii),
            keymap: Keymap::with_kill_key(kill),
            bell,
            mouse,
            frame_interval: FRAME_INTERVAL,
            detail_interval: pace::DETAIL_INTERVAL,
            custom_palette: None,
            theme_note: None,
        })
    }
}

/// A backend that can ring the terminal bell. The bell goes through the terminal's own writer,
/// never through `println!`.
pub trait Ring {
    fn ring(&mut self) -> std::io::Result<()>;
}

impl<W: Write> Ring for CrosstermBackend<W> {
    fn ring(&mut self) -> std::io::Result<()> {
        self.write_all(b"\x07")?;
        Write::flush(self)
    }
}

impl Ring for TestBackend {
    fn ring(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What a run loop saw, for tests and for the lead's logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunStats {
    pub frames: u64,
    pub bells: u64,
}

/// The screen's loop, generic over the backend so tests drive it with `TestBackend`.
///
/// Draws only after a change (a new snapshot, a key, a resize) and at most once per
/// `config.frame_interval`; a burst of snapshots becomes one frame. Only key *presses* count.
/// Commands go out with `try_send`; if the engine's queue is full they wait in an outbox that
/// is drained without blocking (the kill command jumps the queue). Returns when the trader
/// confirms quit, or when the input ends.
pub async fn run<B, S>(
    terminal: &mut Terminal<B>,
    mut snapshots: watch::Receiver<Snapshot>,
    commands: mpsc::Sender<Command>,
    input: S,
    config: UiConfig,
) -> anyhow::Result<RunStats>
where
    B: Backend + Ring,
    B::Error: std::error::Error + Send + Sync + 'static,
    S: Stream<Item = Event>,
{
    let mut input = pin!(input);
    let mut snap = snapshots.borrow_and_update().clone();
    let mut app = App::new(config, &snap);
    let mut outbox: VecDeque<Command> = VecDeque::new();
    let mut stats = RunStats::default();
    let mut dirty = true;
    let mut frames = pace::FramePace::default();
    let mut engine_alive = true;
    let mut pacer = pace::DetailPacer::default();
    loop {
        let due = frames.due(dirty, app.config.frame_interval, Instant::now());
        if due.is_some_and(|t| t <= Instant::now()) {
            let started = Instant::now();
            terminal
                .draw(|frame| view(&app, &snap, frame))
                .context("drawing the screen")?;
            stats.frames += 1;
            frames.drawn(started);
            dirty = false;
        }
        let next_frame = frames
            .due(dirty, app.config.frame_interval, Instant::now())
            .unwrap_or_else(Instant::now);
        // A held book is shown by the next snapshot after its time; the timer, two frames
        // later, is for a market gone quiet. Released on its own frame while snapshots flow,
        // it would shift the screen's phase against the engine's publishing.
        let detail_due = pacer
            .due(app.config.detail_interval)
            .map(|t| t + 2 * app.config.frame_interval);
        let effects = tokio::select! {
            biased;
            event = input.next() => match event {
                None => return Ok(stats),
                Some(Event::Key(key)) if key.kind == KeyEventKind::Press => {
                    dirty = true;
                    match app.action_for(KeyPress::from_event(&key)) {
                        Some(action) => update(&mut app, action, &snap),
                        None => vec![],
                    }
                }
                Some(Event::Mouse(m)) => {
                    dirty = true;
                    app::mouse(&mut app, m, &snap)
                }
                Some(Event::Resize(..)) => {
                    terminal.autoresize().context("resizing the screen")?;
                    dirty = true;
                    vec![]
                }
                Some(_) => vec![],
            },
            changed = snapshots.changed(), if engine_alive => match changed {
                Ok(()) => {
                    let mut next = snapshots.borrow_and_update().clone();
                    pacer.arrive(&snap, &mut next, app.config.detail_interval, Instant::now());
                    snap = next;
                    dirty = true;
                    frames.snapshot_arrived();
                    update(&mut app, Action::SnapshotArrived, &snap)
                }
                Err(_) => {
                    engine_alive = false;
                    app.status = Some("the engine stopped: nothing is being updated; q to quit".into());
                    dirty = true;
                    vec![]
                }
            },
            permit = commands.reserve(), if !outbox.is_empty() => {
                match permit {
                    Ok(permit) => {
                        if let Some(cmd) = outbox.pop_front() {
                            permit.send(cmd);
                        }
                    }
                    Err(_) => outbox.clear(),
                }
                vec![]
            }
            _ = tokio::time::sleep_until(next_frame), if dirty => vec![],
            // The book and tape held back by the pacer, shown when due.
            _ = tokio::time::sleep_until(detail_due.unwrap_or(next_frame)), if detail_due.is_some() => {
                dirty |= pacer.release(&mut snap, Instant::now());
                vec![]
            }
        };
        for effect in effects {
            match effect {
                Effect::Send(cmd) => send(&commands, &mut outbox, cmd),
                Effect::Bell => {
                    if app.config.bell {
                        // A bell that cannot be written is not worth stopping the screen for.
                        let _ = terminal.backend_mut().ring();
                        stats.bells += 1;
                    }
                }
                Effect::Quit => {
                    // Hand over what is still queued without waiting for the engine.
                    while let Some(cmd) = outbox.pop_front() {
                        if commands.try_send(cmd).is_err() {
                            break;
                        }
                    }
                    return Ok(stats);
                }
            }
        }
    }
}

/// Sends now if the queue has room, else queues (the kill command first).
fn send(commands: &mpsc::Sender<Command>, outbox: &mut VecDeque<Command>, cmd: Command) {
    if !outbox.is_empty() {
        if cmd == Command::Kill {
            outbox.push_front(cmd)
        } else {
            outbox.push_back(cmd)
        }
        return;
    }
    match commands.try_send(cmd) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(cmd)) => outbox.push_back(cmd),
        Err(mpsc::error::TrySendError::Closed(_)) => {}
    }
}

/// Restores the terminal when dropped: on return, on `?`, and during unwinding.
#[derive(Debug)]
struct RestoreGuard;

impl Drop for RestoreGuard {
    fn drop(&mut self) {
        release_mouse();
        ratatui::restore();
    }
}

/// Gives the mouse back to the terminal (harmless when it was never taken).
fn release_mouse() {
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
}

/// Reads terminal events on a thread of its own (crossterm's reader blocks) until dropped.
#[derive(Debug)]
struct InputReader {
    stop: Arc<AtomicBool>,
}

impl Drop for InputReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn spawn_input_reader() -> (impl Stream<Item = Event>, InputReader) {
    let (tx, rx) = mpsc::unbounded_channel();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            // Poll with a timeout so the thread notices `stop` soon after the screen closes.
            match crossterm::event::poll(Duration::from_millis(100)) {
                Ok(true) => match crossterm::event::read() {
                    Ok(event) => {
                        if tx.send(event).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                },
                Ok(false) => {}
                Err(_) => break,
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) });
    (stream, InputReader { stop })
}

/// Takes over the terminal, runs the screen, and gives the terminal back on every exit path.
///
/// `ratatui::try_init` enters the alternate screen and raw mode and installs a panic hook that
/// restores the terminal *before* the previous hook prints the panic, so install any other
/// hook (color-eyre, tracing) before calling this.
pub async fn run_terminal(
    snapshots: watch::Receiver<Snapshot>,
    commands: mpsc::Sender<Command>,
    config: UiConfig,
) -> anyhow::Result<RunStats> {
    if config.mouse {
        // ratatui's panic hook (installed next) restores the screen, then calls this one: the
        // mouse goes back too, so a panic never leaves the shell reading mouse reports.
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            release_mouse();
            previous(info);
        }));
    }
    let mut terminal = ratatui::try_init().context("setting up the terminal")?;
    let _restore = RestoreGuard;
    if config.mouse {
        crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture)
            .context("taking the mouse")?;
    }
    let (input, _reader) = spawn_input_reader();
    run(&mut terminal, snapshots, commands, input, config).await
}
