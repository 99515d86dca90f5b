//! Where the engine's API keys come from when no passphrase can be typed (`SECRETS_BACKEND`):
//! the passphrase vault (`vault`, the default, read by `crate::vault`), AWS Secrets Manager
//! (`aws`), HashiCorp Vault's KV version 2 engine (`hashicorp`), or plain environment variables
//! in development (`env`).
//!
//! Owns: the backends' settings (filled by `crate::config`, which validates them), fetching one
//! secret from AWS or HashiCorp and turning its JSON (`{"api_key","api_secret"}` or
//! `{"api_key","ed25519_private_key_pem"}`) into [`ModeKeys`], and the one-line error of each
//! way that can fail. Must not: read the configuration or the process environment itself (the
//! AWS SDK's own credential chain aside), write a key anywhere, or put a secret in an error, a
//! log line or a `format!`: responses are parsed from zeroizing buffers, which are wiped as soon
//! as the keys are out of them.

pub mod aws;
pub mod fields;
pub mod hashicorp;

use std::fmt;

use url::Url;

use crate::secret::SecretString;
use crate::vault::ModeKeys;

/// `SECRETS_BACKEND`: where the keys of a mode that trades with keys come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// The passphrase vault (`crbot vault …`).
    #[default]
    Vault,
    /// AWS Secrets Manager, secret `AWS_SECRET_ID`.
    Aws,
    /// HashiCorp Vault, KV version 2.
    Hashicorp,
    /// `BINANCE_API_KEY` / `BINANCE_API_SECRET` in plain text (development only).
    Env,
}

impl Backend {
    /// The values `SECRETS_BACKEND` takes.
    pub const ALLOWED: &'static str = "vault, aws, hashicorp, env";

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Vault => "vault",
            Backend::Aws => "aws",
            Backend::Hashicorp => "hashicorp",
            Backend::Env => "env",
        }
    }

    /// Parses a `SECRETS_BACKEND` value (case and surrounding spaces ignored).
    pub fn parse(value: &str) -> Option<Backend> {
        match value.trim().to_ascii_lowercase().as_str() {
            "vault" => Some(Backend::Vault),
            "aws" => Some(Backend::Aws),
            "hashicorp" => Some(Backend::Hashicorp),
            "env" => Some(Backend::Env),
            _ => None,
        }
    }

    /// Whether the keys are fetched from a service (rather than a file or the environment).
    pub fn is_service(self) -> bool {
        matches!(self, Backend::Aws | Backend::Hashicorp)
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `aws`: which secret, and the region and endpoint when given in crbot's configuration
/// (otherwise the SDK's own chain decides: `AWS_REGION`, profiles, instance metadata).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    /// `AWS_SECRET_ID`: the secret's name or ARN.
    pub secret_id: String,
    /// `AWS_REGION`.
    pub region: Option<String>,
    /// `AWS_ENDPOINT_URL` (e.g. a local Secrets Manager in tests).
    pub endpoint: Option<Url>,
}

/// How crbot logs in to HashiCorp Vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaultAuth {
    /// `VAULT_TOKEN`.
    Token(SecretString),
    /// `VAULT_ROLE_ID` + `VAULT_SECRET_ID` → `POST /v1/auth/approle/login`.
    AppRole {
        role_id: SecretString,
        secret_id: SecretString,
    },
}

/// `hashicorp`: the server, the login and where the secret lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashicorpSettings {
    /// `VAULT_ADDR`, e.g. `https://vault.example.com:8200`.
    pub addr: Url,
    pub auth: VaultAuth,
    /// `VAULT_KV_MOUNT` (default `secret`).
    pub mount: String,
    /// `VAULT_SECRET_PATH` (default `crbot/binance`).
    pub path: String,
}

/// `VAULT_KV_MOUNT`'s default.
pub const DEFAULT_KV_MOUNT: &str = "secret";
/// `VAULT_SECRET_PATH`'s default.
pub const DEFAULT_SECRET_PATH: &str = "crbot/binance";

/// The chosen backend with its settings (validated by `crate::config`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecretsSettings {
    pub backend: Backend,
    /// Present when `backend` is `Aws`.
    pub aws: Option<AwsSettings>,
    /// Present when `backend` is `Hashicorp`.
    pub hashicorp: Option<HashicorpSettings>,
}

impl SecretsSettings {
    /// Where the keys come from, for `doctor` and `health` (never a key): the backend and the
    /// secret's name, e.g. `aws (AWS_SECRET_ID=crbot/binance/prod)`.
    pub fn describe(&self) -> String {
        match (self.backend, &self.aws, &self.hashicorp) {
            (Backend::Aws, Some(a), _) => format!("aws (AWS_SECRET_ID={})", a.secret_id),
            (Backend::Hashicorp, _, Some(h)) => format!(
                "hashicorp ({}, KV v2 {}/{})",
                h.addr.as_str().trim_end_matches('/'),
                h.mount,
                h.path
            ),
            (Backend::Env, ..) => "env (BINANCE_API_KEY/BINANCE_API_SECRET, development only)".to_string(),
            (backend, ..) => backend.as_str().to_string(),
        }
    }
}

/// Why the keys could not be fetched: one line that names what to fix, never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    #[error("{backend}: the secret {name} does not exist: {fix}")]
    Missing {
        backend: &'static str,
        name: String,
        fix: String,
    },
    #[error("{backend}: the secret {name} {problem}")]
    Malformed {
        backend: &'static str,
        name: String,
        problem: String,
    },
    #[error("{backend}: access denied to {name}: {fix}")]
    AccessDenied {
        backend: &'static str,
        name: String,
        fix: String,
    },
    #[error("{backend}: {endpoint} is unreachable ({cause}): check the address and the network")]
    Unreachable {
        backend: &'static str,
        endpoint: String,
        cause: String,
    },
    #[error("{backend}: no credentials: {fix}")]
    NoCredentials { backend: &'static str, fix: String },
    #[error("{backend}: {detail}")]
    Other { backend: &'static str, detail: String },
    #[error("SECRETS_BACKEND={0} does not fetch keys from a service")]
    NotAService(Backend),
}

/// Fetches the keys from the configured service (`aws` or `hashicorp`). Called at every start
/// (and by every command that needs keys), so a rotated secret is used from the next start on.
pub async fn fetch(settings: &SecretsSettings) -> Result<ModeKeys, SecretsError> {
    match (settings.backend, &settings.aws, &settings.hashicorp) {
        (Backend::Aws, Some(a), _) => aws::fetch(a).await,
        (Backend::Hashicorp, _, Some(h)) => hashicorp::fetch(h).await,
        (backend, ..) => Err(SecretsError::NotAService(backend)),
    }
}

/// Cuts a service's message to one short line (they can be long, or span lines).
pub(crate) fn one_line(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = flat.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 200 {
        let cut: String = flat.chars().take(200).collect();
        format!("{cut}…")
    } else {
        flat
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_parse_from_their_names_only() {
        for b in [Backend::Vault, Backend::Aws, Backend::Hashicorp, Backend::Env] {
            assert_eq!(Backend::parse(b.as_str()), Some(b));
            assert_eq!(
                Backend::parse(&format!(" {} ", b.as_str().to_uppercase())),
                Some(b)
            );
        }
        assert_eq!(Backend::parse("aws-secrets-manager"), None);
        assert_eq!(Backend::parse(""), None);
    }

    #[test]
    fn describe_names_the_secret_not_the_key() {
        let s = SecretsSettings {
            backend: Backend::Hashicorp,
            aws: None,
            hashicorp: Some(HashicorpSettings {
                addr: Url::parse("https://vault.example.com:8200").expect("url"),
                auth: VaultAuth::Token(SecretString::from("hvs.tokenvalue")),
                mount: "secret".into(),
                path: "crbot/binance".into(),
            }),
        };
        let text = s.describe();
        assert_eq!(
            text,
            "hashicorp (https://vault.example.com:8200, KV v2 secret/crbot/binance)"
        );
        assert!(!text.contains("hvs."));
    }

    #[test]
    fn one_line_flattens_and_cuts() {
        assert_eq!(one_line("a\nb\tc"), "a b c");
        assert!(one_line(&"x".repeat(500)).chars().count() <= 201);
    }
}
