//! `SECRETS_BACKEND` and its variables: parsing, defaults, the posture of `ENV`, and one-line
//! messages that name the variable and never show a token.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crbot::config::{Config, ConfigError, Paths, Sources};
use crbot::secrets::{Backend, VaultAuth};

fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_sources(&Sources {
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
    })
}

fn refused(pairs: &[(&str, &str)]) -> String {
    let text = load(pairs).expect_err("refused").to_string();
    assert!(!text.contains('\n'), "one line: {text}");
    text
}

const AWS: [(&str, &str); 2] = [
    ("SECRETS_BACKEND", "aws"),
    ("AWS_SECRET_ID", "crbot/binance/prod"),
];

#[test]
fn the_vault_is_the_default_and_plain_keys_in_development_are_env_as_before() {
    assert_eq!(load(&[]).unwrap().secrets.backend, Backend::Vault);
    let c = load(&[("BINANCE_API_KEY", "k"), ("BINANCE_API_SECRET", "s")]).unwrap();
    assert_eq!(c.secrets.backend, Backend::Env);
    assert!(
        c.warnings.iter().any(|w| w.contains("plain text")),
        "{:?}",
        c.warnings
    );
    // Asked for explicitly, the vault wins over plain keys.
    let c = load(&[
        ("SECRETS_BACKEND", "vault"),
        ("BINANCE_API_KEY", "k"),
        ("BINANCE_API_SECRET", "s"),
        ("CRBOT_MODE", "testnet"),
    ])
    .unwrap();
    assert_eq!(c.secrets.backend, Backend::Vault);
    assert!(c.keys_from_vault());
}

#[test]
fn an_unknown_backend_names_the_variable_and_the_allowed_values() {
    let text = refused(&[("SECRETS_BACKEND", "gcp")]);
    assert!(text.starts_with("SECRETS_BACKEND=gcp"), "{text}");
    assert!(text.contains("vault, aws, hashicorp, env"), "{text}");
}

#[test]
fn env_is_refused_in_staging_and_production_and_needs_the_keys_in_development() {
    for env in ["staging", "production"] {
        let text = refused(&[
            ("ENV", env),
            ("SECRET_KEY", "a signing key of at least thirty-two characters"),
            ("SECRETS_BACKEND", "env"),
        ]);
        assert!(
            text.contains("SECRETS_BACKEND=env") && text.contains(env),
            "{text}"
        );
    }
    let text = refused(&[("SECRETS_BACKEND", "env")]);
    assert!(text.contains("BINANCE_API_KEY"), "{text}");
    let c = load(&[
        ("SECRETS_BACKEND", "env"),
        ("BINANCE_API_KEY", "k"),
        ("BINANCE_API_SECRET", "s"),
    ])
    .unwrap();
    assert_eq!(c.secrets.backend, Backend::Env);
}

#[test]
fn aws_takes_its_secret_id_region_and_endpoint() {
    let text = refused(&[("SECRETS_BACKEND", "aws")]);
    assert!(text.starts_with("AWS_SECRET_ID is required"), "{text}");
    let c = load(&[
        AWS[0],
        AWS[1],
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
        ("CRBOT_MODE", "live"),
    ])
    .unwrap();
    let aws = c.secrets.aws.clone().unwrap();
    assert_eq!(aws.secret_id, "crbot/binance/prod");
    assert_eq!(aws.region.as_deref(), Some("eu-west-1"));
    assert_eq!(aws.endpoint.unwrap().as_str(), "http://127.0.0.1:4566/");
    assert!(!c.keys_from_vault(), "no passphrase needed");
    assert_eq!(c.secrets.describe(), "aws (AWS_SECRET_ID=crbot/binance/prod)");
    let text = refused(&[AWS[0], AWS[1], ("AWS_REGION", "Europe West")]);
    assert!(text.starts_with("AWS_REGION="), "{text}");
}

#[test]
fn production_reaches_the_secrets_services_over_https_only() {
    let prod = [
        ("ENV", "production"),
        ("SECRET_KEY", "a signing key of at least thirty-two characters"),
    ];
    let mut aws = prod.to_vec();
    aws.extend([AWS[0], AWS[1], ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")]);
    assert!(refused(&aws).contains("AWS_ENDPOINT_URL"));
    let mut vault = prod.to_vec();
    vault.extend([
        ("SECRETS_BACKEND", "hashicorp"),
        ("VAULT_ADDR", "http://vault.internal:8200"),
        ("VAULT_TOKEN", "hvs.CAESIJ-not-shown"),
    ]);
    let text = refused(&vault);
    assert!(
        text.contains("VAULT_ADDR") && text.contains("production"),
        "{text}"
    );
    assert!(!text.contains("hvs."), "{text}");
    vault[3] = ("VAULT_ADDR", "https://vault.internal:8200");
    let c = load(&vault).expect("https is accepted");
    assert_eq!(c.secrets.backend, Backend::Hashicorp);
    // Staging may use plain http on this machine only, as for the exchange's URLs.
    let mut staging = vault.clone();
    staging[0] = ("ENV", "staging");
    staging[3] = ("VAULT_ADDR", "http://127.0.0.1:8200");
    assert!(load(&staging).is_ok());
    staging[3] = ("VAULT_ADDR", "http://vault.internal:8200");
    assert!(refused(&staging).contains("VAULT_ADDR"));
}

#[test]
fn hashicorp_takes_a_token_or_approle_and_defaults_its_mount_and_path() {
    let base = [
        ("SECRETS_BACKEND", "hashicorp"),
        ("VAULT_ADDR", "https://vault.example.com:8200"),
    ];
    let text = refused(&base);
    assert!(
        text.contains("VAULT_TOKEN") && text.contains("VAULT_ROLE_ID"),
        "{text}"
    );

    let mut with_token = base.to_vec();
    with_token.push(("VAULT_TOKEN", "hvs.secret-token"));
    let c = load(&with_token).unwrap();
    let h = c.secrets.hashicorp.clone().unwrap();
    assert!(matches!(&h.auth, VaultAuth::Token(t) if t.expose() == "hvs.secret-token"));
    assert_eq!((h.mount.as_str(), h.path.as_str()), ("secret", "crbot/binance"));
    assert!(
        !format!("{c:?}").contains("hvs.secret-token"),
        "Debug hides the token"
    );

    let mut approle = base.to_vec();
    approle.extend([
        ("VAULT_ROLE_ID", "role-1"),
        ("VAULT_SECRET_ID", "sid-1"),
        ("VAULT_KV_MOUNT", "/kv/"),
        ("VAULT_SECRET_PATH", "trading/crbot/live"),
    ]);
    let h = load(&approle).unwrap().secrets.hashicorp.unwrap();
    assert!(matches!(h.auth, VaultAuth::AppRole { .. }));
    assert_eq!((h.mount.as_str(), h.path.as_str()), ("kv", "trading/crbot/live"));

    let mut half = base.to_vec();
    half.push(("VAULT_ROLE_ID", "role-1"));
    assert!(refused(&half).contains("VAULT_SECRET_ID"));
    let mut both = with_token.clone();
    both.extend([("VAULT_ROLE_ID", "role-1"), ("VAULT_SECRET_ID", "sid-1")]);
    let text = refused(&both);
    assert!(!text.contains("hvs.") && !text.contains("sid-1"), "{text}");
    let mut bad_path = with_token.clone();
    bad_path.push(("VAULT_SECRET_PATH", "crbot/../other"));
    assert!(refused(&bad_path).starts_with("VAULT_SECRET_PATH="));
    let mut no_addr = with_token.clone();
    no_addr.remove(1);
    assert!(refused(&no_addr).starts_with("VAULT_ADDR is required"));
}
