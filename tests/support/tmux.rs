//! A tmux session driving the real `crbot` binary, for end-to-end screen tests.
//!
//! Each session has its own tmux server socket (`-L`), so tests never touch a user's tmux and
//! never collide with each other. The session is killed on drop. Screens are read with
//! `capture-pane`; the helpers at the bottom cut a titled box out of a screen, so a test reads
//! one panel and not whatever happens to share its rows.
//!
//! A missing tmux is a test FAILURE with a message saying so, never a silent pass: a skipped
//! end-to-end test would let a broken console through CI.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Tmux {
    socket: String,
    session: String,
}

/// Fails the test, with the reason, when tmux cannot be run.
pub fn require_tmux() {
    match Command::new("tmux").arg("-V").output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "`tmux -V` failed ({}): the end-to-end console tests need a working tmux",
            o.status
        ),
        Err(e) => panic!(
            "tmux is not installed ({e}): the end-to-end console tests drive crbot through tmux; \
             install it (`apt-get install tmux`; .ci/run does this on a fresh machine)"
        ),
    }
}

impl Tmux {
    /// Starts `command` (run by the shell) in a detached session of the given size, in `cwd`,
    /// with `env` set.
    pub fn start(
        name: &str,
        width: u16,
        height: u16,
        command: &str,
        env: &[(&str, &str)],
        cwd: &Path,
    ) -> Tmux {
        require_tmux();
        let socket = format!("crbot-test-{}-{}", name, std::process::id());
        let session = "main".to_string();
        let mut cmd = Command::new("tmux");
        cmd.args([
            "-L",
            &socket,
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            &session,
        ]);
        cmd.args(["-x", &width.to_string(), "-y", &height.to_string()]);
        for (k, v) in env {
            cmd.args(["-e", &format!("{k}={v}")]);
        }
        cmd.arg("-c").arg(cwd);
        cmd.arg(command);
        let status = cmd
            .status()
            .expect("tmux must be installed (.ci/run installs it)");
        assert!(status.success(), "tmux new-session failed");
        let t = Tmux { socket, session };
        // Keep the pane (and its last screen) when the command exits, so a test can read what
        // the shell printed after crbot quit, and a crash shows instead of vanishing.
        t.tmux(&["set-option", "-t", &t.session, "remain-on-exit", "on"]);
        t
    }

    fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux runs")
    }

    /// Resizes the window (the program sees SIGWINCH, as when a terminal is resized).
    pub fn resize(&self, width: u16, height: u16) {
        let (w, h) = (width.to_string(), height.to_string());
        let out = self.tmux(&["resize-window", "-t", &self.session, "-x", &w, "-y", &h]);
        assert!(out.status.success(), "tmux resize-window {w}x{h}");
    }

    /// Sends keys in tmux `send-keys` syntax (`C-k`, `Enter`, `Tab`, `Escape`, `BSpace`).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.session];
        args.extend_from_slice(keys);
        assert!(self.tmux(&args).status.success(), "tmux send-keys {keys:?}");
    }

    /// Sends one key `n` times.
    pub fn key_n(&self, key: &str, n: usize) {
        let n = n.to_string();
        let out = self.tmux(&["send-keys", "-t", &self.session, "-N", &n, key]);
        assert!(out.status.success(), "tmux send-keys -N {n} {key}");
    }

    /// Types literal text (no key-name interpretation).
    pub fn type_text(&self, text: &str) {
        let out = self.tmux(&["send-keys", "-t", &self.session, "-l", text]);
        assert!(out.status.success(), "tmux send-keys -l {text:?}");
    }

    /// The visible screen as text.
    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", &self.session]).stdout).into_owned()
    }

    /// The visible screen with wrapped lines joined (for reading ordinary shell output).
    pub fn screen_joined(&self) -> String {
        String::from_utf8_lossy(
            &self
                .tmux(&["capture-pane", "-p", "-J", "-t", &self.session])
                .stdout,
        )
        .into_owned()
    }

    /// The visible screen with its SGR escape sequences (colours, bold, reverse).
    pub fn screen_styled(&self) -> String {
        String::from_utf8_lossy(
            &self
                .tmux(&["capture-pane", "-p", "-e", "-t", &self.session])
                .stdout,
        )
        .into_owned()
    }

    fn pane_format(&self, format: &str) -> Option<String> {
        let out = self.tmux(&["display-message", "-p", "-t", &self.session, format]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// From now on, appends a line to `file` for each terminal bell the program rings (a
    /// tmux `alert-bell` hook: the session is never attached, so every bell is an alert).
    pub fn count_bells(&self, file: &Path) {
        let path = file.display().to_string();
        assert!(
            !path.contains(['\'', '"', '#', '$', '\\']),
            "a bell file path tmux and sh take as it is: {path}"
        );
        let line = format!("run-shell \"echo bell >> '{path}'\"");
        let out = self.tmux(&["set-hook", "-t", &self.session, "alert-bell", &line]);
        assert!(out.status.success(), "tmux set-hook alert-bell");
    }

    /// The pid of the pane's process (the command given to `start`; with `exec`, the program).
    pub fn pane_pid(&self) -> Option<u32> {
        self.pane_format("#{pane_pid}")?.parse().ok()
    }

    /// How the pane's process ended, once it has: `exit N`, or `signal N` when a signal
    /// killed it.
    pub fn pane_exit(&self) -> Option<String> {
        if self.alive() {
            return None;
        }
        let status = self.pane_format("#{pane_dead_status}").unwrap_or_default();
        if !status.is_empty() {
            return Some(format!("exit {status}"));
        }
        let signal = self.pane_format("#{pane_dead_signal}").unwrap_or_default();
        Some(format!("signal {signal}"))
    }

    /// True while the pane's process (the command given to `start`) is still running.
    pub fn alive(&self) -> bool {
        self.pane_format("#{pane_dead}").as_deref() == Some("0")
    }

    /// True while the pane shows the alternate screen (a full-screen program is up).
    pub fn alternate_screen(&self) -> bool {
        self.pane_format("#{alternate_on}").as_deref() == Some("1")
    }

    /// Waits until the screen satisfies `cond`, or panics with the last screen.
    pub fn wait_for(&self, what: &str, timeout: Duration, cond: impl Fn(&str) -> bool) -> String {
        self.wait_for_value(what, timeout, |s| cond(s).then(|| s.to_string()))
    }

    /// Waits until `read` finds a value on the screen, or panics with the last screen.
    pub fn wait_for_value<T>(&self, what: &str, timeout: Duration, read: impl Fn(&str) -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if let Some(v) = read(&s) {
                return v;
            }
            if start.elapsed() > timeout {
                panic!("timed out after {timeout:?} waiting for {what}; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Tmux {
    /// Quits crbot the way a trader does (`q`, then `y` to its question) and waits for the
    /// wrapper's `CRBOT_EXIT=` line: the whole screen then (`screen_joined`).
    pub fn quit_crbot(&self, timeout: Duration) -> String {
        self.keys(&["q"]);
        self.wait_for("the quit confirmation", timeout, |s| {
            panel(s, "Quit crbot?").is_some()
        });
        self.keys(&["y"]);
        self.wait_for_value("crbot exited", timeout, |_| {
            let s = self.screen_joined();
            s.contains("CRBOT_EXIT=").then_some(s)
        })
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

/// `s` quoted for the shell of a tmux command line (single quotes, any inside escaped).
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The inner rows of the box titled `title`, one string (empty when it is not on the screen).
pub fn panel_text(screen: &str, title: &str) -> String {
    panel(screen, title).unwrap_or_default().join("\n")
}

/// The inner rows of the box whose top border carries `title` (`┌ Positions ... ┐`, or
/// `+ Positions ... +` with `--ascii`), cut to the box's columns, down to its bottom border.
/// `None` when no such box is on the screen.
pub fn panel(screen: &str, title: &str) -> Option<Vec<String>> {
    let rows: Vec<Vec<char>> = screen.lines().map(|l| l.chars().collect()).collect();
    let title: Vec<char> = title.chars().collect();
    for (r, row) in rows.iter().enumerate() {
        let Some(at) = (0..row.len()).find(|&i| row[i..].starts_with(&title)) else {
            continue;
        };
        let Some(left) = (0..at).rev().find(|&i| matches!(row[i], '┌' | '+')) else {
            continue;
        };
        let Some(right) = (at..row.len()).find(|&i| matches!(row[i], '┐' | '+')) else {
            continue;
        };
        let mut inner = Vec::new();
        for below in &rows[r + 1..] {
            if matches!(below.get(left), Some('└' | '+') | None) {
                break;
            }
            let end = right.min(below.len());
            inner.push(below[left + 1..end].iter().collect());
        }
        return Some(inner);
    }
    None
}

/// The whitespace-separated words of every row of a panel.
pub fn panel_rows(screen: &str, title: &str) -> Vec<Vec<String>> {
    panel(screen, title)
        .unwrap_or_default()
        .iter()
        .map(|r| r.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// The SGR parameters that set a foreground or background colour (not 39/49, which reset).
pub fn colour_codes(styled: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = styled;
    while let Some(start) = rest.find("\x1b[") {
        rest = &rest[start + 2..];
        let Some(end) = rest.find(|c: char| !(c.is_ascii_digit() || c == ';')) else {
            break;
        };
        if rest[end..].starts_with('m') {
            let params = &rest[..end];
            let colour = params
                .split(';')
                .any(|p| matches!(p.parse::<u16>(), Ok(30..=38 | 40..=48 | 90..=97 | 100..=107)));
            if colour {
                found.push(params.to_string());
            }
        }
        rest = &rest[end..];
    }
    found
}
