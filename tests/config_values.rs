//! Every variable's parsing: defaults, boundaries, and the one-line message for a bad value.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crbot::config::{AutoHaltAction, Config, ConfigError, Environment, KillKey, Paths, Sources};
use crbot::journal::{Location, PgTls};
use rstest::rstest;
use rust_decimal::Decimal;

fn sources(pairs: &[(&str, &str)]) -> Sources {
    Sources {
        process: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        dotenv: BTreeMap::new(),
        config_file: BTreeMap::new(),
        mode: None,
        home: None,
        default_paths: Some(Paths {
            config_dir: PathBuf::from("/cfg"),
            data_dir: PathBuf::from("/data"),
        }),
    }
}

fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_sources(&sources(pairs))
}

fn dec(s: &str) -> Decimal {
    s.parse().expect("decimal literal")
}

#[test]
fn defaults_apply_when_nothing_is_set() {
    let c = load(&[]).expect("defaults are valid");
    assert_eq!(c.env, Environment::Development);
    assert!(!c.debug);
    assert_eq!(c.mode, crbot::domain::Mode::Sim);
    assert_eq!(c.limits.max_daily_loss_percent, dec("5.0"));
    assert_eq!(c.limits.max_drawdown_percent, dec("10.0"));
    assert_eq!(c.limits.max_trades_per_day, 10);
    assert_eq!(c.limits.max_position_size_percent, dec("5.0"));
    assert_eq!(c.limits.min_risk_reward, dec("1.0"));
    assert_eq!(c.limits.fat_finger_percent, dec("5.0"));
    assert_eq!(c.recv_window_ms, 5000);
    assert_eq!(c.kill_key, KillKey::DEFAULT);
    assert_eq!(c.kill_key.to_string(), "ctrl-k");
    assert!(c.bell);
    assert_eq!(c.auto_halt_action, AutoHaltAction::Reduce);
    assert_eq!(c.log_filter, "info");
    assert!(c.env_keys.is_none());
    assert!(c.database_path.is_none());
    assert_eq!(c.endpoints, Default::default());
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[rstest]
#[case(
    "MAX_DAILY_LOSS_PERCENT",
    "abc",
    "MAX_DAILY_LOSS_PERCENT=abc is not a number: allowed 0 < value <= 100"
)]
#[case(
    "MAX_DAILY_LOSS_PERCENT",
    "-1",
    "MAX_DAILY_LOSS_PERCENT=-1 is out of range: allowed 0 < value <= 100"
)]
#[case(
    "MAX_DAILY_LOSS_PERCENT",
    "150",
    "MAX_DAILY_LOSS_PERCENT=150 is out of range: allowed 0 < value <= 100"
)]
#[case(
    "MAX_DAILY_LOSS_PERCENT",
    "0",
    "MAX_DAILY_LOSS_PERCENT=0 is out of range: allowed 0 < value <= 100"
)]
#[case(
    "MAX_DAILY_LOSS_PERCENT",
    "1e2",
    "MAX_DAILY_LOSS_PERCENT=1e2 is not a number: allowed 0 < value <= 100"
)]
#[case(
    "MAX_DRAWDOWN_PERCENT",
    "100.01",
    "MAX_DRAWDOWN_PERCENT=100.01 is out of range: allowed 0 < value <= 100"
)]
#[case(
    "MAX_DRAWDOWN_PERCENT",
    "ten",
    "MAX_DRAWDOWN_PERCENT=ten is not a number: allowed 0 < value <= 100"
)]
#[case(
    "MAX_POSITION_SIZE_PERCENT",
    "-0.5",
    "MAX_POSITION_SIZE_PERCENT=-0.5 is out of range: allowed 0 < value <= 100"
)]
#[case(
    "FAT_FINGER_PERCENT",
    "101",
    "FAT_FINGER_PERCENT=101 is out of range: allowed 0 < value <= 100"
)]
#[case(
    "MIN_RISK_REWARD",
    "-0.1",
    "MIN_RISK_REWARD=-0.1 is out of range: allowed 0 <= value <= 100"
)]
#[case(
    "MIN_RISK_REWARD",
    "x",
    "MIN_RISK_REWARD=x is not a number: allowed 0 <= value <= 100"
)]
#[case(
    "MAX_TRADES_PER_DAY",
    "0",
    "MAX_TRADES_PER_DAY=0 is out of range: allowed 1 <= value <= 1000"
)]
#[case(
    "MAX_TRADES_PER_DAY",
    "1001",
    "MAX_TRADES_PER_DAY=1001 is out of range: allowed 1 <= value <= 1000"
)]
#[case(
    "MAX_TRADES_PER_DAY",
    "-3",
    "MAX_TRADES_PER_DAY=-3 is out of range: allowed 1 <= value <= 1000"
)]
#[case(
    "MAX_TRADES_PER_DAY",
    "2.5",
    "MAX_TRADES_PER_DAY=2.5 is not a whole number: allowed 1 <= value <= 1000"
)]
#[case(
    "RECV_WINDOW_MS",
    "60001",
    "RECV_WINDOW_MS=60001 is out of range: allowed 1 <= value <= 60000"
)]
#[case(
    "RECV_WINDOW_MS",
    "0",
    "RECV_WINDOW_MS=0 is out of range: allowed 1 <= value <= 60000"
)]
#[case(
    "CRBOT_DETAIL_MS",
    "2001",
    "CRBOT_DETAIL_MS=2001 is out of range: allowed 0 <= value <= 2000"
)]
#[case(
    "CRBOT_DETAIL_MS",
    "fast",
    "CRBOT_DETAIL_MS=fast is not a whole number: allowed 0 <= value <= 2000"
)]
#[case(
    "ENV",
    "prod",
    "ENV=prod is not valid: allowed development, staging, production"
)]
#[case("DEBUG", "maybe", "DEBUG=maybe is not valid: allowed true or false")]
#[case(
    "BINANCE_TESTNET",
    "2",
    "BINANCE_TESTNET=2 is not valid: allowed true or false"
)]
#[case("CRBOT_BELL", "loud", "CRBOT_BELL=loud is not valid: allowed true or false")]
#[case(
    "CRBOT_MODE",
    "real",
    "CRBOT_MODE=real is not valid: allowed sim, paper, demo, testnet, live"
)]
#[case(
    "AUTO_HALT_ACTION",
    "panic",
    "AUTO_HALT_ACTION=panic is not valid: allowed reduce, halt_flatten"
)]
#[case(
    "KILL_KEY",
    "k",
    "KILL_KEY=k is not valid: allowed ctrl-<letter> (not c, h, i, j, m, q, s, z), alt-<letter>, ctrl-alt-<letter>, or f1..f12"
)]
#[case(
    "BINANCE_REST_URL",
    "not a url",
    "BINANCE_REST_URL=not a url is not a URL: allowed an http(s):// origin"
)]
#[case(
    "BINANCE_REST_URL",
    "wss://x.test",
    "BINANCE_REST_URL=wss://x.test has the wrong scheme: allowed an http(s):// origin"
)]
#[case(
    "BINANCE_WS_URL",
    "https://x.test",
    "BINANCE_WS_URL=https://x.test has the wrong scheme: allowed a ws(s):// origin"
)]
#[case(
    "BINANCE_REST_URL",
    "https://api.binance.com/api/v3",
    "BINANCE_REST_URL=https://api.binance.com/api/v3 is not an origin (remove the path): allowed an http(s):// origin"
)]
#[case(
    "DATABASE_URL",
    "postgres://u:hunter2@db/x?sslmode=sometimes",
    "DATABASE_URL=postgres:… is not a valid PostgreSQL URL: allowed \
     postgresql://USER:PASSWORD@HOST[:PORT]/DATABASE[?sslmode=verify-full] (this one has \
     sslmode=sometimes; use disable, require or verify-full), a file path or sqlite://PATH"
)]
#[case(
    "DATABASE_URL",
    "postgresql:u:hunter2@db",
    "DATABASE_URL=postgresql:… is not a valid PostgreSQL URL: allowed \
     postgresql://USER:PASSWORD@HOST[:PORT]/DATABASE[?sslmode=verify-full] (this one has no // \
     after the scheme), a file path or sqlite://PATH"
)]
#[case(
    "DATABASE_URL",
    "mysql://u:hunter2@db/x",
    "DATABASE_URL=mysql:… is not supported (crbot's journal is SQLite or PostgreSQL; for a file \
     whose name has a colon, write ./NAME): allowed a file path, sqlite://PATH or \
     postgresql://USER:PASSWORD@HOST[:PORT]/DATABASE"
)]
#[case(
    "DATABASE_URL",
    "sqlite://",
    "DATABASE_URL=sqlite:// has no path: allowed a file path, sqlite://PATH or \
     postgresql://USER:PASSWORD@HOST[:PORT]/DATABASE"
)]
#[case(
    "MAX_DAILY_LOSS_PERCENT",
    "12345678901234567890123456789012",
    "MAX_DAILY_LOSS_PERCENT=12345678901234567890123456789012 is out of range: allowed 0 < value <= 100"
)]
#[case(
    "MAX_DRAWDOWN_PERCENT",
    "-12345678901234567890123456789012.5",
    "MAX_DRAWDOWN_PERCENT=-12345678901234567890123456789012.5 is out of range: allowed 0 < value <= 100"
)]
#[case(
    "MIN_RISK_REWARD",
    "0.0000000000000000000000000000001",
    "MIN_RISK_REWARD=0.0000000000000000000000000000001 has too many digits (at most 28): allowed \
     0 <= value <= 100"
)]
#[case(
    "MAX_DAILY_LOSS_PERCENT",
    "1.00000000000000000000000000000001",
    "MAX_DAILY_LOSS_PERCENT=1.00000000000000000000000000000001 has too many digits (at most 28): \
     allowed 0 < value <= 100"
)]
#[case(
    "FAT_FINGER_PERCENT",
    "1.2.3",
    "FAT_FINGER_PERCENT=1.2.3 is not a number: allowed 0 < value <= 100"
)]
#[case(
    "MAX_TRADES_PER_DAY",
    "1234567890123456789012345678901234567890",
    "MAX_TRADES_PER_DAY=1234567890123456789012345678901234567890 is out of range: allowed 1 <= value <= 1000"
)]
#[case(
    "RECV_WINDOW_MS",
    "-99999999999999999999999999999999999999999",
    "RECV_WINDOW_MS=-99999999999999999999999999999999999999999 is out of range: allowed 1 <= value <= 60000"
)]
#[case(
    "RECV_WINDOW_MS",
    "5s",
    "RECV_WINDOW_MS=5s is not a whole number: allowed 1 <= value <= 60000"
)]
#[case(
    "BINANCE_REST_URL",
    "https://user:hunter2@",
    "BINANCE_REST_URL=https://user:***@ is not a URL: allowed an http(s):// origin"
)]
#[case(
    "BINANCE_REST_URL",
    "https://api.binance.com/api?token=hunter2",
    "BINANCE_REST_URL=https://api.binance.com/api?token=*** is not an origin (remove the path): \
     allowed an http(s):// origin"
)]
fn a_bad_value_gives_one_line_naming_variable_value_and_range(
    #[case] name: &str,
    #[case] value: &str,
    #[case] message: &str,
) {
    let err = load(&[(name, value)]).expect_err("must be refused");
    assert_eq!(err.to_string(), message);
    assert!(!err.to_string().contains('\n'));
}

#[test]
fn a_crbot_log_filter_that_does_not_parse_is_refused() {
    let err = load(&[("CRBOT_LOG", "crbot=[")]).expect_err("bad filter");
    assert!(
        err.to_string().starts_with("CRBOT_LOG=crbot=[ is not valid"),
        "{err}"
    );
}

/// Found by the `config_values` fuzz target: tracing-subscriber's filter parser slices a
/// directive at a byte index inside a multi-byte character and panics, so a stray non-ASCII
/// character in `CRBOT_LOG` (or `RUST_LOG`) crashed crbot at start-up. Filters are ASCII
/// (targets, levels, field names): anything else is refused with the usual one line.
#[rstest::rstest]
#[case("CRBOT_LOG")]
#[case("RUST_LOG")]
fn a_log_filter_with_a_non_ascii_character_is_refused_not_a_panic(#[case] name: &str) {
    for value in ["lllllBIN((\u{FFFD}\u{FFFD}[((((((", "crbot=débug", "ïnfo"] {
        let err = load(&[(name, value)]).expect_err("non-ASCII filter");
        let text = err.to_string();
        assert!(text.starts_with(&format!("{name}=")), "{text}");
        assert!(text.contains("is not valid"), "{text}");
    }
}

#[test]
fn a_value_with_a_line_break_is_shown_escaped_on_one_line() {
    let err = load(&[("MAX_DRAWDOWN_PERCENT", "5\nrm -rf")]).expect_err("bad");
    assert_eq!(
        err.to_string(),
        "MAX_DRAWDOWN_PERCENT=5\\nrm -rf is not a number: allowed 0 < value <= 100"
    );
}

#[rstest]
#[case("MAX_DAILY_LOSS_PERCENT", "0.01")]
#[case("MAX_DAILY_LOSS_PERCENT", "100")]
#[case("MAX_DRAWDOWN_PERCENT", "12.5")]
#[case("MAX_TRADES_PER_DAY", "1")]
#[case("MAX_TRADES_PER_DAY", "1000")]
#[case("MIN_RISK_REWARD", "0")]
#[case("MIN_RISK_REWARD", "100")]
#[case("RECV_WINDOW_MS", "60000")]
#[case("CRBOT_DETAIL_MS", "0")]
#[case("CRBOT_DETAIL_MS", "2000")]
#[case("KILL_KEY", "f12")]
#[case("AUTO_HALT_ACTION", "halt_flatten")]
#[case("ENV", "Production")]
#[case("MAX_DAILY_LOSS_PERCENT", "+5")]
#[case("MAX_DAILY_LOSS_PERCENT", "000000000000000000000000000000000005")]
#[case("MAX_TRADES_PER_DAY", "+7")]
#[case("MAX_TRADES_PER_DAY", "00000000000000000000000000000000000007")]
#[case("DEBUG", "TRUE")]
#[case("DEBUG", "1")]
#[case("CRBOT_BELL", "False")]
#[case("CRBOT_BELL", "0")]
fn boundary_values_are_accepted(#[case] name: &str, #[case] value: &str) {
    load(&[(name, value)]).unwrap_or_else(|e| panic!("{name}={value} refused: {e}"));
}

#[test]
fn values_are_parsed_into_their_types() {
    let c = load(&[
        ("MAX_DAILY_LOSS_PERCENT", "2.5"),
        ("MAX_TRADES_PER_DAY", "25"),
        ("MIN_RISK_REWARD", "1.5"),
        ("RECV_WINDOW_MS", "10000"),
        ("KILL_KEY", "alt-x"),
        ("CRBOT_BELL", "false"),
        ("AUTO_HALT_ACTION", "halt_flatten"),
        ("RUST_LOG", "debug"),
    ])
    .expect("valid");
    assert_eq!(c.limits.max_daily_loss_percent, dec("2.5"));
    assert_eq!(c.limits.max_trades_per_day, 25);
    assert_eq!(c.limits.min_risk_reward, dec("1.5"));
    assert_eq!(c.recv_window_ms, 10_000);
    assert_eq!(c.kill_key.to_string(), "alt-x");
    assert!(!c.bell);
    assert_eq!(c.auto_halt_action, AutoHaltAction::HaltFlatten);
    assert_eq!(c.log_filter, "debug");
}

#[test]
fn crbot_log_wins_over_rust_log() {
    let c = load(&[("RUST_LOG", "debug"), ("CRBOT_LOG", "warn")]).expect("valid");
    assert_eq!(c.log_filter, "warn");
}

#[rstest]
#[case("sqlite:///var/lib/crbot/j.db", "/var/lib/crbot/j.db")]
#[case("sqlite://journal.db", "journal.db")]
#[case("/abs/j.db", "/abs/j.db")]
#[case("rel/j.db", "rel/j.db")]
#[case("sqlite:rel/j.db", "rel/j.db")]
#[case("file:///var/lib/crbot/j.db", "/var/lib/crbot/j.db")]
#[case("file:rel/j.db", "rel/j.db")]
#[case("./odd:name.db", "./odd:name.db")]
#[case("C:\\crbot\\j.db", "C:\\crbot\\j.db")]
fn database_url_accepts_a_path_or_a_sqlite_url(#[case] value: &str, #[case] path: &str) {
    let c = load(&[("DATABASE_URL", value)]).expect("valid");
    assert_eq!(c.database_path, Some(PathBuf::from(path)));
    assert_eq!(c.journal_path(), PathBuf::from(path));
}

#[test]
fn journal_path_defaults_to_one_file_per_mode_in_the_data_folder() {
    let c = load(&[("CRBOT_MODE", "paper")]).expect("valid");
    assert_eq!(c.journal_path(), PathBuf::from("/data/journal-paper.db"));
}

#[test]
fn an_empty_value_counts_as_unset() {
    let c = load(&[("MAX_TRADES_PER_DAY", ""), ("ENV", "  ")]).expect("valid");
    assert_eq!(c.limits.max_trades_per_day, 10);
    assert_eq!(c.env, Environment::Development);
}

#[test]
fn env_example_documents_every_variable() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example")).expect("read");
    for v in crbot::config::VARIABLES {
        assert!(
            text.lines()
                .any(|l| l.trim_start_matches("# ").starts_with(&format!("{}=", v.name))),
            "{} is missing from .env.example",
            v.name
        );
    }
}

#[test]
fn env_example_as_is_is_a_valid_configuration_with_defaults() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example");
    let dotenv = crbot::config::read_env_file(std::path::Path::new(file)).expect("parses");
    let mut s = sources(&[]);
    s.dotenv = dotenv;
    let c = Config::from_sources(&s).expect("valid");
    assert_eq!(c.mode, crbot::domain::Mode::Sim);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[rstest]
#[case("postgresql://crbot:hunter2@db:5432/crbot")]
#[case("postgres://crbot:hunter2@db/crbot")]
#[case("PostgreSQL://crbot:hunter2@db/crbot?sslmode=verify-full")]
fn a_postgresql_url_selects_postgresql_and_never_shows_its_password(#[case] value: &str) {
    let c = load(&[("DATABASE_URL", value)]).expect("a PostgreSQL journal");
    assert!(c.database_path.is_none());
    let target = c.database_postgres.as_ref().expect("postgresql");
    assert!(matches!(c.journal_location(), Location::Postgres(_)));
    for shown in [
        format!("{c:?}"),
        c.journal_path().display().to_string(),
        target.shown().to_string(),
    ] {
        assert!(!shown.contains("hunter2"), "{shown}");
    }
    assert!(target.shown().contains("crbot:***@db"), "{}", target.shown());
}

#[rstest]
#[case("postgresql:crbot:hunter2@db")]
#[case("postgresql:/crbot:hunter2@db")]
#[case("postgres://crbot:hunter2@/crbot")]
#[case("postgres://crbot:hunter2@db")]
fn a_database_url_with_a_scheme_is_never_a_file_and_never_shows_its_password(#[case] value: &str) {
    let err = load(&[("DATABASE_URL", value)]).expect_err("not a usable URL");
    let text = err.to_string();
    assert!(text.starts_with("DATABASE_URL="), "{text}");
    assert!(text.contains("PostgreSQL"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[rstest]
#[case("postgresql://crbot:hunter2@db/crbot", false)]
#[case("postgresql://crbot:hunter2@db/crbot?sslmode=disable", false)]
#[case("postgresql://crbot:hunter2@db/crbot?sslmode=prefer", false)]
#[case("postgresql://crbot:hunter2@db/crbot?sslmode=require", true)]
#[case("postgresql://crbot:hunter2@db/crbot?sslmode=verify-full", true)]
fn production_refuses_a_plain_postgresql_connection_naming_database_url(
    #[case] value: &str,
    #[case] accepted: bool,
) {
    let production = [("ENV", "production"), ("DATABASE_URL", value)];
    match load(&production) {
        Ok(c) => {
            assert!(accepted, "{value} was accepted in production");
            assert_eq!(c.database_postgres.expect("pg").tls(), PgTls::Verified);
        }
        Err(e) => {
            let text = e.to_string();
            assert!(!accepted, "{value}: {text}");
            assert!(text.starts_with("DATABASE_URL="), "{text}");
            assert!(text.contains("production refuses"), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
        }
    }
    // Outside production the same URL is accepted (a local database on one machine).
    assert!(load(&[("DATABASE_URL", value)]).is_ok());
}

#[test]
fn numbers_and_booleans_ignore_surrounding_white_space() {
    let c = load(&[
        ("MAX_TRADES_PER_DAY", " 12 "),
        ("MAX_DAILY_LOSS_PERCENT", "\t2.5\n"),
        ("DEBUG", " true "),
    ])
    .expect("valid");
    assert_eq!(c.limits.max_trades_per_day, 12);
    assert_eq!(c.limits.max_daily_loss_percent, dec("2.5"));
    assert!(c.debug);
}

#[test]
fn every_optional_variable_left_empty_is_the_default() {
    let every: Vec<(&str, &str)> = crbot::config::VARIABLES
        .iter()
        .map(|v| (v.name, "   "))
        .chain([("RUST_LOG", "")])
        .collect();
    let c = load(&every).expect("empty values are unset");
    let defaults = load(&[]).expect("defaults");
    assert_eq!(format!("{:?}", c.limits), format!("{:?}", defaults.limits));
    assert_eq!(c.mode, defaults.mode);
    assert_eq!(c.paths, defaults.paths);
    assert!(c.database_path.is_none() && c.env_keys.is_none() && c.secret_key.is_none());
    assert_eq!(c.log_filter, "info");
}
