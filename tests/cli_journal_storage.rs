//! The command line on a journal that cannot be written: read-only (file, folder or disk) and
//! full. Commands that only read work on a read-only journal; commands that must write refuse,
//! saying what is wrong; a full disk reads the same in every command (and in the console,
//! `crash_storage.rs`), whatever SQLite's code for it was.
//!
//! Read-only: root ignores file permissions, so when the tests run as root the binary runs as
//! `nobody` on a journal owned by root; otherwise the journal and its folder are made
//! read-only. Full: the binary runs under a file-size limit of 0 (`ulimit -f 0`, `SIGXFSZ`
//! ignored), so every write that would grow a file fails as on a full disk.
#![allow(clippy::unwrap_used, clippy::expect_used, unsafe_code)]

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use crbot::exchange::sim::{self, SimConfig, SimHandle};

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn binary() -> PathBuf {
    assert_cmd::cargo::cargo_bin("crbot")
}

fn output(mut c: std::process::Command) -> Out {
    let out = c.output().unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn command(home: &Path, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(binary());
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .current_dir(home)
        .arg("--home")
        .arg(home)
        .args(args);
    c
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A local exchange for the commands to reconcile with (the one `crbot` starts by itself in
/// sim mode keeps its state in the home folder, which is read-only here).
struct Exchange {
    _rt: tokio::runtime::Runtime,
    handle: SimHandle,
}

impl Exchange {
    fn start() -> Exchange {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let handle = rt
            .block_on(sim::start("127.0.0.1:0".parse().unwrap(), SimConfig::default()))
            .unwrap();
        Exchange { _rt: rt, handle }
    }

    fn point_at(&self, c: &mut std::process::Command) {
        c.env("ENV", "development")
            .env("BINANCE_REST_URL", self.handle.rest_url())
            .env("BINANCE_WS_URL", self.handle.ws_url())
            .env("BINANCE_WS_API_URL", self.handle.ws_api_url())
            .env("BINANCE_API_KEY", self.handle.api_key())
            .env("BINANCE_API_SECRET", self.handle.api_secret().expose());
    }
}

/// A folder holding this mode's journal, which the commands given by [`ReadOnly::crbot`] can
/// read but not write.
struct ReadOnly {
    _root: tempfile::TempDir,
    exchange: Exchange,
    home: PathBuf,
    /// Writable by the command (for exports and backups).
    out: PathBuf,
}

impl ReadOnly {
    fn new() -> ReadOnly {
        let exchange = Exchange::start();
        let root = tempfile::tempdir().unwrap();
        let home = root.path().join("home");
        let out = root.path().join("out");
        std::fs::create_dir(&home).unwrap();
        std::fs::create_dir(&out).unwrap();
        let mut first = command(&home, &["orders"]);
        exchange.point_at(&mut first);
        let made = output(first);
        assert_eq!(made.code, 0, "{}", made.stderr);
        let journal = home.join("journal-sim.db");
        assert!(journal.exists());
        chmod(root.path(), 0o755);
        chmod(&out, 0o777);
        if is_root() {
            // Readable by `nobody`, writable by root only.
            for entry in std::fs::read_dir(&home).unwrap() {
                let p = entry.unwrap().path();
                chmod(&p, if p.is_dir() { 0o755 } else { 0o644 });
            }
            chmod(&home, 0o755);
        } else {
            for entry in std::fs::read_dir(&home).unwrap() {
                let p = entry.unwrap().path();
                chmod(&p, if p.is_dir() { 0o555 } else { 0o444 });
            }
            chmod(&home, 0o555);
        }
        ReadOnly {
            _root: root,
            exchange,
            home,
            out,
        }
    }

    fn crbot(&self, args: &[&str]) -> Out {
        let mut c = command(&self.home, args);
        self.exchange.point_at(&mut c);
        if is_root() {
            c.uid(65534).gid(65534);
        }
        output(c)
    }

    fn journal(&self) -> PathBuf {
        self.home.join("journal-sim.db")
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        // Let the temporary folder be removed.
        let _ = std::fs::set_permissions(&self.home, std::fs::Permissions::from_mode(0o755));
    }
}

#[test]
fn read_only_commands_work_on_a_read_only_journal() {
    let ro = ReadOnly::new();
    for args in [&["orders"][..], &["positions"], &["pnl"], &["--json", "orders"]] {
        let r = ro.crbot(args);
        assert_eq!(r.code, 0, "{args:?}: {}\n{}", r.stdout, r.stderr);
        assert!(!r.stderr.contains("unable to open"), "{args:?}: {}", r.stderr);
    }

    let csv = ro.out.join("csv");
    let r = ro.crbot(&["journal", "export", "--csv", csv.to_str().unwrap()]);
    assert_eq!(r.code, 0, "export: {}", r.stderr);
    assert!(csv.join("orders.csv").exists());

    let copy = ro.out.join("copy.db");
    let r = ro.crbot(&["backup", copy.to_str().unwrap()]);
    assert_eq!(r.code, 0, "backup: {}", r.stderr);
    let backup = crbot::journal::Journal::open_existing(&copy, crbot::domain::Mode::Sim).unwrap();
    assert!(backup.integrity_check().unwrap());
}

#[test]
fn a_command_that_must_write_refuses_a_read_only_journal_saying_so() {
    let ro = ReadOnly::new();
    let before = std::fs::read(ro.journal()).unwrap();
    let r = ro.crbot(&["resume"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let want = format!("the journal {} is read-only", ro.journal().display());
    assert!(r.stderr.contains(&want), "{}", r.stderr);
    assert!(!r.stderr.contains("unable to open database file"), "{}", r.stderr);
    assert_eq!(std::fs::read(ro.journal()).unwrap(), before);
}

#[test]
fn a_full_disk_reads_as_a_full_disk_in_the_cli() {
    let home = tempfile::tempdir().unwrap();
    let made = output(command(home.path(), &["resume"]));
    assert_eq!(made.code, 0, "{}", made.stderr);

    // `kill` must record a halt first; with no room it says so and cancels anyway.
    let mut c = command(home.path(), &["kill"]);
    // SAFETY: between fork and exec only async-signal-safe calls (signal, setrlimit).
    unsafe {
        c.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let none = libc::rlimit {
                rlim_cur: 0,
                rlim_max: libc::RLIM_INFINITY,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &none) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let r = output(c);
    assert!(
        r.stderr.contains("the journal's disk is full"),
        "{}\n{}",
        r.stdout,
        r.stderr
    );
    assert!(!r.stderr.contains("disk I/O error"), "{}", r.stderr);
}
