//! Re-arming from the screen in a mode with keys: `Runtime::run` against the local exchange
//! (labelled `demo`), with a real vault file in a temporary folder. The passphrase is checked
//! by decrypting the vault; only the right one leaves HALTED, and the re-arm is journaled.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engine_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crbot::domain::Mode;
use crbot::engine::snapshot::Command;
use crbot::journal::TradingStateCode;
use crbot::secret::SecretString;
use crbot::vault::VaultContents;
use crbot::vault::format::{self, KdfParams, NONCE_LEN, SALT_LEN};
use crbot::vault::store;
use engine_support::*;

const WAIT: Duration = Duration::from_secs(10);
const PASS: &str = "correct horse battery staple";
const SMALL: KdfParams = KdfParams { m_kib: 8, t: 1, p: 1 };

/// An empty vault sealed with `PASS` (only the passphrase matters to a re-arm).
fn vault_in(dir: &Path, params: KdfParams) -> PathBuf {
    let path = dir.join("vault.crbot");
    let plain = VaultContents::new(now_ms()).to_json().unwrap();
    let bytes = format::seal(
        &SecretString::from(PASS),
        params,
        [7; SALT_LEN],
        [9; NONCE_LEN],
        &plain,
    )
    .unwrap();
    store::write_atomic(&path, &bytes, &store::no_faults).unwrap();
    path
}

fn rearm(pass: &str) -> Command {
    Command::Rearm {
        passphrase: Some(SecretString::from(pass)),
    }
}

async fn halted(c: &mut Console) {
    c.send(Command::Kill).await;
    wait_snapshot(&mut c.snap, WAIT, "HALTED after the kill", is_halted).await;
}

fn latest_state(c: &Console) -> (TradingStateCode, String) {
    let r = c.journal().latest_trading_state().unwrap().unwrap().record;
    (r.state, r.trigger)
}

#[tokio::test]
async fn wrong_passphrase_stays_halted_and_the_right_one_rearms_with_a_journal_record() {
    let ex = exchange().await;
    let keys = tempfile::tempdir().unwrap();
    let vault = vault_in(keys.path(), SMALL);
    let mut c = console_with(
        &ex,
        tempfile::tempdir().unwrap(),
        limits("5"),
        false,
        Mode::Demo,
        Some(vault),
    )
    .await;
    halted(&mut c).await;

    c.send(rearm("correct horse battery stapler")).await;
    let s = wait_snapshot(&mut c.snap, WAIT, "the refusal", |s| {
        logged(s, "re-arm refused: wrong passphrase")
    })
    .await;
    assert!(is_halted(&s), "{:?}", s.header.trading);
    assert_eq!(latest_state(&c).0, TradingStateCode::Halted);
    assert!(
        !s.log.iter().any(|l| l.text.contains("horse")),
        "the passphrase is never logged"
    );

    c.send(rearm(PASS)).await;
    wait_snapshot(&mut c.snap, WAIT, "ACTIVE after the re-arm", is_active).await;
    assert_eq!(latest_state(&c), (TradingStateCode::Active, "REARM".to_string()));
    c.stop().await;
}

#[tokio::test]
async fn rearm_without_a_passphrase_in_a_mode_with_keys_is_refused() {
    let ex = exchange().await;
    let keys = tempfile::tempdir().unwrap();
    let vault = vault_in(keys.path(), SMALL);
    let mut c = console_with(
        &ex,
        tempfile::tempdir().unwrap(),
        limits("5"),
        false,
        Mode::Demo,
        Some(vault),
    )
    .await;
    halted(&mut c).await;

    c.send(Command::Rearm { passphrase: None }).await;
    let s = wait_snapshot(&mut c.snap, WAIT, "the refusal", |s| {
        logged(s, "re-arm refused: the vault passphrase is required")
    })
    .await;
    assert!(is_halted(&s));
    assert_eq!(latest_state(&c).0, TradingStateCode::Halted);
    c.stop().await;
}

#[tokio::test]
async fn a_kill_while_the_passphrase_is_checked_wins_over_the_rearm() {
    let ex = exchange().await;
    let keys = tempfile::tempdir().unwrap();
    // The real parameters: the check takes long enough for the kill to arrive during it.
    let vault = vault_in(keys.path(), KdfParams::DEFAULT);
    let mut c = console_with(
        &ex,
        tempfile::tempdir().unwrap(),
        limits("5"),
        false,
        Mode::Demo,
        Some(vault),
    )
    .await;
    halted(&mut c).await;

    c.send(rearm(PASS)).await;
    c.send(Command::Kill).await;
    let s = wait_snapshot(&mut c.snap, WAIT, "the re-arm dropped", |s| {
        logged(s, "re-arm dropped")
    })
    .await;
    assert!(is_halted(&s), "{:?}", s.header.trading);
    assert_eq!(latest_state(&c).0, TradingStateCode::Halted);
    c.stop().await;
}

#[tokio::test]
async fn keys_from_the_environment_rearm_with_a_warning_that_nothing_was_checked() {
    let ex = exchange().await;
    let mut c = console_with(
        &ex,
        tempfile::tempdir().unwrap(),
        limits("5"),
        false,
        Mode::Demo,
        None,
    )
    .await;
    halted(&mut c).await;

    c.send(Command::Rearm { passphrase: None }).await;
    let s = wait_snapshot(&mut c.snap, WAIT, "ACTIVE after the re-arm", is_active).await;
    assert!(logged(&s, "no passphrase was checked"));
    assert_eq!(latest_state(&c), (TradingStateCode::Active, "REARM".to_string()));
    c.stop().await;
}

#[tokio::test]
async fn a_mode_without_keys_rearms_on_the_confirmation_alone() {
    let ex = exchange().await;
    let mut c = console(&ex, limits("5"), false).await;
    halted(&mut c).await;

    c.send(Command::Rearm { passphrase: None }).await;
    let s = wait_snapshot(&mut c.snap, WAIT, "ACTIVE after the re-arm", is_active).await;
    assert!(!logged(&s, "no passphrase was checked"));
    assert_eq!(latest_state(&c), (TradingStateCode::Active, "REARM".to_string()));
    c.stop().await;
}
