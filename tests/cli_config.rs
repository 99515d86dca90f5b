//! Configuration as a user meets it: the built `crbot` binary with a clean environment, a
//! working directory holding `.env`, and `--home` or `CRBOT_HOME`. Each test is a defect seen
//! on the release binary: a password echoed in an error, an empty `CRBOT_HOME=` that broke
//! every command, a repeated `ENV=` silently resolved, a database URL taken for a file name,
//! a long number called "not a number", a `--mode` that contradicts `BINANCE_TESTNET`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use assert_cmd::Command;

const PASSWORD: &str = "hunter2";

struct Dirs {
    cwd: tempfile::TempDir,
    home: tempfile::TempDir,
}

impl Dirs {
    fn new() -> Dirs {
        Dirs {
            cwd: tempfile::tempdir().unwrap(),
            home: tempfile::tempdir().unwrap(),
        }
    }

    fn dotenv(&self, text: &str) {
        std::fs::write(self.cwd.path().join(".env"), text).unwrap();
    }

    /// `crbot` with nothing inherited from the test's environment but `PATH`, run in `cwd`,
    /// with `HOME` pointing at a private folder (the user folders live there).
    fn crbot(&self) -> Command {
        let mut c = Command::cargo_bin("crbot").unwrap();
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .current_dir(self.cwd.path());
        c
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(mut c: Command) -> Run {
    let out = c.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A command that needs the configuration and the journal but no network: in sim mode
/// `resume` opens (creating) the journal and says trading is already active.
fn resume(dirs: &Dirs, home: Option<&Path>) -> Command {
    let mut c = dirs.crbot();
    if let Some(h) = home {
        c.arg("--home").arg(h);
    }
    c.arg("resume");
    c
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

// ----- 1. secrets in URLs --------------------------------------------------------------------

#[test]
fn a_url_that_does_not_parse_is_quoted_back_without_its_password() {
    let dirs = Dirs::new();
    let home = tempfile::tempdir().unwrap();
    let mut c = resume(&dirs, Some(home.path()));
    c.env("BINANCE_REST_URL", format!("https://user:{PASSWORD}@"));
    let r = run(c);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("BINANCE_REST_URL"), "{}", r.stderr);
    assert!(r.stderr.contains("user:***@"), "{}", r.stderr);
    assert!(!r.stderr.contains(PASSWORD), "password echoed: {}", r.stderr);
}

#[test]
fn a_query_token_in_an_allowed_endpoint_is_not_printed_in_the_warning() {
    let dirs = Dirs::new();
    let home = tempfile::tempdir().unwrap();
    let mut c = resume(&dirs, Some(home.path()));
    c.env(
        "BINANCE_WS_API_URL",
        format!("ws://127.0.0.1:9/ws-api/v3?token={PASSWORD}"),
    );
    let r = run(c);
    assert!(r.stderr.contains("BINANCE_WS_API_URL"), "{}", r.stderr);
    assert!(r.stderr.contains("token=***"), "{}", r.stderr);
    assert!(
        !r.stderr.contains(PASSWORD) && !r.stdout.contains(PASSWORD),
        "token printed: {}{}",
        r.stdout,
        r.stderr
    );
}

// ----- 2. empty CRBOT_HOME -------------------------------------------------------------------

#[test]
fn an_empty_crbot_home_in_the_environment_is_unset_and_home_still_wins() {
    let dirs = Dirs::new();
    let home = tempfile::tempdir().unwrap();
    let mut c = resume(&dirs, Some(home.path()));
    c.env("CRBOT_HOME", "");
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(home.path().join("journal-sim.db").exists());

    // After the subcommand too (the option is global).
    let mut c = dirs.crbot();
    c.env("CRBOT_HOME", "  ")
        .arg("resume")
        .arg("--home")
        .arg(home.path());
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn an_empty_crbot_home_means_the_user_folders() {
    let dirs = Dirs::new();
    dirs.dotenv("CRBOT_HOME=\n");
    let mut c = resume(&dirs, None);
    c.env("CRBOT_HOME", "");
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        dirs.home
            .path()
            .join(".local/share/crbot/journal-sim.db")
            .exists(),
        "{:?}",
        files_in(dirs.home.path())
    );
    assert_eq!(
        files_in(dirs.cwd.path()),
        [".env"],
        "nothing is written in the working directory"
    );
}

#[test]
fn crbot_home_from_the_environment_is_used_without_home() {
    let dirs = Dirs::new();
    let home = tempfile::tempdir().unwrap();
    let mut c = resume(&dirs, None);
    c.env("CRBOT_HOME", home.path());
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(home.path().join("journal-sim.db").exists());
}

// ----- 3. a variable given twice in one file -------------------------------------------------

#[test]
fn a_repeated_env_in_dotenv_stops_start_up_naming_both_lines() {
    let dirs = Dirs::new();
    dirs.dotenv("ENV=development\nDEBUG=false\n\nENV=production\n");
    let home = tempfile::tempdir().unwrap();
    let r = run(resume(&dirs, Some(home.path())));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("ENV is set twice (lines 1 and 4)"),
        "{}",
        r.stderr
    );
    assert!(!home.path().join("journal-sim.db").exists(), "nothing may start");
}

#[test]
fn the_environment_still_wins_over_dotenv_and_dotenv_over_the_config_file() {
    let dirs = Dirs::new();
    let home = tempfile::tempdir().unwrap();
    dirs.dotenv("ENV=staging\nMAX_TRADES_PER_DAY=abc\n");
    std::fs::write(home.path().join("crbot.env"), "ENV=production\nDEBUG=true\n").unwrap();
    let mut c = resume(&dirs, Some(home.path()));
    c.env("MAX_TRADES_PER_DAY", "4");
    // staging (from .env, over the config file) refuses DEBUG=true (from the config file).
    let r = run(c);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("DEBUG=true is refused with ENV=staging"),
        "{}",
        r.stderr
    );
}

// ----- 4. DATABASE_URL with a scheme ---------------------------------------------------------

#[test]
fn a_malformed_postgresql_url_is_refused_not_taken_for_a_file() {
    let dirs = Dirs::new();
    let home = tempfile::tempdir().unwrap();
    let mut c = resume(&dirs, Some(home.path()));
    c.env("DATABASE_URL", format!("postgresql:u:{PASSWORD}@db"));
    let r = run(c);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("DATABASE_URL"), "{}", r.stderr);
    assert!(
        r.stderr.contains("postgresql://USER:PASSWORD@HOST"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains(PASSWORD), "{}", r.stderr);
    assert!(files_in(dirs.cwd.path()).is_empty(), "a file was created");
    assert!(files_in(home.path()).iter().all(|f| !f.ends_with(".db")));
}

#[test]
fn an_unreachable_postgresql_journal_fails_clearly_without_its_password_or_a_file() {
    let dirs = Dirs::new();
    let home = tempfile::tempdir().unwrap();
    // A port on this machine where nothing listens: the connection is refused at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for url in [
        format!("postgresql://crbot:{PASSWORD}@127.0.0.1:{port}/crbot"),
        format!("postgres://crbot:{PASSWORD}@127.0.0.1:{port}/crbot"),
    ] {
        let mut c = resume(&dirs, Some(home.path()));
        c.env("DATABASE_URL", &url);
        let r = run(c);
        assert_ne!(r.code, 0, "{url}: {}", r.stderr);
        assert!(r.stderr.contains("PostgreSQL"), "{}", r.stderr);
        assert!(r.stderr.contains("crbot:***@127.0.0.1"), "{}", r.stderr);
        assert!(!r.stderr.contains(PASSWORD), "{}", r.stderr);
    }
    assert!(files_in(dirs.cwd.path()).is_empty());
    assert!(files_in(home.path()).iter().all(|f| !f.ends_with(".db")));
}

#[test]
fn a_sqlite_url_and_a_plain_path_keep_working() {
    let dirs = Dirs::new();
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("j1.db");
    let mut c = resume(&dirs, Some(home.path()));
    c.env("DATABASE_URL", format!("sqlite://{}", file.display()));
    assert_eq!(run(c).code, 0);
    assert!(file.exists());
    let plain = home.path().join("j2.db");
    let mut c = resume(&dirs, Some(home.path()));
    c.env("DATABASE_URL", &plain);
    assert_eq!(run(c).code, 0);
    assert!(plain.exists());
}

// ----- 5. long numbers -----------------------------------------------------------------------

#[test]
fn a_32_digit_percentage_is_out_of_range_not_a_non_number() {
    let dirs = Dirs::new();
    let home = tempfile::tempdir().unwrap();
    let mut c = resume(&dirs, Some(home.path()));
    c.env("MAX_DAILY_LOSS_PERCENT", "12345678901234567890123456789012");
    let r = run(c);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains(
            "MAX_DAILY_LOSS_PERCENT=12345678901234567890123456789012 is out of range: allowed 0 < value <= 100"
        ),
        "{}",
        r.stderr
    );
}

// ----- 7. siblings ---------------------------------------------------------------------------

#[test]
fn a_mode_that_contradicts_binance_testnet_is_refused() {
    let dirs = Dirs::new();
    let home = tempfile::tempdir().unwrap();
    let mut c = dirs.crbot();
    c.env("BINANCE_TESTNET", "true")
        .args(["--mode", "live", "--passphrase-stdin", "--home"])
        .arg(home.path())
        .arg("resume")
        .write_stdin("");
    let r = run(c);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("--mode live contradicts BINANCE_TESTNET=true"),
        "{}",
        r.stderr
    );
}
