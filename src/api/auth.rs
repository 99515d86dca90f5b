//! Bearer tokens of the control API: HS256 JWTs signed with `SECRET_KEY`, carrying `sub`,
//! `iat`, `exp` and a `scope` (`read` or `trade`).
//!
//! Owns: issuing and verifying tokens, the signing key's resolution (`SECRET_KEY`, or in
//! development a random key generated once and kept 0600 in the config folder), and the
//! extractors that guard read and trade routes. Must not: accept any algorithm but HS256
//! (`alg: none` and asymmetric algorithms are refused, whatever the header says), or print,
//! log or put in an error the key or a token.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use crate::config::{Config, Environment};
use crate::secret::SecretString;

/// The shortest `SECRET_KEY` staging and production accept: 32 characters (256 bits of ASCII
/// at best), the HS256 key size.
pub const MIN_SECRET_LEN: usize = 32;

/// The file in the config folder that holds development's generated key.
pub const GENERATED_KEY_FILE: &str = "api-secret-key";

/// What a token allows: `read` the documents, or also `trade` (kill, resume, cancel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Trade,
}

impl Scope {
    /// Whether a token of this scope may call a route that needs `needed`.
    pub fn allows(self, needed: Scope) -> bool {
        self == Scope::Trade || needed == Scope::Read
    }
}

/// The subject of a request that came over the account's unix socket (it carries no token).
pub const SOCKET_SUBJECT: &str = "unix-socket";

/// The claims of a token. Unknown claims are ignored; a missing one makes the token invalid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
    pub scope: Scope,
}

/// Why a token was not accepted (the message a client sees; never the token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid: {0}")]
    Invalid(&'static str),
}

/// Why no signing key could be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("SECRET_KEY is required with ENV={0}: set it to at least {MIN_SECRET_LEN} random characters")]
    Missing(Environment),
    #[error("SECRET_KEY is too short for ENV={0}: it must be at least {MIN_SECRET_LEN} characters")]
    TooShort(Environment),
    #[error("{path}: {problem}")]
    File { path: PathBuf, problem: String },
    #[error("cannot build the signing key: {0}")]
    Jwt(String),
}

/// The signing key resolved for a configuration, with a warning to show when it is weak.
#[derive(Debug)]
pub struct SigningSecret {
    pub secret: SecretString,
    pub warning: Option<String>,
}

/// `SECRET_KEY` when set (at least [`MIN_SECRET_LEN`] characters outside development); in
/// development without one, the key in `<config dir>/api-secret-key`, generated on first use.
pub fn signing_secret(config: &Config) -> Result<SigningSecret, KeyError> {
    let dev = config.env == Environment::Development;
    match &config.secret_key {
        Some(key) if key.expose().chars().count() >= MIN_SECRET_LEN => Ok(SigningSecret {
            secret: key.clone(),
            warning: None,
        }),
        Some(key) if dev => Ok(SigningSecret {
            secret: key.clone(),
            warning: Some(format!(
                "SECRET_KEY is shorter than {MIN_SECRET_LEN} characters: allowed only because ENV=development"
            )),
        }),
        Some(_) => Err(KeyError::TooShort(config.env)),
        None if dev => Ok(SigningSecret {
            secret: generated_key(&config.paths.config_dir)?,
            warning: None,
        }),
        None => Err(KeyError::Missing(config.env)),
    }
}

/// Reads development's generated key, creating it (64 hex characters from the OS's random
/// source, 0600) the first time. A key file others can read is refused, not silently used.
fn generated_key(dir: &Path) -> Result<SecretString, KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(GENERATED_KEY_FILE);
    let file_error = |problem: String| KeyError::File {
        path: path.clone(),
        problem,
    };
    match std::fs::metadata(&path) {
        Ok(meta) => {
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(file_error(
                    "is readable by other users: chmod 600 it, or delete it to generate a new key".into(),
                ));
            }
            let text =
                std::fs::read_to_string(&path).map_err(|e| file_error(format!("cannot be read: {e}")))?;
            let key = text.trim();
            if key.len() < MIN_SECRET_LEN {
                return Err(file_error(
                    "holds no usable key: delete it to generate a new one".into(),
                ));
            }
            Ok(SecretString::from(key))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(|e| file_error(format!("cannot create its folder: {e}")))?;
            let key = SecretString::new(hex::encode(rand::random::<[u8; 32]>()));
            crate::engine::session::write_private(&path, key.expose().as_bytes())
                .map_err(|e| file_error(format!("cannot be written: {e}")))?;
            Ok(key)
        }
        Err(e) => Err(file_error(format!("cannot be read: {e}"))),
    }
}

/// The HS256 keys made from one secret.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys(***)")
    }
}

impl TokenKeys {
    pub fn new(secret: &SecretString) -> Result<Self, KeyError> {
        let bytes = secret.expose().as_bytes();
        let encoding = EncodingKey::from_secret(bytes).map_err(|e| KeyError::Jwt(e.to_string()))?;
        let decoding = DecodingKey::from_secret(bytes).map_err(|e| KeyError::Jwt(e.to_string()))?;
        let mut validation = Validation::new(Algorithm::HS256);
        // Only HS256: a header naming any other algorithm (or `none`) is refused before the
        // signature is looked at.
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(Self {
            encoding,
            decoding,
            validation,
        })
    }

    /// A token for `sub` with `scope`, valid `ttl_hours` from `now_s` (seconds since the epoch).
    pub fn issue(&self, sub: &str, scope: Scope, ttl_hours: u64, now_s: i64) -> Result<String, KeyError> {
        let ttl = i64::try_from(ttl_hours.saturating_mul(3600)).unwrap_or(i64::MAX);
        let claims = Claims {
            sub: sub.to_string(),
            iat: now_s,
            exp: now_s.saturating_add(ttl),
            scope,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| KeyError::Jwt(e.to_string()))
    }

    /// The claims of a valid, unexpired HS256 token signed with this key.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        use jsonwebtoken::errors::ErrorKind;
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation) {
            Ok(data) => Ok(data.claims),
            Err(e) => Err(match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::InvalidSignature => TokenError::Invalid("wrong signature"),
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    TokenError::Invalid("only HS256 is accepted")
                }
                ErrorKind::MissingRequiredClaim(_) | ErrorKind::Json(_) => {
                    TokenError::Invalid("missing or malformed claims")
                }
                _ => TokenError::Invalid("malformed"),
            }),
        }
    }
}

/// The bearer token of a request, checked for `needed`: 401 when missing or invalid, 403 when
/// valid but of a narrower scope.
fn authorize(parts: &Parts, keys: &TokenKeys, needed: Scope) -> Result<Claims, ApiError> {
    if parts.extensions.get::<super::socket::Trusted>().is_some() {
        // Over the engine's unix socket (0600): its permissions are the authentication.
        return Ok(Claims {
            sub: SOCKET_SUBJECT.into(),
            iat: 0,
            exp: i64::MAX,
            scope: Scope::Trade,
        });
    }
    let result = check(parts, keys, needed);
    if let Err(e) = &result {
        // The reason and the route, never the token: enough to see someone guessing.
        tracing::info!(path = %parts.uri.path(), status = e.status.as_u16(), reason = %e.message, "API request refused");
    }
    result
}

fn check(parts: &Parts, keys: &TokenKeys, needed: Scope) -> Result<Claims, ApiError> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("an Authorization: Bearer token is required"))?;
    let token = header
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("the Authorization header is not a Bearer token"))?;
    let claims = keys
        .verify(token)
        .map_err(|e| ApiError::unauthorized(e.to_string()))?;
    if !claims.scope.allows(needed) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "this route needs a token with scope trade",
        ));
    }
    Ok(claims)
}

/// Guard of a read route: a valid token of any scope.
#[derive(Debug)]
pub struct ReadAccess(pub Claims);

/// Guard of a trade route: a valid token of scope `trade`.
#[derive(Debug)]
pub struct TradeAccess(pub Claims);

impl<S> FromRequestParts<S> for ReadAccess
where
    S: Send + Sync,
    Arc<TokenKeys>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let keys = Arc::<TokenKeys>::from_ref(state);
        authorize(parts, &keys, Scope::Read).map(ReadAccess)
    }
}

impl<S> FromRequestParts<S> for TradeAccess
where
    S: Send + Sync,
    Arc<TokenKeys>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let keys = Arc::<TokenKeys>::from_ref(state);
        authorize(parts, &keys, Scope::Trade).map(TradeAccess)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    fn keys(secret: &str) -> TokenKeys {
        TokenKeys::new(&SecretString::from(secret)).expect("key")
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn a_token_it_issued_verifies_with_its_scope() {
        let k = keys(KEY);
        let token = k.issue("ops", Scope::Read, 24, now()).expect("issued");
        let claims = k.verify(&token).expect("valid");
        assert_eq!(claims.scope, Scope::Read);
        assert_eq!(claims.sub, "ops");
        assert_eq!(claims.exp - claims.iat, 24 * 3600);
    }

    #[test]
    fn an_expired_token_is_refused_as_expired() {
        let k = keys(KEY);
        let token = k.issue("ops", Scope::Trade, 1, now() - 7200).expect("issued");
        assert_eq!(k.verify(&token), Err(TokenError::Expired));
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused() {
        let token = keys("another key of at least thirty-two chars")
            .issue("ops", Scope::Trade, 1, now())
            .expect("issued");
        assert!(matches!(keys(KEY).verify(&token), Err(TokenError::Invalid(_))));
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        let claims = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"sub":"x","iat":{},"exp":{},"scope":"trade"}}"#,
            now(),
            now() + 3600
        ));
        for header in [r#"{"alg":"none","typ":"JWT"}"#, r#"{"alg":"HS512","typ":"JWT"}"#] {
            let token = format!("{}.{claims}.", URL_SAFE_NO_PAD.encode(header));
            assert!(keys(KEY).verify(&token).is_err(), "{header} accepted");
        }
    }

    #[test]
    fn a_token_without_a_scope_or_with_an_unknown_one_is_refused() {
        #[derive(Serialize)]
        struct Bare {
            sub: String,
            iat: i64,
            exp: i64,
            scope: Option<String>,
        }
        let k = EncodingKey::from_secret(KEY.as_bytes()).expect("key");
        for scope in [None, Some("admin".to_string())] {
            let claims = Bare {
                sub: "x".into(),
                iat: now(),
                exp: now() + 3600,
                scope,
            };
            let token = jsonwebtoken::encode(&Header::default(), &claims, &k).expect("encoded");
            assert!(keys(KEY).verify(&token).is_err());
        }
    }

    #[test]
    fn trade_allows_read_but_read_does_not_allow_trade() {
        assert!(Scope::Trade.allows(Scope::Read));
        assert!(Scope::Trade.allows(Scope::Trade));
        assert!(Scope::Read.allows(Scope::Read));
        assert!(!Scope::Read.allows(Scope::Trade));
    }

    #[test]
    fn development_generates_a_private_key_once_and_keeps_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let first = generated_key(dir.path()).expect("generated");
        let second = generated_key(dir.path()).expect("read back");
        assert_eq!(first, second);
        assert!(first.expose().len() >= MIN_SECRET_LEN);
        let mode = std::fs::metadata(dir.path().join(GENERATED_KEY_FILE))
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_generated_key_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        generated_key(dir.path()).expect("generated");
        let path = dir.path().join(GENERATED_KEY_FILE);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(generated_key(dir.path()).is_err());
    }
}
