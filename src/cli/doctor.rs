//! `crbot doctor`: gathers the facts the checklist needs (vault file, keys, the key's
//! permissions, clock offset, posture, journals), hands them to the pure `crate::doctor`, prints
//! its findings and turns them into the exit code.
//!
//! Owns: where each fact comes from, the printing and the exit code. Must not: print a secret,
//! or ask for a passphrase when nobody can type one (no terminal and no `--passphrase-stdin`:
//! the key check says so).

use std::io::IsTerminal;
use std::path::Path;

use crate::cli::common::{Ctx, Outcome, now_ms};
use crate::cli::kill::{BACKUP_EVENT, KILL_EVENT};
use crate::config::redact_urls;
use crate::doctor::{self, ApiRestrictionsInfo, CheckResult, CheckStatus, DoctorInputs, VaultFileInfo};
use crate::domain::Mode;
use crate::engine::session::Session;
use crate::exchange::binance::endpoints::Endpoints;
use crate::exchange::binance::rest::{BinanceRest, RestConfig};
use crate::journal::{Journal, JournalError, Location, PgTls, TradingStateCode};

fn journal_file(ctx: &Ctx, mode: Mode) -> std::path::PathBuf {
    if mode == ctx.config.mode {
        ctx.config.journal_path()
    } else {
        ctx.config.paths.data_dir.join(format!("journal-{mode}.db"))
    }
}

/// A journal that exists, opened for reading facts (never created here; read-only when it
/// cannot be written).
fn existing(path: &Path, mode: Mode) -> Option<Journal> {
    path.exists()
        .then(|| Journal::open_for_reading(path, mode).ok())
        .flatten()
        .map(|(journal, _read_only)| journal)
}

fn used_before(ctx: &Ctx) -> Option<bool> {
    let mut seen_any = false;
    for m in [Mode::Testnet, Mode::Paper, Mode::Demo] {
        if let Some(j) = existing(&journal_file(ctx, m), m) {
            seen_any = true;
            if j.recent_orders(1).map(|o| !o.is_empty()).unwrap_or(false) {
                return Some(true);
            }
        }
    }
    seen_any.then_some(false)
}

fn last_kill_and_backup(ctx: &Ctx) -> (Option<i64>, Option<i64>) {
    let Some(j) = current(ctx) else {
        return (None, newest_backup_file(ctx));
    };
    let events = j.recent_events(5_000).unwrap_or_default();
    let kill_event = events
        .iter()
        .filter(|e| e.record.kind == KILL_EVENT)
        .map(|e| e.record.time_ms)
        .max();
    let halted = j
        .latest_trading_state()
        .ok()
        .flatten()
        .filter(|s| s.record.state == TradingStateCode::Halted)
        .map(|s| s.record.time_ms);
    let backup_event = events
        .iter()
        .filter(|e| e.record.kind == BACKUP_EVENT)
        .map(|e| e.record.time_ms)
        .max();
    (kill_event.max(halted), backup_event.max(newest_backup_file(ctx)))
}

/// This mode's journal: its store, where, over what, and whether it opens (a journal not
/// created yet is not a fault).
fn journal_store(ctx: &Ctx) -> crate::doctor::JournalStoreInfo {
    let location = ctx.config.journal_location();
    match &location {
        Location::Sqlite(path) => crate::doctor::JournalStoreInfo {
            store: "SQLite",
            location: path.display().to_string(),
            tls: None,
            opened: Ok(()),
        },
        Location::Postgres(target) => crate::doctor::JournalStoreInfo {
            store: "PostgreSQL",
            location: target.shown().to_string(),
            tls: Some(target.tls() == PgTls::Verified),
            opened: match Journal::open_read_only_at(&location, ctx.config.mode) {
                Ok(_) | Err(JournalError::Missing { .. }) => Ok(()),
                Err(e) => Err(e.to_string()),
            },
        },
    }
}

/// The account's lease (PostgreSQL only): the leadership row, and the role the engine on this
/// machine reports on its socket.
async fn lease_facts(ctx: &Ctx) -> Option<crate::doctor::LeaseFacts> {
    let Location::Postgres(target) = ctx.config.journal_location() else {
        return None;
    };
    let leader = crate::journal::lease::read_leader(
        &target,
        ctx.config.mode,
        crate::journal::lease::READ_LEADER_WITHIN,
    )
    .await;
    let mut local_role = None;
    if let Some(engine) = crate::cli::remote::engine_now(&ctx.config.paths.data_dir, ctx.config.mode).await
        && let Ok((200, doc)) = engine
            .call("GET", "/api/health", None, std::time::Duration::from_secs(2))
            .await
    {
        local_role = doc["role"].as_str().map(str::to_string);
    }
    Some(crate::doctor::LeaseFacts {
        leader,
        local_role,
        now_ms: now_ms(),
    })
}

/// This mode's journal opened for reading facts, wherever it is (never created here).
fn current(ctx: &Ctx) -> Option<Journal> {
    match ctx.config.journal_location() {
        Location::Sqlite(path) => existing(&path, ctx.config.mode),
        location => Journal::open_read_only_at(&location, ctx.config.mode).ok(),
    }
}

fn newest_backup_file(ctx: &Ctx) -> Option<i64> {
    let dir = ctx.config.paths.data_dir.join("backups");
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.metadata().ok()?.modified().ok())
        .filter_map(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .max()
}

fn tls(e: &Endpoints) -> bool {
    e.rest.scheme() == "https" && e.ws.scheme() == "wss" && e.ws_api.scheme() == "wss"
}

/// The mode's endpoints without keys (to measure the clock when the vault stays locked).
fn public_endpoints(ctx: &Ctx) -> Option<Endpoints> {
    let c = &ctx.config.endpoints;
    Endpoints::official(ctx.config.mode)
        .ok()?
        .with_overrides(|name| {
            let u = match name {
                "BINANCE_REST_URL" => c.rest.as_ref(),
                "BINANCE_WS_URL" => c.ws.as_ref(),
                "BINANCE_WS_API_URL" => c.ws_api.as_ref(),
                _ => None,
            };
            u.map(|u| u.as_str().trim_end_matches('/').to_string())
        })
        .ok()
}

/// 1 when any item fails, else 0 (warnings do not fail the run).
pub fn exit_code(results: &[CheckResult]) -> i32 {
    if results.iter().any(|r| r.status == CheckStatus::Fail) {
        crate::cli::exit::FAILURE
    } else {
        crate::cli::exit::OK
    }
}

pub async fn doctor(ctx: &Ctx) -> Outcome {
    let config = &ctx.config;
    let mode = config.mode;
    let vault_path = crate::vault::vault_path(Some(&config.paths.config_dir));
    let vault = match crate::vault::store::file_mode(&vault_path) {
        Ok(Some(bits)) => Some(VaultFileInfo {
            path: vault_path.clone(),
            exists: true,
            mode_bits: bits,
        }),
        Ok(None) => Some(VaultFileInfo {
            path: vault_path.clone(),
            exists: false,
            mode_bits: 0,
        }),
        Err(_) => None,
    };
    // Without a terminal the session unlocks from CRBOT_PASSPHRASE_FILE or API_KEY_ENCRYPTION_KEY.
    let unattended = config.passphrase_file.is_some() || config.vault_passphrase_env.is_some();
    let can_ask = ctx.global.passphrase_stdin || std::io::stdin().is_terminal() || unattended;
    let needs_unlock = config.keys_from_vault();
    let vault_exists = vault.as_ref().is_some_and(|v| v.exists);
    let mut keys_note: Option<String> = None;
    let mut keys_for_mode = !needs_unlock;
    let mut session: Option<Session> = None;
    if !needs_unlock || (can_ask && vault_exists) {
        match Session::connect(config, ctx.unlock(), false).await {
            Ok(s) => {
                keys_for_mode = true;
                session = Some(s);
            }
            Err(e) => {
                keys_for_mode = false;
                keys_note = Some(format!("{e:#}"));
            }
        }
    } else if vault_exists {
        keys_note = Some(
            "not checked: no terminal to ask the passphrase (use --passphrase-stdin or CRBOT_PASSPHRASE_FILE)"
                .into(),
        );
    }

    let rest: Option<BinanceRest> = match &session {
        Some(s) => Some(s.rest.clone()),
        None => public_endpoints(ctx)
            .and_then(|e| BinanceRest::without_ban_store(e, None, RestConfig::default()).ok()),
    };
    let endpoints_tls = match &session {
        Some(s) => tls(&s.endpoints),
        None => public_endpoints(ctx).is_some_and(|e| tls(&e)),
    };
    let clock_offset_ms = match &rest {
        Some(r) => Some(
            r.sync_clock()
                .await
                .map(|c| c.offset_ms)
                .map_err(|e| e.to_string()),
        ),
        None => None,
    };
    // The permissions endpoint exists on live and on the local exchange; not on testnet/demo.
    let api_restrictions = match (&session, mode) {
        (Some(s), Mode::Live | Mode::Sim | Mode::Paper) => Some(
            s.rest
                .api_restrictions()
                .await
                .map(|r| ApiRestrictionsInfo {
                    ip_restrict: r.ip_restrict,
                    enable_withdrawals: r.enable_withdrawals,
                    enable_spot_and_margin_trading: r.enable_spot_and_margin_trading,
                    enable_reading: r.enable_reading,
                })
                .map_err(|e| e.to_string()),
        ),
        (None, Mode::Live) => Some(Err(keys_note
            .clone()
            .unwrap_or_else(|| "no keys to ask with".into()))),
        _ => None,
    };
    if let Some(s) = session {
        s.close(config).await;
    }
    let (last_kill, last_backup) = last_kill_and_backup(ctx);
    let inputs = DoctorInputs {
        env: config.env.as_str().to_string(),
        debug: config.debug,
        mode,
        vault,
        keys_for_mode,
        secrets_backend: config.secrets.backend,
        keys_from: config.secrets.describe(),
        api_restrictions,
        clock_offset_ms,
        endpoints_tls,
        used_testnet_or_paper_before: used_before(ctx),
        last_kill_switch_test_ms: last_kill,
        last_backup_ms: last_backup,
        now_ms: now_ms(),
        journal: Some(journal_store(ctx)),
    };
    let mut results = doctor::evaluate(&inputs);
    results.push(doctor::check_lease(lease_facts(ctx).await.as_ref()));
    if let Some(note) = keys_note
        && let Some(r) = results.iter_mut().find(|r| r.item == "keys for mode")
        && r.status != CheckStatus::Pass
    {
        if note.starts_with("not checked") {
            r.status = CheckStatus::Warn;
            r.detail = format!("keys for {mode}: {note}");
        } else {
            r.detail = format!("no usable keys for {mode}: {note}");
        }
    }
    if config.secrets.backend == crate::secrets::Backend::Env
        && let Some(r) = results
            .iter_mut()
            .find(|r| r.item == "keys for mode" && r.status == CheckStatus::Pass)
    {
        r.detail = format!("keys for {mode} from BINANCE_API_KEY/BINANCE_API_SECRET (development only)");
    }
    if ctx.json() {
        println!("{}", redact_urls(&doctor::render_json(&results)));
    } else {
        print!("{}", redact_urls(&doctor::render_text(&results)));
    }
    let code = exit_code(&results);
    if code != crate::cli::exit::OK {
        let failed: Vec<&str> = results
            .iter()
            .filter(|r| r.status == CheckStatus::Fail)
            .map(|r| r.item)
            .collect();
        eprintln!("crbot: doctor: failed: {}", failed.join(", "));
    }
    Ok(code)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::doctor::evaluate;
    use crate::doctor::tests::{healthy, restrictions};

    #[test]
    fn a_healthy_live_setup_passes_every_item_and_exits_zero() {
        let results = evaluate(&healthy());
        assert!(
            results.iter().all(|r| r.status == CheckStatus::Pass),
            "{results:#?}"
        );
        assert_eq!(exit_code(&results), 0);
    }

    #[test]
    fn a_key_with_withdrawals_enabled_fails_and_exits_non_zero() {
        let mut inp = healthy();
        inp.api_restrictions = Some(Ok(restrictions(true, true)));
        let results = evaluate(&inp);
        let r = results.iter().find(|r| r.item == "API key: withdrawals").unwrap();
        assert_eq!(r.status, CheckStatus::Fail);
        assert!(r.fix.as_deref().unwrap().contains("Enable Withdrawals"));
        assert_eq!(exit_code(&results), 1);
    }

    #[test]
    fn warnings_alone_exit_zero() {
        let mut inp = healthy();
        inp.last_backup_ms = None;
        let results = evaluate(&inp);
        assert!(results.iter().any(|r| r.status == CheckStatus::Warn));
        assert_eq!(exit_code(&results), 0);
    }
}
