//! The posture's backup schedule: the console backs its journal up by itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engine_support;

use std::time::Duration;

use crbot::domain::Mode;
use crbot::engine::core::Core;
use crbot::engine::runtime::Runtime;
use crbot::journal::{Journal, TicketSource};
use engine_support::*;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn the_console_backs_the_journal_up_on_its_schedule() {
    let ex = exchange().await;
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&journal_path(dir.path()), Mode::Sim).unwrap();
    let mut core = Core::restore(journal, Mode::Sim, limits("5"), TicketSource::Tui, now_ms()).unwrap();
    core.backup_every_ms = Some(300);
    let (snap_tx, _snap) = watch::channel(core.state.snapshot(now_ms()));
    let (_cmd, cmd_rx) = mpsc::channel(8);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(Runtime::run(
        core,
        ex.rest.clone(),
        cmd_rx,
        snap_tx,
        cancel.clone(),
        false,
        None,
    ));
    let backups = dir.path().join("backups");
    // Finished copies only: the backup runs beside the engine loop, so the next one may be in
    // progress under its temporary name (`….db.tmp-PID`, renamed into place when complete).
    let finished = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(&backups)
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "db"))
                    .collect()
            })
            .unwrap_or_default()
    };
    wait_until(Duration::from_secs(10), "two scheduled backups", || async {
        finished().len() >= 2
    })
    .await;
    // Each is a journal of the same mode that opens.
    for path in finished() {
        Journal::open(&path, Mode::Sim).expect("a backup is a valid journal");
    }
    cancel.cancel();
    let _ = task.await;
}
