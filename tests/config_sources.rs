//! Where values come from: the priority of the three sources, mode resolution, the folders, the
//! dotenv parser, and `Config::load` against a real working directory and config folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crbot::config::{Config, ConfigError, ModeSource, Paths, Sources, parse_env, read_env_file};
use crbot::domain::Mode;
use rstest::rstest;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn base() -> Sources {
    Sources {
        default_paths: Some(Paths {
            config_dir: PathBuf::from("/cfg"),
            data_dir: PathBuf::from("/data"),
        }),
        ..Sources::default()
    }
}

#[test]
fn the_process_environment_wins_over_dotenv_which_wins_over_the_config_file() {
    let mut s = base();
    s.process = map(&[("MAX_TRADES_PER_DAY", "1")]);
    s.dotenv = map(&[("MAX_TRADES_PER_DAY", "2"), ("RECV_WINDOW_MS", "2000")]);
    s.config_file = map(&[
        ("MAX_TRADES_PER_DAY", "3"),
        ("RECV_WINDOW_MS", "3000"),
        ("KILL_KEY", "f9"),
    ]);
    let c = Config::from_sources(&s).expect("valid");
    assert_eq!(c.limits.max_trades_per_day, 1);
    assert_eq!(c.recv_window_ms, 2000);
    assert_eq!(c.kill_key.to_string(), "f9");
}

#[test]
fn a_bad_value_hidden_under_a_good_one_is_not_read() {
    let mut s = base();
    s.process = map(&[("MAX_DAILY_LOSS_PERCENT", "4")]);
    s.config_file = map(&[("MAX_DAILY_LOSS_PERCENT", "abc")]);
    assert!(Config::from_sources(&s).is_ok());
}

#[rstest]
#[case(
    Some(Mode::Paper),
    Some("live"),
    Some("true"),
    Mode::Paper,
    ModeSource::CommandLine
)]
#[case(None, Some("demo"), Some("true"), Mode::Demo, ModeSource::CrbotMode)]
#[case(None, None, Some("true"), Mode::Testnet, ModeSource::BinanceTestnet)]
#[case(None, None, Some("false"), Mode::Live, ModeSource::BinanceTestnet)]
#[case(None, None, None, Mode::Sim, ModeSource::Default)]
fn mode_is_cli_then_crbot_mode_then_binance_testnet_then_sim(
    #[case] cli: Option<Mode>,
    #[case] crbot_mode: Option<&str>,
    #[case] testnet: Option<&str>,
    #[case] mode: Mode,
    #[case] source: ModeSource,
) {
    let mut s = base();
    s.mode = cli;
    if let Some(m) = crbot_mode {
        s.process.insert("CRBOT_MODE".into(), m.into());
    }
    if let Some(t) = testnet {
        s.dotenv.insert("BINANCE_TESTNET".into(), t.into());
    }
    let c = Config::from_sources(&s).expect("valid");
    assert_eq!((c.mode, c.mode_source), (mode, source));
}

#[test]
fn home_puts_config_and_data_in_one_folder() {
    let mut s = base();
    s.home = Some(PathBuf::from("/h"));
    s.process = map(&[("CRBOT_HOME", "/ignored-because-cli-wins")]);
    let c = Config::from_sources(&s).expect("valid");
    assert_eq!(c.paths.config_dir, PathBuf::from("/h"));
    assert_eq!(c.paths.data_dir, PathBuf::from("/h"));
    assert_eq!(c.journal_path(), PathBuf::from("/h/journal-sim.db"));
}

#[test]
fn crbot_home_from_dotenv_is_used_without_a_cli_home() {
    let mut s = base();
    s.dotenv = map(&[("CRBOT_HOME", "/from-dotenv")]);
    let c = Config::from_sources(&s).expect("valid");
    assert_eq!(c.paths.data_dir, PathBuf::from("/from-dotenv"));
}

#[test]
fn without_home_the_user_folders_are_used_and_their_absence_is_an_error() {
    let c = Config::from_sources(&base()).expect("valid");
    assert_eq!(c.paths.config_dir, PathBuf::from("/cfg"));
    assert_eq!(c.paths.data_dir, PathBuf::from("/data"));
    let none = Sources::default();
    assert_eq!(
        Config::from_sources(&none).expect_err("no home"),
        ConfigError::NoHome
    );
}

#[test]
fn unknown_variables_in_files_are_warned_about() {
    let mut s = base();
    s.dotenv = map(&[("MAX_DAILY_LOSS_PERCNT", "3")]);
    let c = Config::from_sources(&s).expect("valid");
    assert_eq!(
        c.warnings,
        [".env: unknown variable MAX_DAILY_LOSS_PERCNT is ignored (a typo?)"]
    );
}

#[test]
fn the_dotenv_parser_handles_quotes_comments_and_export() {
    let text = "# comment\nexport ENV=staging\nKILL_KEY='alt-k'\nSECRET_KEY=\"a b#c\"\nDEBUG=false # trailing\n\
                MAX_TRADES_PER_DAY = 7 \nBINANCE_API_SECRET=ab$cd${EF}\n";
    let m = parse_env(text.as_bytes()).expect("parses");
    assert_eq!(m.get("ENV").map(String::as_str), Some("staging"));
    assert_eq!(m.get("KILL_KEY").map(String::as_str), Some("alt-k"));
    assert_eq!(m.get("SECRET_KEY").map(String::as_str), Some("a b#c"));
    assert_eq!(m.get("DEBUG").map(String::as_str), Some("false"));
    assert_eq!(m.get("MAX_TRADES_PER_DAY").map(String::as_str), Some("7"));
    // A `$` in a secret is kept as written, never substituted.
    assert_eq!(
        m.get("BINANCE_API_SECRET").map(String::as_str),
        Some("ab$cd${EF}")
    );
}

#[test]
fn a_variable_given_twice_in_one_file_is_an_error_naming_both_lines() {
    let text = "ENV=development\nDEBUG=false\n# later\nENV=production\n";
    let err = parse_env(text.as_bytes()).expect_err("ambiguous posture");
    assert_eq!(err, "ENV is set twice (lines 1 and 4); keep one");
}

#[test]
fn a_repeated_variable_in_the_config_file_names_the_file() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("crbot.env");
    std::fs::write(&file, "MAX_TRADES_PER_DAY=3\nMAX_TRADES_PER_DAY=300\n").expect("write");
    let err = read_env_file(&file).expect_err("twice");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: MAX_TRADES_PER_DAY is set twice (lines 1 and 2); keep one",
            file.display()
        )
    );
}

#[test]
fn the_same_variable_in_different_sources_keeps_the_priority_order() {
    let mut s = base();
    s.process = map(&[("ENV", "staging")]);
    s.dotenv = map(&[("ENV", "production")]);
    s.config_file = map(&[("ENV", "development")]);
    assert_eq!(
        Config::from_sources(&s).expect("valid").env,
        crbot::config::Environment::Staging
    );
}

#[test]
fn a_dotenv_parse_error_never_quotes_the_line() {
    let text = "ENV=development\nBINANCE_API_SECRET=\"NhqPtmdSJYdKjVHjA7PZ unterminated\n";
    let err = parse_env(text.as_bytes()).expect_err("unterminated quote");
    assert!(!err.contains("NhqPtmdSJYdKjVHjA7PZ"), "{err}");
    assert_eq!(err, "line 2: BINANCE_API_SECRET: the quote is never closed");
    let err = parse_env("ENV=development\nNhqPtmdSJYdKjVHjA7PZ\n".as_bytes()).expect_err("no =");
    assert_eq!(err, "line 2 is not NAME=VALUE");
}

#[rstest]
#[case(Mode::Live, "true")]
#[case(Mode::Testnet, "false")]
fn a_mode_that_contradicts_binance_testnet_is_refused(#[case] mode: Mode, #[case] testnet: &str) {
    for by_cli in [true, false] {
        let mut s = base();
        if by_cli {
            s.mode = Some(mode);
        } else {
            s.process = map(&[("CRBOT_MODE", mode.as_str())]);
        }
        s.dotenv = map(&[("BINANCE_TESTNET", testnet)]);
        let err = Config::from_sources(&s).expect_err("contradiction");
        let by = if by_cli {
            format!("--mode {mode}")
        } else {
            format!("CRBOT_MODE={mode}")
        };
        assert!(
            err.to_string()
                .starts_with(&format!("{by} contradicts BINANCE_TESTNET={testnet}")),
            "{err}"
        );
    }
}

#[rstest]
#[case(Mode::Live, "false")]
#[case(Mode::Testnet, "true")]
#[case(Mode::Sim, "false")]
#[case(Mode::Paper, "true")]
fn a_mode_that_agrees_with_binance_testnet_or_ignores_it_is_accepted(
    #[case] mode: Mode,
    #[case] testnet: &str,
) {
    let mut s = base();
    s.mode = Some(mode);
    s.dotenv = map(&[("BINANCE_TESTNET", testnet)]);
    assert_eq!(Config::from_sources(&s).expect("valid").mode, mode);
}

#[test]
fn an_empty_crbot_home_is_unset_and_home_wins_over_it() {
    let mut s = base();
    s.process = map(&[("CRBOT_HOME", " ")]);
    s.dotenv = map(&[("CRBOT_HOME", "")]);
    let c = Config::from_sources(&s).expect("valid");
    assert_eq!(c.paths.data_dir, PathBuf::from("/data"));
    s.home = Some(PathBuf::from("/h"));
    s.process = map(&[("CRBOT_HOME", "/elsewhere")]);
    assert_eq!(
        Config::from_sources(&s).expect("valid").paths.data_dir,
        PathBuf::from("/h")
    );
}

#[test]
fn reading_a_missing_file_gives_nothing() {
    assert!(
        read_env_file(Path::new("/definitely/not/here/.env"))
            .expect("ok")
            .is_empty()
    );
}

const CHILD_ENV: &str = "CRBOT_CONFIG_LOAD_CHILD";

/// `Config::load` for real: a child process with a clean environment, a working directory
/// holding `.env`, and a home folder holding `crbot.env`.
#[test]
fn load_reads_environment_then_dotenv_then_config_file_without_changing_the_environment() {
    if let Some(home) = std::env::var_os(CHILD_ENV) {
        let c = Config::load(None, Some(PathBuf::from(home))).expect("load");
        // Loading must not have exported anything into the process environment.
        assert!(std::env::var_os("RECV_WINDOW_MS").is_none());
        // Leading newline: libtest prints the test's name without one before our output.
        println!(
            "\nRESULT trades={} recv={} kill={} mode={} journal={}",
            c.limits.max_trades_per_day,
            c.recv_window_ms,
            c.kill_key,
            c.mode,
            c.journal_path().display()
        );
        return;
    }
    let cwd = tempfile::tempdir().expect("cwd");
    let home = tempfile::tempdir().expect("home");
    std::fs::write(
        cwd.path().join(".env"),
        "MAX_TRADES_PER_DAY=2\nRECV_WINDOW_MS=2000\nCRBOT_MODE=paper\n",
    )
    .expect("write .env");
    std::fs::write(
        home.path().join("crbot.env"),
        "MAX_TRADES_PER_DAY=3\nRECV_WINDOW_MS=3000\nKILL_KEY=f9\n",
    )
    .expect("write crbot.env");
    let out = Command::new(std::env::current_exe().expect("exe"))
        .args([
            "load_reads_environment_then_dotenv_then_config_file_without_changing_the_environment",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .current_dir(cwd.path())
        .env_clear()
        .env(CHILD_ENV, home.path())
        .env("MAX_TRADES_PER_DAY", "1")
        .output()
        .expect("run child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .unwrap_or_else(|| panic!("no result in {stdout}"));
    let journal = home.path().join("journal-paper.db");
    assert_eq!(
        line,
        format!(
            "RESULT trades=1 recv=2000 kill=f9 mode=paper journal={}",
            journal.display()
        )
    );
}

#[test]
fn live_selected_through_the_seed_variable_is_called_out() {
    let mut s = base();
    s.dotenv = map(&[("BINANCE_TESTNET", "false")]);
    let c = Config::from_sources(&s).expect("valid");
    assert_eq!(c.mode, Mode::Live);
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("LIVE") && w.contains("BINANCE_TESTNET=false"))
    );
    s.mode = Some(Mode::Live);
    let explicit = Config::from_sources(&s).expect("valid");
    assert!(explicit.warnings.is_empty(), "{:?}", explicit.warnings);
}
