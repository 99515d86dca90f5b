//! Scripted key presses for the screen's tests: a key through the keymap and `update`, typed
//! text, and the commands the effects send. Pure: `App` + `update` with fixed snapshots.

// Each test file includes this module and uses a different part of it.
#![allow(dead_code)]

use crbot::engine::snapshot::{Command, Snapshot};
use crbot::ui::{App, Effect, KeyPress, update};

/// One key, as the run loop handles it: its action (if the keymap has one) through `update`.
pub fn press(app: &mut App, snap: &Snapshot, key: KeyPress) -> Vec<Effect> {
    match app.action_for(key) {
        Some(action) => update(app, action, snap),
        None => vec![],
    }
}

/// Each character of `text`, pressed in turn.
pub fn type_text(app: &mut App, snap: &Snapshot, text: &str) -> Vec<Effect> {
    text.chars()
        .flat_map(|c| press(app, snap, KeyPress::ch(c)))
        .collect()
}

/// The commands among `effects`, in order.
pub fn sent(effects: &[Effect]) -> Vec<Command> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}
