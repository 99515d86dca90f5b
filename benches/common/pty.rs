//! A real terminal for the console benches: `crbot` runs on the slave side of a pseudo-terminal
//! of a given size (its controlling terminal, so a resize reaches it as SIGWINCH), a thread reads
//! everything it writes from the master side and keeps it with the time each read came, and a
//! small screen model replays those bytes into rows of text.
//!
//! Owns: the pty (opened with libc's `openpty`, already a dependency), the child process on it
//! and its output. Must not: answer the program's terminal queries (the console makes none), or
//! interpret more of the byte stream than ratatui's crossterm backend writes (cursor moves,
//! clears, colours, printed cells); anything else is skipped.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What ratatui writes once per frame: it hides the cursor after every draw (or shows it, with
/// the ticket's text cursor), so each of these closes one frame.
pub const FRAME_ENDS: [&[u8]; 2] = [b"\x1b[?25l", b"\x1b[?25h"];
/// The clear ratatui sends before redrawing everything after a resize.
pub const CLEAR: &[u8] = b"\x1b[2J";

/// Everything the program wrote, and when each read of it arrived.
#[derive(Default)]
struct Output {
    bytes: Vec<u8>,
    /// (offset in `bytes` where the read ended, when it arrived)
    reads: Vec<(usize, Instant)>,
    closed: bool,
}

/// A program running on a pseudo-terminal.
pub struct Pty {
    master: File,
    child: Child,
    out: Arc<Mutex<Output>>,
    pub started: Instant,
}

fn winsize(cols: u16, rows: u16) -> libc::winsize {
    libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

impl Pty {
    /// Starts `cmd` with a `cols`×`rows` terminal as its stdin, stdout, stderr and controlling
    /// terminal (`TERM=xterm-256color`).
    pub fn spawn(cmd: &mut Command, cols: u16, rows: u16) -> Pty {
        let (mut master, mut slave) = (-1, -1);
        let size = winsize(cols, rows);
        // SAFETY: openpty writes two descriptors; the name and termios pointers may be null.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just opened and are owned here alone.
        let (master, slave) = unsafe { (File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let stdio = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup the pty's slave"));
        cmd.stdin(stdio(&slave))
            .stdout(stdio(&slave))
            .stderr(stdio(&slave))
            .env("TERM", "xterm-256color");
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let started = Instant::now();
        let child = cmd.spawn().expect("the program starts on the pty");
        // The parent keeps no slave open: the master reads EIO once the child is gone.
        drop(slave);
        let out = Arc::new(Mutex::new(Output::default()));
        let mut reader = master.try_clone().expect("dup the pty's master");
        let sink = out.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let now = Instant::now();
                        let mut o = sink.lock().unwrap();
                        o.bytes.extend_from_slice(&buf[..n]);
                        let end = o.bytes.len();
                        o.reads.push((end, now));
                    }
                }
            }
            sink.lock().unwrap().closed = true;
        });
        Pty {
            master,
            child,
            out,
            started,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the program is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Types `text` (as a keyboard would send it).
    pub fn type_text(&mut self, text: &str) {
        self.master.write_all(text.as_bytes()).unwrap();
    }

    /// Resizes the terminal; the kernel sends the program SIGWINCH.
    pub fn resize(&self, cols: u16, rows: u16) {
        let size = winsize(cols, rows);
        // SAFETY: TIOCSWINSZ reads one winsize from the pointer.
        let rc = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
        assert_eq!(rc, 0, "TIOCSWINSZ: {}", std::io::Error::last_os_error());
    }

    /// How many bytes the program has written so far.
    pub fn len(&self) -> usize {
        self.out.lock().unwrap().bytes.len()
    }

    /// A copy of the bytes written from `from` on.
    pub fn bytes_from(&self, from: usize) -> Vec<u8> {
        self.out.lock().unwrap().bytes[from..].to_vec()
    }

    /// Polls (every 20 ms) until `found` says yes to the output so far, or `timeout` passes.
    /// Returns what it said and when the read that made it true arrived.
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        mut found: impl FnMut(&[u8]) -> Option<T>,
    ) -> Option<(T, Instant)> {
        let deadline = Instant::now() + timeout;
        let mut seen = 0;
        loop {
            {
                let o = self.out.lock().unwrap();
                if o.bytes.len() > seen {
                    seen = o.bytes.len();
                    if let Some(t) = found(&o.bytes) {
                        return Some((t, o.reads.last().map_or_else(Instant::now, |r| r.1)));
                    }
                }
                if o.closed {
                    return None;
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Polls the screen model until `found` says yes to a screen, or `timeout` passes; returns
    /// the time the read that drew that screen arrived.
    pub fn wait_for_screen(
        &self,
        cols: u16,
        rows: u16,
        timeout: Duration,
        mut found: impl FnMut(&str) -> bool,
    ) -> Option<Instant> {
        let mut screen = Screen::new(cols, rows);
        let mut fed = 0;
        let deadline = Instant::now() + timeout;
        loop {
            {
                let o = self.out.lock().unwrap();
                // Read by read, so the time returned is that of the read that completed the
                // screen, not of the last poll.
                let start = o.reads.partition_point(|r| r.0 <= fed);
                for &(end, at) in &o.reads[start..] {
                    screen.feed(&o.bytes[fed..end]);
                    fed = end;
                    if found(&screen.text()) {
                        return Some(at);
                    }
                }
                if o.closed {
                    return None;
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The screen as the program has drawn it so far.
    pub fn screen(&self, cols: u16, rows: u16) -> String {
        let mut screen = Screen::new(cols, rows);
        screen.feed(&self.out.lock().unwrap().bytes);
        screen.text()
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        // SAFETY: a signal to the child we started (still ours to reap below).
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many times `needle` occurs in `hay`.
pub fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

/// Frames in `bytes`: one per [`FRAME_ENDS`] sequence.
pub fn frames(bytes: &[u8]) -> usize {
    FRAME_ENDS.iter().map(|end| count(bytes, end)).sum()
}

/// Where `needle` first occurs in `hay` at or after `from`.
pub fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// A terminal's cells, replayed from what ratatui's crossterm backend writes: printable text at
/// the cursor, `CSI row;col H`, `CSI 2 J`, CR/LF; every other escape sequence is skipped.
pub struct Screen {
    cols: usize,
    rows: usize,
    cells: Vec<Vec<char>>,
    row: usize,
    col: usize,
    /// Bytes of an escape sequence or a UTF-8 character not complete yet.
    pending: Vec<u8>,
}

impl Screen {
    pub fn new(cols: u16, rows: u16) -> Screen {
        let (cols, rows) = (cols as usize, rows as usize);
        Screen {
            cols,
            rows,
            cells: vec![vec![' '; cols]; rows],
            row: 0,
            col: 0,
            pending: Vec::new(),
        }
    }

    pub fn text(&self) -> String {
        let lines: Vec<String> = self
            .cells
            .iter()
            .map(|r| r.iter().collect::<String>().trim_end().to_string())
            .collect();
        lines.join("\n")
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        let data = std::mem::take(&mut self.pending);
        let mut i = 0;
        while i < data.len() {
            match self.step(&data[i..]) {
                Some(used) => i += used,
                None => {
                    self.pending = data[i..].to_vec();
                    return;
                }
            }
        }
    }

    /// Applies the first item of `data`; `None` when it is not complete yet.
    fn step(&mut self, data: &[u8]) -> Option<usize> {
        match data[0] {
            0x1b => self.escape(data),
            b'\r' => {
                self.col = 0;
                Some(1)
            }
            b'\n' => {
                self.row = (self.row + 1).min(self.rows - 1);
                Some(1)
            }
            b if b < 0x20 || b == 0x7f => Some(1),
            b => {
                let len = match b {
                    0xc0..=0xdf => 2,
                    0xe0..=0xef => 3,
                    0xf0..=0xf7 => 4,
                    _ => 1,
                };
                if data.len() < len {
                    return None;
                }
                let c = std::str::from_utf8(&data[..len])
                    .ok()
                    .and_then(|s| s.chars().next())
                    .unwrap_or('?');
                if self.row < self.rows && self.col < self.cols {
                    self.cells[self.row][self.col] = c;
                }
                self.col += 1;
                Some(len)
            }
        }
    }

    fn escape(&mut self, data: &[u8]) -> Option<usize> {
        let kind = *data.get(1)?;
        match kind {
            b'[' => {
                let end = data[2..].iter().position(|b| (0x40..=0x7e).contains(b))? + 2;
                let params = std::str::from_utf8(&data[2..end]).unwrap_or("");
                self.csi(params, data[end]);
                Some(end + 1)
            }
            // OSC: up to BEL or ST.
            b']' => {
                let bel = data.iter().position(|&b| b == 0x07);
                let st = data.windows(2).position(|w| w == b"\x1b\\").map(|p| p + 1);
                Some(bel.into_iter().chain(st).min()? + 1)
            }
            _ => Some(2),
        }
    }

    fn csi(&mut self, params: &str, action: u8) {
        if params.starts_with('?') {
            return;
        }
        let nums: Vec<usize> = params.split(';').map(|p| p.parse().unwrap_or(0)).collect();
        let n = |i: usize| nums.get(i).copied().unwrap_or(0).max(1);
        match action {
            b'H' | b'f' => {
                self.row = (n(0) - 1).min(self.rows - 1);
                self.col = (n(1) - 1).min(self.cols - 1);
            }
            b'J' if nums.first() == Some(&2) => {
                self.cells = vec![vec![' '; self.cols]; self.rows];
            }
            b'K' => {
                if let Some(r) = self.cells.get_mut(self.row) {
                    r[self.col.min(self.cols)..].fill(' ');
                }
            }
            _ => {}
        }
    }
}

/// The console's configuration for a bench: a fresh home, the sim mode, no bell, ASCII-safe
/// defaults left alone.
pub fn console(crbot: &str, home: &std::path::Path) -> Command {
    let mut cmd = Command::new(crbot);
    cmd.args(["--mode", "sim", "--home"])
        .arg(home)
        .env("CRBOT_BELL", "off")
        .env_remove("CRBOT_API_URL")
        .env_remove("DATABASE_URL");
    cmd
}

/// BTCUSDT's last price in the watchlist, once the screen shows one.
pub fn btc_price(screen: &str) -> Option<rust_decimal::Decimal> {
    screen.lines().find_map(|line| {
        let words: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || matches!(c, '│' | '|'))
            .filter(|w| !w.is_empty())
            .collect();
        let at = words
            .iter()
            .position(|w| w.trim_start_matches('>').trim_start_matches('!') == "BTCUSDT")?;
        let price: rust_decimal::Decimal = words.get(at + 1)?.replace(',', "").parse().ok()?;
        (price > rust_decimal::Decimal::ZERO).then_some(price)
    })
}

/// Time spent on the CPU by process `pid` (all its threads), from `/proc/PID/stat`.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // The command name may hold spaces: the fields after it start past the last ')'.
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

/// Context switches of every thread of `pid` (voluntary: the thread slept, e.g. a timer wait
/// or a read; involuntary: preempted): the program's wake-ups.
pub fn context_switches(pid: u32) -> (u64, u64) {
    let mut total = (0, 0);
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return total;
    };
    for task in tasks.flatten() {
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            continue;
        };
        for line in status.lines() {
            let value = |prefix: &str| {
                line.strip_prefix(prefix)
                    .and_then(|v| v.trim().parse::<u64>().ok())
            };
            if let Some(v) = value("voluntary_ctxt_switches:") {
                total.0 += v;
            }
            if let Some(v) = value("nonvoluntary_ctxt_switches:") {
                total.1 += v;
            }
        }
    }
    total
}

/// `BENCH_SMOKE=1`: a few seconds per bench, for CI.
pub fn smoke() -> bool {
    std::env::var("BENCH_SMOKE").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The load average of the machine (1, 5, 15 min), for the record.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}
