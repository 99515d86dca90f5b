//! `SECRETS_BACKEND` and the variables of each backend (`AWS_*`, `VAULT_*`).
//!
//! Owns: parsing and validating them, and the posture: plain keys (`env`) only in development;
//! staging and production take `vault`, `aws` or `hashicorp`, and reach AWS and HashiCorp Vault
//! over https only (staging also over http on this machine, like the exchange's URLs). Must not:
//! show `VAULT_TOKEN` or `VAULT_SECRET_ID` in an error or a warning (they are named, never
//! quoted), or contact a service: fetching is `crate::secrets`.

use super::{ConfigError, Environment, Sources, bad, endpoint};
use crate::secret::SecretString;
use crate::secrets::{
    AwsSettings, Backend, DEFAULT_KV_MOUNT, DEFAULT_SECRET_PATH, HashicorpSettings, SecretsSettings,
    VaultAuth,
};

/// The backend and its settings. `env_keys`: `BINANCE_API_KEY`/`SECRET` were given (and allowed,
/// so in development); with no `SECRETS_BACKEND` they are the backend, as they always were.
pub(super) fn secrets_settings(
    sources: &Sources,
    env: Environment,
    env_keys: bool,
    warnings: &mut Vec<String>,
) -> Result<SecretsSettings, ConfigError> {
    let backend = match sources.value("SECRETS_BACKEND") {
        None if env_keys => Backend::Env,
        None => Backend::Vault,
        Some(v) => {
            Backend::parse(v).ok_or_else(|| bad("SECRETS_BACKEND", v, "is not valid", Backend::ALLOWED))?
        }
    };
    let mut settings = SecretsSettings {
        backend,
        ..SecretsSettings::default()
    };
    match backend {
        Backend::Vault => {}
        Backend::Env if env != Environment::Development => {
            return Err(ConfigError::Refused {
                setting: "SECRETS_BACKEND=env".into(),
                env,
                why: "plain-text keys are for development only; staging and production take vault, aws or hashicorp"
                    .into(),
            });
        }
        Backend::Env if !env_keys => {
            return Err(ConfigError::BadSecret {
                name: "SECRETS_BACKEND",
                problem: "=env needs BINANCE_API_KEY and BINANCE_API_SECRET".into(),
            });
        }
        Backend::Env => {}
        Backend::Aws => settings.aws = Some(aws(sources, env, warnings)?),
        Backend::Hashicorp => settings.hashicorp = Some(hashicorp(sources, env, warnings)?),
    }
    Ok(settings)
}

fn required(sources: &Sources, name: &'static str, why: &str) -> Result<String, ConfigError> {
    sources
        .value(name)
        .map(str::to_string)
        .ok_or_else(|| ConfigError::BadSecret {
            name,
            problem: format!("is required with {why}"),
        })
}

fn aws(sources: &Sources, env: Environment, warnings: &mut Vec<String>) -> Result<AwsSettings, ConfigError> {
    let secret_id = required(
        sources,
        "AWS_SECRET_ID",
        "SECRETS_BACKEND=aws (the secret's name or ARN, e.g. crbot/binance/prod)",
    )?;
    if secret_id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(
            "AWS_SECRET_ID",
            &secret_id,
            "is not valid",
            "a secret name or ARN without spaces",
        ));
    }
    let region = match sources.value("AWS_REGION") {
        None => None,
        Some(r)
            if !r.is_empty()
                && r.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') =>
        {
            Some(r.to_string())
        }
        Some(r) => {
            return Err(bad(
                "AWS_REGION",
                r,
                "is not valid",
                "an AWS region such as eu-west-1",
            ));
        }
    };
    let endpoint = endpoint(sources, "AWS_ENDPOINT_URL", &["https", "http"], env, warnings)?;
    Ok(AwsSettings {
        secret_id,
        region,
        endpoint,
    })
}

fn hashicorp(
    sources: &Sources,
    env: Environment,
    warnings: &mut Vec<String>,
) -> Result<HashicorpSettings, ConfigError> {
    let Some(addr) = endpoint(sources, "VAULT_ADDR", &["https", "http"], env, warnings)? else {
        return Err(ConfigError::BadSecret {
            name: "VAULT_ADDR",
            problem: "is required with SECRETS_BACKEND=hashicorp (e.g. https://vault.example.com:8200)"
                .into(),
        });
    };
    let token = sources.value("VAULT_TOKEN");
    let role = sources.value("VAULT_ROLE_ID");
    let secret = sources.value("VAULT_SECRET_ID");
    let auth = match (token, role, secret) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(ConfigError::BadSecret {
                name: "VAULT_TOKEN",
                problem: "and VAULT_ROLE_ID/VAULT_SECRET_ID are both set: keep one way to log in".into(),
            });
        }
        (Some(t), None, None) => VaultAuth::Token(SecretString::from(t)),
        (None, Some(r), Some(s)) => VaultAuth::AppRole {
            role_id: SecretString::from(r),
            secret_id: SecretString::from(s),
        },
        (None, Some(_), None) => {
            return Err(ConfigError::BadSecret {
                name: "VAULT_ROLE_ID",
                problem: "is set but VAULT_SECRET_ID is not: AppRole needs both".into(),
            });
        }
        (None, None, Some(_)) => {
            return Err(ConfigError::BadSecret {
                name: "VAULT_SECRET_ID",
                problem: "is set but VAULT_ROLE_ID is not: AppRole needs both".into(),
            });
        }
        (None, None, None) => {
            return Err(ConfigError::BadSecret {
                name: "VAULT_TOKEN",
                problem: "is required with SECRETS_BACKEND=hashicorp, or AppRole's VAULT_ROLE_ID and VAULT_SECRET_ID"
                    .into(),
            });
        }
    };
    Ok(HashicorpSettings {
        addr,
        auth,
        mount: kv_path(sources, "VAULT_KV_MOUNT", DEFAULT_KV_MOUNT)?,
        path: kv_path(sources, "VAULT_SECRET_PATH", DEFAULT_SECRET_PATH)?,
    })
}

/// A mount or secret path: segments of letters, digits, `-`, `_`, `.`, joined by `/`.
fn kv_path(sources: &Sources, name: &'static str, default: &str) -> Result<String, ConfigError> {
    let Some(v) = sources.value(name) else {
        return Ok(default.to_string());
    };
    let trimmed = v.trim_matches('/');
    let ok = !trimmed.is_empty()
        && trimmed.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        });
    if ok {
        Ok(trimmed.to_string())
    } else {
        Err(bad(
            name,
            v,
            "is not valid",
            "path segments of letters, digits, - _ . separated by /",
        ))
    }
}
