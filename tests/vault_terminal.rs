//! The passphrase prompt on a real terminal (tmux): nothing typed is echoed, backspace edits
//! the answer, the terminal is back to normal (echo on) afterwards, and the vault opens with
//! the edited passphrase.
#![allow(clippy::unwrap_used)]

mod support {
    pub mod tmux;
}

use std::time::Duration;

use crbot::vault::{ScriptedSource, unlock_contents};
use support::tmux::Tmux;

#[test]
fn the_terminal_prompt_echoes_nothing_edits_with_backspace_and_restores_the_terminal() {
    let home = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_crbot");
    let command = format!(
        "CRBOT_VAULT_KDF=8,1,1 {bin} --home {} vault init; echo exit=$?; read -r line; echo got=$line; sleep 60",
        home.path().display()
    );
    let t = Tmux::start("vault-prompt", 100, 20, &command, &[], home.path());
    t.wait_for("the first prompt", Duration::from_secs(30), |s| {
        s.contains("New vault passphrase:")
    });
    t.type_text("terminal typed passphrase onX");
    t.keys(&["BSpace"]);
    t.type_text("e");
    t.keys(&["Enter"]);
    t.wait_for("the confirmation prompt", Duration::from_secs(10), |s| {
        s.contains("Repeat it:")
    });
    t.type_text("terminal typed passphrase one");
    t.keys(&["Enter"]);
    let screen = t.wait_for("the exit code", Duration::from_secs(30), |s| s.contains("exit="));
    assert!(screen.contains("exit=0"), "{screen}");
    assert!(
        !screen.contains("typed passphrase"),
        "the passphrase was echoed:\n{screen}"
    );
    // Echo is back on: a line typed to the shell's `read` shows as it is typed.
    t.type_text("visible again");
    t.keys(&["Enter"]);
    let screen = t.wait_for("the shell's echo", Duration::from_secs(10), |s| {
        s.contains("got=")
    });
    assert!(screen.lines().any(|l| l.trim() == "visible again"), "{screen}");
    let mut src = ScriptedSource::new(["terminal typed passphrase one"]);
    assert!(unlock_contents(&home.path().join("vault.crbot"), &mut src, &|_| {}, 1).is_ok());
}
