//! A slow backup never holds up the kill switch: backups run off the engine loop.
//!
//! Alone in its test binary because it arms the `backup_slow` failpoint, which the process
//! reads once from its environment: every backup in this process stalls for seconds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engine_support;

use std::time::Duration;

use crbot::domain::Mode;
use crbot::engine::backup;
use crbot::engine::core::Core;
use crbot::engine::runtime::Runtime;
use crbot::engine::snapshot::Command;
use crbot::journal::{EventKind, Journal, TicketSource};
use engine_support::*;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

fn backup_events(journal: &Journal) -> usize {
    journal
        .recent_events(500)
        .unwrap()
        .iter()
        .filter(|e| e.record.event_kind() == Some(EventKind::Backup))
        .count()
}

#[tokio::test]
async fn a_kill_during_a_slow_scheduled_backup_does_not_wait_for_it() {
    // SAFETY: set before anything in this process reads the environment on another thread:
    // the test runtime is single-threaded and nothing has been spawned yet.
    unsafe { std::env::set_var(crbot::failpoint::ENV, "backup_slow") };
    let ex = exchange().await;
    // The journal away from the data folder, as `DATABASE_URL` may put it.
    let data = tempfile::tempdir().unwrap();
    let elsewhere = data.path().join("elsewhere");
    let journal_path = elsewhere.join("journal-sim.db");
    let journal = Journal::open(&journal_path, Mode::Sim).unwrap();
    let mut core = Core::restore(journal, Mode::Sim, limits("5"), TicketSource::Tui, now_ms()).unwrap();
    core.backup_every_ms = Some(200);
    core.backup_dir = Some(backup::folder(data.path()));
    let (snap_tx, mut snap) = watch::channel(core.state.snapshot(now_ms()));
    let (cmd, cmd_rx) = mpsc::channel(8);
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

    // The scheduled backup has started (it creates its folder, then stalls for seconds).
    let backups = backup::folder(data.path());
    wait_until(
        Duration::from_secs(10),
        "the scheduled backup started",
        || async { backups.exists() },
    )
    .await;
    let reader = Journal::open(&journal_path, Mode::Sim).unwrap();
    assert_eq!(backup_events(&reader), 0, "the backup is still being written");

    cmd.send(Command::Kill).await.unwrap();
    wait_snapshot(
        &mut snap,
        Duration::from_secs(3),
        "HALTED and the sweep done",
        |s| is_halted(s) && s.kill.as_ref().is_some_and(|k| k.done),
    )
    .await;
    assert_eq!(
        backup_events(&reader),
        0,
        "the kill finished while the backup it would have waited behind was still running"
    );

    // Both backups (the scheduled one, the one after the kill) land and are journaled, in
    // the data folder's `backups`, not beside the journal.
    wait_until(Duration::from_secs(20), "two backups journaled", || async {
        backup_events(&reader) >= 2
    })
    .await;
    assert!(!elsewhere.join("backups").exists());
    for e in reader.recent_events(500).unwrap() {
        if e.record.event_kind() == Some(EventKind::Backup) {
            let copy = std::path::PathBuf::from(&e.record.detail);
            assert_eq!(copy.parent(), Some(backups.as_path()), "{copy:?}");
            Journal::open_existing(&copy, Mode::Sim).expect("a backup is a valid journal");
        }
    }
    cancel.cancel();
    let _ = task.await;
}
