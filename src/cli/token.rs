//! `crbot token issue [--scope read|trade] [--ttl HOURS]`: one bearer token for the control
//! API, signed with the same key `crbot serve` verifies with.
//!
//! Owns: what the command prints: on stdout the token alone (so that `$(crbot token issue)`
//! is the token), or with `--json` one document with its scope and expiry. Must not: print the
//! signing key, or log the token.

use serde_json::json;

use crate::api::auth::{Scope, TokenKeys, signing_secret};
use crate::cli::common::{Ctx, Failure, Outcome};
use crate::cli::exit;

/// The token's subject: who asked for it, for the engine's log.
fn subject() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "crbot".to_string())
}

pub fn issue(ctx: &Ctx, scope: Scope, ttl_hours: Option<u64>) -> Outcome {
    let secret = signing_secret(&ctx.config).map_err(|e| Failure::new(e.to_string()))?;
    if let Some(w) = &secret.warning {
        eprintln!("crbot: warning: {w}");
    }
    let keys = TokenKeys::new(&secret.secret).map_err(|e| Failure::new(e.to_string()))?;
    let ttl = ttl_hours.unwrap_or(ctx.config.api.jwt_expire_hours);
    let now = chrono::Utc::now().timestamp();
    let token = keys
        .issue(&subject(), scope, ttl, now)
        .map_err(|e| Failure::new(e.to_string()))?;
    if ctx.json() {
        let doc = json!({
            "token": token,
            "scope": scope,
            "issued_at": now,
            "expires_at": now.saturating_add(i64::try_from(ttl.saturating_mul(3600)).unwrap_or(i64::MAX)),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_else(|_| doc.to_string())
        );
    } else {
        println!("{token}");
    }
    Ok(exit::OK)
}
