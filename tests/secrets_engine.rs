//! The engine's re-arm when its keys come from a secrets service, step by step with no
//! exchange: the re-arm asks for the keys to be fetched again (`Effect::FetchKeys`, no
//! passphrase), re-arms when they were (`Answer::KeysFetched` Ok), and stays halted when they
//! could not be read or when the trading state changed meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crbot::domain::Mode;
use crbot::engine::core::Core;
use crbot::engine::machine::{Answer, Effect, Engine, Input};
use crbot::engine::snapshot::Command;
use crbot::journal::{Journal, TicketSource};
use crbot::risk::{Limits, TradingState};

const T0: i64 = 1_764_000_000_000;

fn halted_testnet_engine(dir: &std::path::Path) -> Engine {
    let journal = Journal::open(&dir.join("journal-testnet.db"), Mode::Testnet).unwrap();
    let core = Core::restore(journal, Mode::Testnet, Limits::default(), TicketSource::Tui, T0).unwrap();
    let mut engine = Engine::new(core, false, None, T0);
    engine.refetch_keys_on_rearm();
    engine.update(Input::Command(Command::Kill), T0);
    assert!(halted(&engine), "halted by the kill");
    engine
}

/// The re-arm's request: the state it was asked in.
fn fetch_request(effects: &[Effect]) -> (i64, TradingState) {
    let found: Vec<(i64, TradingState)> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::FetchKeys { state_row, trading } => Some((*state_row, trading.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(found.len(), 1, "one fetch: {effects:?}");
    found[0].clone()
}

fn halted(engine: &Engine) -> bool {
    matches!(engine.core().state.trading, TradingState::Halted { .. })
}

fn logged(engine: &Engine, text: &str) -> bool {
    engine.snapshot(T0).log.iter().any(|l| l.text.contains(text))
}

#[test]
fn a_re_arm_fetches_the_keys_first_and_re_arms_only_when_they_were_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = halted_testnet_engine(dir.path());

    // No passphrase is asked: the keys are fetched again.
    let fx = engine.update(Input::Command(Command::Rearm { passphrase: None }), T0 + 1);
    let (state_row, trading) = fetch_request(&fx);
    assert!(!fx.iter().any(|e| matches!(e, Effect::CheckPassphrase { .. })));
    assert!(halted(&engine), "not before the answer");

    // The secret could not be read: still halted, the reason in the log.
    engine.update(
        Input::Answer(Answer::KeysFetched {
            verdict: Err("aws: the secret AWS_SECRET_ID=x does not exist: create it".into()),
            state_row,
            trading: trading.clone(),
        }),
        T0 + 2,
    );
    assert!(halted(&engine));
    assert!(
        logged(&engine, "re-arm refused: aws: the secret"),
        "the reason is logged"
    );

    // Read (and installed by the executor): re-armed, saying where the keys came from.
    let fx = engine.update(Input::Command(Command::Rearm { passphrase: None }), T0 + 3);
    let (state_row, trading) = fetch_request(&fx);
    engine.update(
        Input::Answer(Answer::KeysFetched {
            verdict: Ok("aws (AWS_SECRET_ID=crbot/binance/test)".into()),
            state_row,
            trading,
        }),
        T0 + 4,
    );
    assert_eq!(engine.core().state.trading, TradingState::Active);
    assert!(logged(
        &engine,
        "keys fetched again from aws (AWS_SECRET_ID=crbot/binance/test)"
    ));
}

#[test]
fn keys_fetched_after_the_trading_state_changed_do_not_re_arm() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = halted_testnet_engine(dir.path());
    let fx = engine.update(Input::Command(Command::Rearm { passphrase: None }), T0 + 1);
    let (_, trading) = fetch_request(&fx);
    // A state row other than the one the re-arm was asked in (a kill meanwhile).
    engine.update(
        Input::Answer(Answer::KeysFetched {
            verdict: Ok("aws (AWS_SECRET_ID=x)".into()),
            state_row: -1,
            trading,
        }),
        T0 + 2,
    );
    assert!(halted(&engine));
    assert!(logged(&engine, "re-arm dropped"));
}

/// The screen asks the vault passphrase for a re-arm only when the keys came from the vault:
/// with a secrets service the dialog would ask for a passphrase nobody checks.
#[test]
fn the_snapshot_says_whether_a_rearm_needs_the_vault_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let engine = halted_testnet_engine(dir.path());
    assert!(!engine.snapshot(T0).rearm_needs_passphrase, "keys from a service");

    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("journal-testnet.db"), Mode::Testnet).unwrap();
    let core = Core::restore(journal, Mode::Testnet, Limits::default(), TicketSource::Tui, T0).unwrap();
    let engine = Engine::new(core, false, Some(dir.path().join("vault.crbot")), T0);
    assert!(engine.snapshot(T0).rearm_needs_passphrase, "keys from the vault");

    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("journal-sim.db"), Mode::Sim).unwrap();
    let core = Core::restore(journal, Mode::Sim, Limits::default(), TicketSource::Tui, T0).unwrap();
    let engine = Engine::new(core, false, Some(dir.path().join("vault.crbot")), T0);
    assert!(!engine.snapshot(T0).rearm_needs_passphrase, "sim has no keys");
}
