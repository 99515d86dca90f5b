//! The posture `ENV` enforces: production refuses debug, plain-text keys and unencrypted
//! endpoints; development allows them loudly; staging sits between (see `crbot::config` docs).
//! Secret values never appear in a message.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crbot::config::{Config, ConfigError, Environment, Paths, Sources};
use rstest::rstest;

const KEY: &str = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
const SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e8UrAUmWP0fAL3RcYq3lsZ9VdLk";

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn sources(env: &str, pairs: &[(&str, &str)]) -> Sources {
    let mut process = map(pairs);
    process.insert("ENV".into(), env.into());
    Sources {
        process,
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

fn refused(s: &Sources) -> ConfigError {
    let err = Config::from_sources(s).expect_err("must be refused");
    assert!(matches!(err, ConfigError::Refused { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        !text.contains(KEY) && !text.contains(SECRET),
        "a secret leaked: {text}"
    );
    err
}

#[rstest]
#[case("production")]
#[case("staging")]
fn debug_true_is_refused_outside_development(#[case] env: &str) {
    let err = refused(&sources(env, &[("DEBUG", "true")]));
    assert_eq!(
        err.to_string(),
        format!(
            "DEBUG=true is refused with ENV={env}: debug output may expose account details; unset DEBUG \
             or set it to false"
        )
    );
}

#[test]
fn debug_false_is_fine_in_production() {
    let c = Config::from_sources(&sources("production", &[("DEBUG", "false")])).expect("valid");
    assert_eq!(c.env, Environment::Production);
    assert!(c.json_logs());
}

#[rstest]
#[case("production")]
#[case("staging")]
fn plain_text_keys_in_the_environment_are_refused_outside_development(#[case] env: &str) {
    let err = refused(&sources(
        env,
        &[("BINANCE_API_KEY", KEY), ("BINANCE_API_SECRET", SECRET)],
    ));
    let text = err.to_string();
    assert!(
        text.starts_with("BINANCE_API_KEY/BINANCE_API_SECRET in the environment is refused"),
        "{text}"
    );
    assert!(text.contains("vault"), "{text}");
}

#[test]
fn plain_text_keys_in_dotenv_are_refused_in_production() {
    let mut s = sources("production", &[]);
    s.dotenv = map(&[("BINANCE_API_KEY", KEY), ("BINANCE_API_SECRET", SECRET)]);
    let text = refused(&s).to_string();
    assert!(text.contains("in .env is refused"), "{text}");
}

#[test]
fn plain_text_keys_in_the_config_file_are_refused_in_production() {
    let mut s = sources("production", &[]);
    s.config_file = map(&[("BINANCE_API_KEY", KEY), ("BINANCE_API_SECRET", SECRET)]);
    let text = refused(&s).to_string();
    assert!(text.contains("crbot.env"), "{text}");
}

#[test]
fn production_in_dotenv_still_refuses_keys_from_the_environment() {
    let mut s = sources(
        "production",
        &[("BINANCE_API_KEY", KEY), ("BINANCE_API_SECRET", SECRET)],
    );
    s.process.remove("ENV");
    s.dotenv = map(&[("ENV", "production")]);
    refused(&s);
}

#[test]
fn development_allows_plain_text_keys_with_a_loud_warning() {
    let c = Config::from_sources(&sources(
        "development",
        &[("BINANCE_API_KEY", KEY), ("BINANCE_API_SECRET", SECRET)],
    ))
    .expect("allowed in development");
    let keys = c.env_keys.as_ref().expect("keys kept");
    assert_eq!((keys.api_key.expose(), keys.api_secret.expose()), (KEY, SECRET));
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0].contains("plain text") && c.warnings[0].contains("ENV=development"));
    let shown = format!("{c:?} {:?}", c.warnings);
    assert!(
        !shown.contains(KEY) && !shown.contains(SECRET),
        "a secret leaked in Debug"
    );
}

#[rstest]
#[case(
    "BINANCE_API_KEY",
    KEY,
    "BINANCE_API_KEY is set but BINANCE_API_SECRET is not: set both or neither"
)]
#[case(
    "BINANCE_API_SECRET",
    SECRET,
    "BINANCE_API_SECRET is set but BINANCE_API_KEY is not: set both or neither"
)]
fn half_a_key_pair_is_an_error_that_never_shows_the_value(
    #[case] name: &str,
    #[case] value: &str,
    #[case] message: &str,
) {
    let err = Config::from_sources(&sources("development", &[(name, value)])).expect_err("refused");
    assert_eq!(err.to_string(), message);
}

#[rstest]
#[case("BINANCE_REST_URL", "http://api.example.test")]
#[case("BINANCE_WS_URL", "ws://stream.example.test")]
#[case("BINANCE_WS_API_URL", "ws://127.0.0.1:9000/ws-api/v3")]
#[case("BINANCE_REST_URL", "http://localhost:8080")]
fn production_refuses_unencrypted_endpoints(#[case] name: &str, #[case] url: &str) {
    let text = refused(&sources("production", &[(name, url)])).to_string();
    assert!(
        text.starts_with(&format!("{name}={url} is refused with ENV=production: ")),
        "{text}"
    );
    assert!(text.contains("unencrypted"), "{text}");
}

#[test]
fn production_accepts_https_and_wss_endpoints() {
    let c = Config::from_sources(&sources(
        "production",
        &[
            ("BINANCE_REST_URL", "https://api.binance.com"),
            ("BINANCE_WS_URL", "wss://stream.binance.com:9443"),
            ("BINANCE_WS_API_URL", "wss://ws-api.binance.com:443/ws-api/v3"),
        ],
    ))
    .expect("valid");
    assert_eq!(
        c.endpoints.rest.as_ref().map(|u| u.as_str()),
        Some("https://api.binance.com/")
    );
    assert!(c.endpoints.ws.is_some() && c.endpoints.ws_api.is_some());
    assert!(c.warnings.is_empty());
}

#[test]
fn staging_allows_unencrypted_loopback_endpoints_with_a_warning_but_not_remote_ones() {
    let c = Config::from_sources(&sources(
        "staging",
        &[("BINANCE_REST_URL", "http://127.0.0.1:8080")],
    ))
    .expect("loopback allowed in staging");
    assert_eq!(c.warnings.len(), 1);
    assert!(c.warnings[0].contains("on this machine"), "{:?}", c.warnings);
    refused(&sources(
        "staging",
        &[("BINANCE_REST_URL", "http://10.0.0.5:8080")],
    ));
}

#[test]
fn development_allows_unencrypted_endpoints_with_a_warning() {
    let c = Config::from_sources(&sources(
        "development",
        &[
            ("BINANCE_REST_URL", "http://api.example.test"),
            ("BINANCE_WS_URL", "ws://127.0.0.1:9000"),
            ("DEBUG", "true"),
        ],
    ))
    .expect("allowed");
    assert!(c.debug);
    assert_eq!(c.warnings.len(), 3, "{:?}", c.warnings);
    assert!(c.warnings.iter().any(|w| w.contains("OVER THE NETWORK")));
    assert!(c.warnings.iter().any(|w| w.starts_with("DEBUG=true")));
}

#[test]
fn an_endpoint_with_credentials_in_it_is_refused_without_showing_them() {
    let err = Config::from_sources(&sources(
        "development",
        &[("BINANCE_REST_URL", "https://user:hunter2@api.example.test")],
    ))
    .expect_err("refused");
    assert_eq!(
        err.to_string(),
        "BINANCE_REST_URL must not carry a user name or password"
    );
}
