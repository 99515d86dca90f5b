//! A tmux session driving the real `crbot` binary, for end-to-end screen tests.
//!
//! Each session has its own tmux server socket (`-L`), so tests never touch a user's tmux and
//! never collide with each other. The session is killed on drop.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    /// Starts `command` in a detached session of the given size, with `env` set.
    pub fn start(name: &str, width: u16, height: u16, command: &str, env: &[(&str, &str)], cwd: &Path) -> Tmux {
        let socket = format!("crbot-test-{}-{}", name, std::process::id());
        let session = "main".to_string();
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &socket, "-f", "/dev/null", "new-session", "-d", "-s", &session]);
        cmd.args(["-x", &width.to_string(), "-y", &height.to_string()]);
        for (k, v) in env {
            cmd.args(["-e", &format!("{k}={v}")]);
        }
        cmd.arg("-c").arg(cwd);
        cmd.arg(command);
        let status = cmd.status().expect("tmux must be installed (.ci/run installs it)");
        assert!(status.success(), "tmux new-session failed");
        Tmux { socket, session }
    }

    /// Sends keys in tmux `send-keys` syntax (`C-k`, `Enter`, `Tab`, or literal text with `literal`).
    pub fn keys(&self, keys: &[&str]) {
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &self.socket, "send-keys", "-t", &self.session]);
        cmd.args(keys);
        assert!(cmd.status().expect("tmux send-keys").success());
    }

    /// Types literal text (no key-name interpretation).
    pub fn type_text(&self, text: &str) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", &self.session, "-l", text])
            .status()
            .expect("tmux send-keys -l");
        assert!(status.success());
    }

    /// The visible screen as text.
    pub fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", &self.session])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// True while the pane's process is still running.
    pub fn alive(&self) -> bool {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "list-panes", "-t", &self.session, "-F", "#{pane_dead}"])
            .output();
        matches!(out, Ok(o) if o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "0")
    }

    /// Waits until the screen satisfies `cond`, or panics with the last screen.
    pub fn wait_for(&self, what: &str, timeout: Duration, cond: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if cond(&s) {
                return s;
            }
            if start.elapsed() > timeout {
                panic!("timed out after {timeout:?} waiting for {what}; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["-L", &self.socket, "kill-server"]).status();
    }
}
