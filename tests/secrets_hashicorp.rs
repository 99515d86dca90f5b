//! `SECRETS_BACKEND=hashicorp` against the KV version 2 double (`secrets_support::kv_double`,
//! written from HashiCorp's API documentation): token and AppRole logins, a new version picked
//! up at the next fetch, and one line for each failure, none quoting a secret.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod secrets_support;

use crbot::secret::SecretString;
use crbot::secrets::{self, Backend, HashicorpSettings, SecretsError, SecretsSettings, VaultAuth};
use crbot::vault::KeySecret;
use secrets_support::kv_double::{KvDouble, Policy};
use serde_json::json;

const API_SECRET: &str = "hmac-secret-from-the-kv-double-0123456789";
const TOKEN: &str = "hvs.reader-token-not-to-be-shown";

fn reader() -> Policy {
    Policy {
        read: vec!["secret/data/crbot/".into()],
        write: vec![],
    }
}

fn settings(double: &KvDouble, auth: VaultAuth, path: &str) -> SecretsSettings {
    SecretsSettings {
        backend: Backend::Hashicorp,
        aws: None,
        hashicorp: Some(HashicorpSettings {
            addr: double.url().parse().unwrap(),
            auth,
            mount: "secret".into(),
            path: path.into(),
        }),
    }
}

fn token(t: &str) -> VaultAuth {
    VaultAuth::Token(SecretString::from(t))
}

/// Fetches, expecting a failure; its text is one line and quotes no secret.
async fn refused(s: &SecretsSettings) -> (SecretsError, String) {
    let err = secrets::fetch(s).await.expect_err("refused");
    let text = err.to_string();
    assert!(!text.contains('\n'), "one line: {text}");
    for secret in [API_SECRET, TOKEN, "approle-secret-id", "hvs.double-issued"] {
        assert!(!text.contains(secret), "{text}");
    }
    (err, text)
}

#[tokio::test]
async fn a_token_reads_the_current_version_and_a_new_version_is_read_at_the_next_fetch() {
    let double = KvDouble::start(&["secret"]).await;
    double.token(TOKEN, reader());
    double.put(
        "secret",
        "crbot/binance",
        json!({"api_key": "KEY-V1", "api_secret": API_SECRET, "note": "rotated monthly"}),
    );
    let s = settings(&double, token(TOKEN), "crbot/binance");
    let keys = secrets::fetch(&s).await.unwrap();
    assert_eq!(keys.api_key.expose(), "KEY-V1");
    assert!(matches!(&keys.secret, KeySecret::Hmac(k) if k.expose() == API_SECRET));
    let seen = double.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str(), seen[0].had_token),
        ("GET", "secret/data/crbot/binance", true)
    );

    // Rotation: a new version, read by the next fetch (each start fetches).
    let version = double.put(
        "secret",
        "crbot/binance",
        json!({"api_key": "KEY-V2", "api_secret": "second-secret"}),
    );
    assert_eq!(version, 2);
    let keys = secrets::fetch(&s).await.unwrap();
    assert_eq!(keys.api_key.expose(), "KEY-V2");
}

#[tokio::test]
async fn an_ed25519_key_is_read_from_its_pem() {
    let double = KvDouble::start(&["secret"]).await;
    double.token(TOKEN, reader());
    let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";
    double.put(
        "secret",
        "crbot/binance",
        json!({"api_key": "ED-KEY", "ed25519_private_key_pem": pem}),
    );
    let keys = secrets::fetch(&settings(&double, token(TOKEN), "crbot/binance"))
        .await
        .unwrap();
    let KeySecret::Ed25519(seed) = &keys.secret else {
        panic!("an Ed25519 key")
    };
    assert_eq!(seed.expose().len(), 32);
}

#[tokio::test]
async fn approle_logs_in_for_a_token_and_a_wrong_secret_id_is_refused() {
    let double = KvDouble::start(&["secret"]).await;
    double.approle("role-crbot", "approle-secret-id", reader());
    double.put(
        "secret",
        "crbot/binance",
        json!({"api_key": "KEY-V1", "api_secret": API_SECRET}),
    );
    let auth = |secret: &str| VaultAuth::AppRole {
        role_id: SecretString::from("role-crbot"),
        secret_id: SecretString::from(secret),
    };
    let keys = secrets::fetch(&settings(&double, auth("approle-secret-id"), "crbot/binance"))
        .await
        .unwrap();
    assert_eq!(keys.api_key.expose(), "KEY-V1");
    let seen = double.seen();
    assert_eq!(seen[0].path, "auth/approle/login");
    assert!(seen[1].had_token, "the read carries the token AppRole issued");

    let (err, text) = refused(&settings(&double, auth("wrong"), "crbot/binance")).await;
    assert!(matches!(err, SecretsError::AccessDenied { .. }), "{err:?}");
    assert!(
        text.contains("invalid role or secret ID") && text.contains("VAULT_SECRET_ID"),
        "{text}"
    );
}

#[tokio::test]
async fn a_missing_or_deleted_secret_says_how_to_write_it() {
    let double = KvDouble::start(&["secret"]).await;
    let writer = Policy {
        read: vec!["secret/data/".into()],
        write: vec!["secret/data/".into()],
    };
    double.token(TOKEN, writer);
    let (err, text) = refused(&settings(&double, token(TOKEN), "crbot/nothing-here")).await;
    assert!(matches!(err, SecretsError::Missing { .. }), "{err:?}");
    assert!(
        text.contains("secret/crbot/nothing-here") && text.contains("vault kv put"),
        "{text}"
    );

    // A soft-deleted current version answers 404 with its metadata.
    double.put(
        "secret",
        "crbot/binance",
        json!({"api_key": "K", "api_secret": API_SECRET}),
    );
    let res = reqwest::Client::new()
        .delete(format!("{}/v1/secret/data/crbot/binance", double.url()))
        .header("X-Vault-Token", TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let (err, text) = refused(&settings(&double, token(TOKEN), "crbot/binance")).await;
    assert!(matches!(err, SecretsError::Missing { .. }), "{err:?}");
    assert!(text.contains("version 1 was deleted"), "{text}");
}

#[tokio::test]
async fn permission_denied_names_the_capability_to_grant() {
    let double = KvDouble::start(&["secret"]).await;
    double.token(
        TOKEN,
        Policy {
            read: vec!["secret/data/other/".into()],
            write: vec![],
        },
    );
    double.put(
        "secret",
        "crbot/binance",
        json!({"api_key": "K", "api_secret": API_SECRET}),
    );
    let (err, text) = refused(&settings(&double, token(TOKEN), "crbot/binance")).await;
    assert!(matches!(err, SecretsError::AccessDenied { .. }), "{err:?}");
    assert!(
        text.contains("permission denied") && text.contains("`read` on secret/data/crbot/binance"),
        "{text}"
    );
    // An unknown token is denied the same way.
    let (err, _) = refused(&settings(&double, token("hvs.unknown"), "crbot/binance")).await;
    assert!(matches!(err, SecretsError::AccessDenied { .. }), "{err:?}");
}

#[tokio::test]
async fn a_malformed_secret_names_the_field_without_quoting_it() {
    let double = KvDouble::start(&["secret"]).await;
    double.token(TOKEN, reader());
    double.put("secret", "crbot/no-secret", json!({"api_key": "K"}));
    double.put(
        "secret",
        "crbot/number",
        json!({"api_key": "K", "api_secret": 12345}),
    );
    double.put(
        "secret",
        "crbot/bad-pem",
        json!({"api_key": "K", "ed25519_private_key_pem": API_SECRET}),
    );
    for (path, want) in [
        ("crbot/no-secret", "neither \"api_secret\""),
        ("crbot/number", "not a JSON object of strings"),
        ("crbot/bad-pem", "not a PKCS#8 PEM"),
    ] {
        let (err, text) = refused(&settings(&double, token(TOKEN), path)).await;
        assert!(matches!(err, SecretsError::Malformed { .. }), "{err:?}");
        assert!(text.contains(want) && text.contains(path), "{text}");
        assert!(!text.contains("12345"), "{text}");
    }
}

#[tokio::test]
async fn a_sealed_or_unreachable_vault_is_one_line_naming_vault_addr() {
    let double = KvDouble::start(&["secret"]).await;
    double.token(TOKEN, reader());
    double.seal(true);
    let (_, text) = refused(&settings(&double, token(TOKEN), "crbot/binance")).await;
    assert!(text.contains("sealed"), "{text}");

    let port = secrets_support::closed_port();
    let mut s = settings(&double, token(TOKEN), "crbot/binance");
    s.hashicorp.as_mut().unwrap().addr = format!("http://127.0.0.1:{port}").parse().unwrap();
    let (err, text) = refused(&s).await;
    assert!(matches!(err, SecretsError::Unreachable { .. }), "{err:?}");
    assert!(
        text.contains(&format!("VAULT_ADDR=http://127.0.0.1:{port}")) && text.contains("unreachable"),
        "{text}"
    );
}
