//! `SECRETS_BACKEND=hashicorp`: HashiCorp Vault's KV version 2 engine over its HTTP API.
//!
//! Owns: the login (`VAULT_TOKEN` as is, or AppRole: `POST /v1/auth/approle/login` with
//! `role_id` and `secret_id` → `auth.client_token`), the read (`GET /v1/{mount}/data/{path}`
//! with `X-Vault-Token`; the keys are `data.data`, the version's facts `data.metadata`), and
//! the mapping of Vault's answers to one line each (403 permission denied, 404 no secret or a
//! deleted version, 503 sealed, the `errors` array otherwise). Must not: keep the token or the
//! body after the keys are parsed, or quote the body (only Vault's `errors` strings, which
//! never carry secret data).

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderValue;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::fields::{Field, KeyFields, json_problem};
use super::{HashicorpSettings, SecretsError, VaultAuth, one_line};
use crate::secret::SecretString;
use crate::vault::ModeKeys;

const BACKEND: &str = "hashicorp";
/// A KV secret of two keys is a few hundred bytes; a body larger than this is not one.
const MAX_BODY: usize = 1 << 20;

/// `GET /v1/{mount}/data/{path}`'s body: the version's data and metadata.
#[derive(Deserialize)]
struct ReadAnswer {
    data: Option<Version>,
}

#[derive(Deserialize)]
struct Version {
    data: Option<KeyFields>,
    metadata: Option<Metadata>,
}

#[derive(Deserialize, Default)]
struct Metadata {
    #[serde(default)]
    version: Option<u64>,
    #[serde(default)]
    deletion_time: Option<String>,
    #[serde(default)]
    destroyed: Option<bool>,
}

/// `POST /v1/auth/approle/login`'s body.
#[derive(Deserialize)]
struct LoginAnswer {
    auth: Option<LoginAuth>,
}

#[derive(Deserialize)]
struct LoginAuth {
    client_token: Field,
}

/// An error body: `{"errors": ["…"]}`.
#[derive(Deserialize, Default)]
struct Errors {
    #[serde(default)]
    errors: Vec<String>,
}

/// Fetches and parses the current version of `{mount}/{path}`.
pub async fn fetch(settings: &HashicorpSettings) -> Result<ModeKeys, SecretsError> {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(20))
        .build()
        .map_err(|e| SecretsError::Other {
            backend: BACKEND,
            detail: format!("cannot build the HTTP client: {e}"),
        })?;
    let token = match &settings.auth {
        VaultAuth::Token(token) => token.clone(),
        VaultAuth::AppRole { role_id, secret_id } => login(&client, settings, role_id, secret_id).await?,
    };
    let url = format!(
        "{}/v1/{}/data/{}",
        origin(settings),
        settings.mount.trim_matches('/'),
        settings.path.trim_matches('/')
    );
    let response = client
        .get(&url)
        .header("X-Vault-Token", sensitive(&token)?)
        .send()
        .await
        .map_err(|e| unreachable(settings, &e))?;
    drop(token);
    let status = response.status();
    let body = read_body(response, settings).await?;
    let name = format!("{}/{}", settings.mount, settings.path);
    match status {
        StatusCode::OK => {
            let answer: ReadAnswer =
                serde_json::from_slice(&body).map_err(|e| malformed(&name, json_problem(&e)))?;
            let Some(fields) = answer.data.and_then(|v| v.data) else {
                return Err(malformed(
                    &name,
                    "has no data.data (is this mount KV version 2?)".into(),
                ));
            };
            drop(body);
            fields.into_keys().map_err(|problem| malformed(&name, problem))
        }
        StatusCode::NOT_FOUND => Err(missing(settings, &name, &body)),
        StatusCode::FORBIDDEN => Err(SecretsError::AccessDenied {
            backend: BACKEND,
            name: name.clone(),
            fix: format!(
                "Vault says {}; give the token's policy `read` on {}/data/{}",
                errors_of(&body).unwrap_or_else(|| "permission denied".into()),
                settings.mount,
                settings.path
            ),
        }),
        other => Err(answered(other, &body)),
    }
}

/// AppRole login: the role and secret IDs for a short-lived client token.
async fn login(
    client: &reqwest::Client,
    settings: &HashicorpSettings,
    role_id: &SecretString,
    secret_id: &SecretString,
) -> Result<SecretString, SecretsError> {
    #[derive(serde::Serialize)]
    struct Login<'a> {
        role_id: &'a str,
        secret_id: &'a str,
    }
    let request = serde_json::to_vec(&Login {
        role_id: role_id.expose(),
        secret_id: secret_id.expose(),
    })
    .map_err(|e| SecretsError::Other {
        backend: BACKEND,
        detail: format!("cannot encode the AppRole login: {e}"),
    })?;
    // The buffer moves into the request (no second copy); the HTTP stack frees it once sent.
    let response = client
        .post(format!("{}/v1/auth/approle/login", origin(settings)))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(request)
        .send()
        .await
        .map_err(|e| unreachable(settings, &e))?;
    let status = response.status();
    let body = read_body(response, settings).await?;
    match status {
        StatusCode::OK => {
            let answer: LoginAnswer = serde_json::from_slice(&body).map_err(|_| SecretsError::Other {
                backend: BACKEND,
                detail: "the AppRole login answered without auth.client_token".into(),
            })?;
            answer
                .auth
                .map(|a| a.client_token.0)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| SecretsError::Other {
                    backend: BACKEND,
                    detail: "the AppRole login answered without auth.client_token".into(),
                })
        }
        StatusCode::BAD_REQUEST | StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => {
            Err(SecretsError::AccessDenied {
                backend: BACKEND,
                name: "auth/approle/login".into(),
                fix: format!(
                    "Vault says {}; check VAULT_ROLE_ID and VAULT_SECRET_ID (a secret ID can expire or be used up)",
                    errors_of(&body).unwrap_or_else(|| status.to_string())
                ),
            })
        }
        StatusCode::NOT_FOUND => Err(SecretsError::Other {
            backend: BACKEND,
            detail: "AppRole is not enabled at auth/approle (404): enable it, or use VAULT_TOKEN".into(),
        }),
        other => Err(answered(other, &body)),
    }
}

/// The token as a header value marked sensitive (kept out of the HTTP stack's debug output).
fn sensitive(token: &SecretString) -> Result<HeaderValue, SecretsError> {
    let mut value = HeaderValue::from_str(token.expose()).map_err(|_| SecretsError::Other {
        backend: BACKEND,
        detail: "the Vault token has characters a header cannot carry: check VAULT_TOKEN".into(),
    })?;
    value.set_sensitive(true);
    Ok(value)
}

fn origin(settings: &HashicorpSettings) -> &str {
    settings.addr.as_str().trim_end_matches('/')
}

/// The body, chunk by chunk into a buffer that is wiped when dropped.
async fn read_body(
    mut response: reqwest::Response,
    settings: &HashicorpSettings,
) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
    let mut body = Zeroizing::new(Vec::with_capacity(1024));
    while let Some(chunk) = response.chunk().await.map_err(|e| unreachable(settings, &e))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(SecretsError::Other {
                backend: BACKEND,
                detail: "the answer is larger than 1 MiB: is VAULT_ADDR a Vault server?".into(),
            });
        }
        // Grow by hand, so that no reallocation leaves an unwiped copy behind.
        if body.capacity() < body.len() + chunk.len() {
            let mut bigger = Zeroizing::new(Vec::with_capacity((body.len() + chunk.len()) * 2));
            bigger.extend_from_slice(&body);
            body = bigger;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn errors_of(body: &[u8]) -> Option<String> {
    let errors: Errors = serde_json::from_slice(body).ok()?;
    let text = one_line(&errors.errors.join("; "));
    (!text.is_empty()).then_some(text)
}

fn missing(settings: &HashicorpSettings, name: &str, body: &[u8]) -> SecretsError {
    // A deleted or destroyed current version answers 404 with its metadata.
    let metadata = serde_json::from_slice::<ReadAnswer>(body)
        .ok()
        .and_then(|a| a.data)
        .and_then(|v| v.metadata)
        .unwrap_or_default();
    let version = metadata.version.map(|v| format!(" {v}")).unwrap_or_default();
    let fix = if metadata.destroyed == Some(true) {
        format!("its current version{version} was destroyed: write a new version")
    } else if metadata.deletion_time.as_deref().is_some_and(|t| !t.is_empty()) {
        format!("its current version{version} was deleted: undelete it or write a new version")
    } else {
        format!(
            "write it with `vault kv put -mount={} {} api_key=… api_secret=…`, or correct VAULT_KV_MOUNT/VAULT_SECRET_PATH",
            settings.mount, settings.path
        )
    };
    SecretsError::Missing {
        backend: BACKEND,
        name: name.to_string(),
        fix,
    }
}

fn malformed(name: &str, problem: String) -> SecretsError {
    SecretsError::Malformed {
        backend: BACKEND,
        name: name.to_string(),
        problem,
    }
}

fn answered(status: StatusCode, body: &[u8]) -> SecretsError {
    let detail = match (status, errors_of(body)) {
        (StatusCode::SERVICE_UNAVAILABLE, _) => "Vault is sealed or not ready (503): unseal it".to_string(),
        (_, Some(errors)) => format!("Vault answered {status}: {errors}"),
        (_, None) => format!("Vault answered {status}"),
    };
    SecretsError::Other {
        backend: BACKEND,
        detail,
    }
}

fn unreachable(settings: &HashicorpSettings, e: &reqwest::Error) -> SecretsError {
    let mut cause = String::new();
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !cause.contains(&text) {
            if !cause.is_empty() {
                cause.push_str(": ");
            }
            cause.push_str(&text);
        }
        source = s.source();
    }
    SecretsError::Unreachable {
        backend: BACKEND,
        endpoint: format!("VAULT_ADDR={}", origin(settings)),
        cause: one_line(&cause),
    }
}
