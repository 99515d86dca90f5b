//! A limit loosened from the screen past the configuration lasts until the next start (the
//! tighter of the two is taken then): the header says so while it is in force, and says
//! nothing for a change that survives a restart.
#![allow(clippy::unwrap_used)]

mod machine_support;

use crbot::engine::snapshot::{Command, LimitName};
use crbot::risk::Limits;
use machine_support::*;
use rust_decimal::Decimal;

fn until_restart(s: &Script) -> Vec<String> {
    s.snapshot()
        .header
        .warnings
        .into_iter()
        .filter(|w| w.contains("until restart"))
        .collect()
}

fn change(s: &mut Script, name: LimitName, value: i64) {
    s.command(Command::ProposeLimit {
        name,
        value: Decimal::from(value),
    });
    if let Some(pending) = s.snapshot().limit_change_pending {
        s.command(Command::ConfirmLimit {
            typed: pending.phrase,
        });
    }
}

fn daily(s: &Script) -> Decimal {
    s.snapshot().limits.daily_loss_limit_pct
}

#[test]
fn a_loosening_past_the_configuration_says_until_restart_and_is_gone_after_one() {
    let mut s = Script::started(Limits::default(), false, usdt_only_balances());
    assert!(until_restart(&s).is_empty());
    change(&mut s, LimitName::DailyLoss, 7);
    assert_eq!(daily(&s), Decimal::from(7));
    assert_eq!(
        until_restart(&s),
        vec!["daily 7% until restart (config 5%)".to_string()]
    );
    change(&mut s, LimitName::TradesPerDay, 12);
    assert_eq!(
        until_restart(&s),
        vec!["daily 7% until restart (config 5%), trades 12 until restart (config 10)".to_string()]
    );

    let s = s.restarted(1_000, Limits::default(), false);
    assert_eq!(
        daily(&s),
        Decimal::from(5),
        "the configuration's tighter value again"
    );
    assert!(until_restart(&s).is_empty());
}

#[test]
fn a_change_within_the_configuration_survives_a_restart_and_says_nothing() {
    let mut s = Script::started(Limits::default(), false, usdt_only_balances());
    change(&mut s, LimitName::DailyLoss, 3);
    change(&mut s, LimitName::DailyLoss, 4);
    assert_eq!(daily(&s), Decimal::from(4));
    assert!(until_restart(&s).is_empty());
    let s = s.restarted(1_000, Limits::default(), false);
    assert_eq!(daily(&s), Decimal::from(4));
    assert!(until_restart(&s).is_empty());
}

fn usdt_only_balances() -> Vec<crbot::domain::Balance> {
    vec![balance("USDT", "10000", "0")]
}
