//! `crbot doctor`: the production checklist as pure evaluation and rendering.
//!
//! Owns: the rules that turn gathered facts (vault file, keys, the key's permissions from
//! `/sapi/v1/account/apiRestrictions`, clock offset, ENV/DEBUG posture, TLS, journal history)
//! into pass / warn / fail / skipped items, each with a fix, and their text and JSON forms.
//! Must not: do I/O, read a clock, see a secret or know the command line: `crate::cli::doctor`
//! gathers `DoctorInputs` (time included), prints the result and picks the exit code.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::domain::Mode;
use crate::secrets::Backend;

/// Clock offset beyond which signed requests start failing (`recvWindow` defaults to 5 s, but
/// Binance rejects timestamps more than 1 s in the future).
pub const CLOCK_FAIL_MS: i64 = 1_000;
pub const CLOCK_WARN_MS: i64 = 500;
const DAY_MS: i64 = 24 * 60 * 60 * 1_000;
/// The kill switch should have been exercised within this many days.
pub const KILL_SWITCH_MAX_AGE_DAYS: i64 = 30;
/// A backup should be at most this many days old.
pub const BACKUP_MAX_AGE_DAYS: i64 = 7;

/// The vault file as seen on disk (no secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultFileInfo {
    pub path: PathBuf,
    pub exists: bool,
    /// Permission bits (`0o600` is right); meaningless when `exists` is false.
    pub mode_bits: u32,
}

/// The permission flags of `GET /sapi/v1/account/apiRestrictions` that the checklist uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiRestrictionsInfo {
    pub ip_restrict: bool,
    pub enable_withdrawals: bool,
    pub enable_spot_and_margin_trading: bool,
    pub enable_reading: bool,
}

impl ApiRestrictionsInfo {
    /// Parses the endpoint's JSON body (other fields are ignored).
    pub fn from_json(body: &str) -> Result<Self, String> {
        serde_json::from_str(body).map_err(|e| format!("unexpected apiRestrictions response: {e}"))
    }
}

/// Everything the checklist looks at, gathered by the caller.
#[derive(Debug, Clone)]
pub struct DoctorInputs {
    /// The `ENV` value (development | staging | production).
    pub env: String,
    /// The `DEBUG` flag.
    pub debug: bool,
    /// The mode being checked.
    pub mode: Mode,
    /// The vault file; None when it could not be looked at.
    pub vault: Option<VaultFileInfo>,
    /// Whether the vault (or, in development, the environment) holds keys for `mode`.
    pub keys_for_mode: bool,
    /// `SECRETS_BACKEND`: where the keys of a mode with keys come from.
    pub secrets_backend: Backend,
    /// The backend and its secret's name (`aws (AWS_SECRET_ID=…)`), never a key.
    pub keys_from: String,
    /// The key's permissions; None when the endpoint does not exist for this mode (testnet,
    /// demo, sim); `Err` with the reason when the request failed.
    pub api_restrictions: Option<Result<ApiRestrictionsInfo, String>>,
    /// Local clock minus server clock; None when not measured.
    pub clock_offset_ms: Option<Result<i64, String>>,
    /// Every configured REST/WS URL is https/wss.
    pub endpoints_tls: bool,
    /// Whether the journals show use of testnet or paper (None: no journal to look in).
    pub used_testnet_or_paper_before: Option<bool>,
    /// Last time the kill switch was triggered (Unix ms), from the journal.
    pub last_kill_switch_test_ms: Option<i64>,
    /// Last journal backup (Unix ms).
    pub last_backup_ms: Option<i64>,
    /// Unix ms now.
    pub now_ms: i64,
    /// Where the journal is and whether it opened; None when not looked at.
    pub journal: Option<JournalStoreInfo>,
}

/// The journal's store as `crbot doctor` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalStoreInfo {
    /// `SQLite` or `PostgreSQL`.
    pub store: &'static str,
    /// The file, or the URL with its password masked.
    pub location: String,
    /// PostgreSQL only: whether the connection is TLS with the certificate verified.
    pub tls: Option<bool>,
    /// Whether it could be opened, or why not.
    pub opened: Result<(), String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Pass,
    Warn,
    Fail,
    Skipped,
}

impl CheckStatus {
    pub fn label(self) -> &'static str {
        match self {
            CheckStatus::Pass => "PASS",
            CheckStatus::Warn => "WARN",
            CheckStatus::Fail => "FAIL",
            CheckStatus::Skipped => "SKIP",
        }
    }
}

/// One checklist item's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    pub item: &'static str,
    pub status: CheckStatus,
    pub detail: String,
    /// What to do about it (None when nothing needs doing).
    pub fix: Option<String>,
}

fn check(
    item: &'static str,
    status: CheckStatus,
    detail: impl Into<String>,
    fix: Option<&str>,
) -> CheckResult {
    CheckResult {
        item,
        status,
        detail: detail.into(),
        fix: fix.map(str::to_string),
    }
}

fn is_production(env: &str) -> bool {
    env.trim().eq_ignore_ascii_case("production")
}

fn age_days(now_ms: i64, then_ms: i64) -> i64 {
    (now_ms - then_ms).max(0) / DAY_MS
}

/// Walks the checklist. Items come in a fixed order.
pub fn evaluate(inp: &DoctorInputs) -> Vec<CheckResult> {
    let mut out = vec![
        check_vault(inp),
        check_keys_for_mode(inp),
        check_secrets_backend(inp),
    ];
    out.extend(check_key_permissions(inp));
    out.extend([
        check_clock(inp),
        check_posture(inp),
        check_tls(inp),
        check_tried_first(inp),
        check_kill_tested(inp),
        check_backup(inp),
        check_journal_store(inp),
    ]);
    out
}

/// The account's lease on a PostgreSQL journal, as `crbot doctor` found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseFacts {
    /// The `crbot_leadership` row (`None`: no engine ever led), or why it could not be read.
    pub leader: Result<Option<crate::journal::lease::Leader>, String>,
    /// The role the engine on this machine reports (`leader`, `standby`), `None` when none runs.
    pub local_role: Option<String>,
    pub now_ms: i64,
}

/// The lease item: who leads the account, since when, and what the engine here is. `None`
/// facts (an SQLite journal): the lock is this machine's `flock`, nothing to check.
pub fn check_lease(facts: Option<&LeaseFacts>) -> CheckResult {
    use CheckStatus::*;
    const ITEM: &str = "engine lease";
    let Some(f) = facts else {
        return check(
            ITEM,
            Skipped,
            "SQLite journal: one engine per machine (the engine lock file)",
            None,
        );
    };
    let here = match &f.local_role {
        Some(role) => format!("the engine on this machine is the {role}"),
        None => "no engine runs on this machine".into(),
    };
    match &f.leader {
        // A server that did not answer in time says so as it is ("could not check within N s").
        Err(e) if e.starts_with("could not check") => check(
            ITEM,
            Fail,
            e.clone(),
            Some("check DATABASE_URL and that the database server is up"),
        ),
        Err(e) => check(
            ITEM,
            Fail,
            format!("the lease could not be read: {e}"),
            Some("check DATABASE_URL and that the database server is up"),
        ),
        Ok(None) => check(
            ITEM,
            Pass,
            format!("no engine has led this account yet; {here}"),
            None,
        ),
        Ok(Some(l)) => {
            let minutes = (f.now_ms - l.since_ms).max(0) / 60_000;
            check(
                ITEM,
                Pass,
                format!("led by {} ({minutes} min); {here}", l.describe()),
                None,
            )
        }
    }
}

/// Where the journal is (SQLite or PostgreSQL), whether it opens, and over what.
fn check_journal_store(inp: &DoctorInputs) -> CheckResult {
    use CheckStatus::*;
    const ITEM: &str = "journal store";
    let Some(j) = &inp.journal else {
        return check(ITEM, Skipped, "not looked at", None);
    };
    let place = format!("{} {}", j.store, j.location);
    match (&j.opened, j.tls) {
        (Err(e), _) => check(
            ITEM,
            Fail,
            format!("{place} cannot be opened: {e}"),
            Some("check DATABASE_URL and that the database server is up"),
        ),
        (Ok(()), Some(true)) => check(
            ITEM,
            Pass,
            format!("{place} over TLS, certificate verified"),
            None,
        ),
        (Ok(()), Some(false)) if is_production(&inp.env) => check(
            ITEM,
            Fail,
            format!("{place} over a plain connection in production"),
            Some("add sslmode=verify-full to DATABASE_URL"),
        ),
        (Ok(()), Some(false)) => check(
            ITEM,
            Pass,
            format!("{place} over a plain connection (allowed outside production)"),
            None,
        ),
        (Ok(()), None) => check(ITEM, Pass, place, None),
    }
}

/// The vault file: present when keys are needed, private to its owner.
fn check_vault(inp: &DoctorInputs) -> CheckResult {
    use CheckStatus::*;
    let production = is_production(&inp.env);
    let needs_keys = inp.mode.needs_keys();
    match &inp.vault {
        None => check("vault", Warn, "the vault file could not be checked", None),
        Some(v) if !v.exists && inp.secrets_backend.is_service() && needs_keys => check(
            "vault",
            Skipped,
            format!("no vault; {} keys come from {}", inp.mode, inp.secrets_backend),
            None,
        ),
        Some(v) if !v.exists && (needs_keys || production) => check(
            "vault",
            Fail,
            format!("no vault at {}", v.path.display()),
            Some("create it with `crbot vault init`, then `crbot vault set-keys`"),
        ),
        Some(v) if !v.exists => check(
            "vault",
            Skipped,
            format!("no vault; {} needs no keys", inp.mode),
            None,
        ),
        Some(v) if v.mode_bits & 0o077 != 0 => CheckResult {
            item: "vault",
            status: Fail,
            detail: format!(
                "{} is readable by others (mode {:04o})",
                v.path.display(),
                v.mode_bits & 0o7777
            ),
            fix: Some(format!("chmod 600 {}", v.path.display())),
        },
        Some(v) => check(
            "vault",
            Pass,
            format!("{} (mode {:04o})", v.path.display(), v.mode_bits & 0o7777),
            None,
        ),
    }
}

/// Keys for the mode, when it needs them.
fn check_keys_for_mode(inp: &DoctorInputs) -> CheckResult {
    use CheckStatus::*;
    let needs_keys = inp.mode.needs_keys();
    let mode = inp.mode;
    if !needs_keys {
        check(
            "keys for mode",
            Skipped,
            format!("{mode} trades without keys"),
            None,
        )
    } else if inp.keys_for_mode && inp.secrets_backend.is_service() {
        check(
            "keys for mode",
            Pass,
            format!("keys for {mode} fetched from {}", inp.keys_from),
            None,
        )
    } else if inp.keys_for_mode {
        check(
            "keys for mode",
            Pass,
            format!("keys for {mode} are in the vault"),
            None,
        )
    } else if inp.secrets_backend.is_service() {
        check(
            "keys for mode",
            Fail,
            format!("no keys for {mode} from {}", inp.keys_from),
            Some("store {\"api_key\", \"api_secret\"} in that secret and let crbot read it"),
        )
    } else {
        CheckResult {
            item: "keys for mode",
            status: Fail,
            detail: format!("no keys for {mode}"),
            fix: Some(format!("crbot vault set-keys --mode {mode}")),
        }
    }
}

/// Which backend serves the keys (`SECRETS_BACKEND`), never the keys; plain keys fail in
/// production (the configuration already refuses them there).
fn check_secrets_backend(inp: &DoctorInputs) -> CheckResult {
    use CheckStatus::*;
    if !inp.mode.needs_keys() {
        return check(
            "secrets backend",
            Skipped,
            format!("{} trades without keys", inp.mode),
            None,
        );
    }
    if inp.secrets_backend == Backend::Env && is_production(&inp.env) {
        return check(
            "secrets backend",
            Fail,
            "plain keys from the environment in production",
            Some("set SECRETS_BACKEND to vault, aws or hashicorp"),
        );
    }
    check("secrets backend", Pass, inp.keys_from.clone(), None)
}

/// The API key's permissions: no withdrawals, restricted IPs, spot trading.
fn check_key_permissions(inp: &DoctorInputs) -> Vec<CheckResult> {
    use CheckStatus::*;
    let mode = inp.mode;
    let r = match &inp.api_restrictions {
        None => {
            return vec![check(
                "API key permissions",
                Skipped,
                format!("not available on {mode} (no /sapi/v1/account/apiRestrictions there)"),
                None,
            )];
        }
        Some(Err(e)) => {
            return vec![check(
                "API key permissions",
                Warn,
                format!("could not read the key's permissions: {e}"),
                Some("check the key and the network, then run `crbot doctor` again"),
            )];
        }
        Some(Ok(r)) => r,
    };
    vec![
        if r.enable_withdrawals {
            check(
                "API key: withdrawals",
                Fail,
                "withdrawals are ENABLED on this key",
                Some("disable \"Enable Withdrawals\" for this key in Binance API Management"),
            )
        } else {
            check("API key: withdrawals", Pass, "withdrawals disabled", None)
        },
        if r.ip_restrict {
            check("API key: IP restriction", Pass, "restricted to trusted IPs", None)
        } else {
            check(
                "API key: IP restriction",
                Warn,
                "the key works from any IP address",
                Some("restrict the key to this machine's IP in Binance API Management"),
            )
        },
        if r.enable_spot_and_margin_trading && r.enable_reading {
            check("API key: trading", Pass, "spot trading and reading enabled", None)
        } else {
            check(
                "API key: trading",
                Fail,
                "the key cannot read the account or trade spot",
                Some("enable \"Enable Reading\" and \"Enable Spot & Margin Trading\" for this key"),
            )
        },
    ]
}

/// The clock offset against the exchange.
fn check_clock(inp: &DoctorInputs) -> CheckResult {
    use CheckStatus::*;
    let mode = inp.mode;
    const CLOCK_FIX: &str = "synchronise the system clock (e.g. `timedatectl set-ntp true`, chrony or ntpd)";
    match &inp.clock_offset_ms {
        None => check("clock offset", Skipped, format!("not measured on {mode}"), None),
        Some(Err(e)) => check(
            "clock offset",
            Warn,
            format!("could not measure: {e}"),
            Some("check the connection to the exchange"),
        ),
        Some(Ok(off)) if off.abs() > CLOCK_FAIL_MS => check(
            "clock offset",
            Fail,
            format!("{off} ms (limit {CLOCK_FAIL_MS} ms)"),
            Some(CLOCK_FIX),
        ),
        Some(Ok(off)) if off.abs() > CLOCK_WARN_MS => check(
            "clock offset",
            Warn,
            format!("{off} ms (warn above {CLOCK_WARN_MS} ms)"),
            Some(CLOCK_FIX),
        ),
        Some(Ok(off)) => check("clock offset", Pass, format!("{off} ms"), None),
    }
}

/// ENV/DEBUG: no debug in production.
fn check_posture(inp: &DoctorInputs) -> CheckResult {
    use CheckStatus::*;
    let production = is_production(&inp.env);
    if production && inp.debug {
        check(
            "ENV/DEBUG posture",
            Fail,
            "DEBUG=true in production",
            Some("set DEBUG=false"),
        )
    } else if inp.debug {
        check(
            "ENV/DEBUG posture",
            Pass,
            format!("ENV={} with DEBUG=true (not production)", inp.env.trim()),
            None,
        )
    } else {
        check(
            "ENV/DEBUG posture",
            Pass,
            format!("ENV={}, DEBUG=false", inp.env.trim()),
            None,
        )
    }
}

/// TLS on every endpoint (required in production, advised with keys).
fn check_tls(inp: &DoctorInputs) -> CheckResult {
    use CheckStatus::*;
    let production = is_production(&inp.env);
    let needs_keys = inp.mode.needs_keys();
    let mode = inp.mode;
    const TLS_FIX: &str =
        "use https:// and wss:// for BINANCE_REST_URL, BINANCE_WS_URL and BINANCE_WS_API_URL";
    if inp.endpoints_tls {
        check("TLS endpoints", Pass, "every endpoint is https/wss", None)
    } else if production {
        check(
            "TLS endpoints",
            Fail,
            "a plain http/ws endpoint is configured in production",
            Some(TLS_FIX),
        )
    } else if needs_keys {
        check(
            "TLS endpoints",
            Warn,
            format!("{mode} keys would travel over plain http/ws"),
            Some(TLS_FIX),
        )
    } else {
        check(
            "TLS endpoints",
            Pass,
            format!("plain endpoints allowed for {mode} outside production"),
            None,
        )
    }
}

/// Live only after testnet or paper.
fn check_tried_first(inp: &DoctorInputs) -> CheckResult {
    use CheckStatus::*;
    let mode = inp.mode;
    if mode != Mode::Live {
        check(
            "tried on testnet or paper",
            Skipped,
            "checked for live only",
            None,
        )
    } else {
        match inp.used_testnet_or_paper_before {
            Some(true) => check(
                "tried on testnet or paper",
                Pass,
                "the journals show earlier testnet or paper use",
                None,
            ),
            Some(false) | None => check(
                "tried on testnet or paper",
                Warn,
                "no testnet or paper trading found in the journals",
                Some("run the same setup with --mode testnet or --mode paper first"),
            ),
        }
    }
}

/// The kill switch was triggered recently.
fn check_kill_tested(inp: &DoctorInputs) -> CheckResult {
    use CheckStatus::*;
    const KILL_FIX: &str =
        "test it: `crbot --mode testnet kill`, check orders are cancelled, then `crbot resume`";
    match inp.last_kill_switch_test_ms {
        None => check(
            "kill switch tested",
            Warn,
            "the kill switch was never triggered",
            Some(KILL_FIX),
        ),
        Some(t) if age_days(inp.now_ms, t) > KILL_SWITCH_MAX_AGE_DAYS => check(
            "kill switch tested",
            Warn,
            format!(
                "last triggered {} days ago (more than {KILL_SWITCH_MAX_AGE_DAYS})",
                age_days(inp.now_ms, t)
            ),
            Some(KILL_FIX),
        ),
        Some(t) => check(
            "kill switch tested",
            Pass,
            format!("last triggered {} days ago", age_days(inp.now_ms, t)),
            None,
        ),
    }
}

/// A recent backup of the journal.
fn check_backup(inp: &DoctorInputs) -> CheckResult {
    use CheckStatus::*;
    const BACKUP_FIX: &str = "back up the journal: `crbot backup PATH`";
    match inp.last_backup_ms {
        None => check("recent backup", Warn, "no backup recorded", Some(BACKUP_FIX)),
        Some(t) if inp.now_ms - t > BACKUP_MAX_AGE_DAYS * DAY_MS => check(
            "recent backup",
            Warn,
            format!(
                "last backup {} days ago (more than {BACKUP_MAX_AGE_DAYS})",
                age_days(inp.now_ms, t)
            ),
            Some(BACKUP_FIX),
        ),
        Some(t) => check(
            "recent backup",
            Pass,
            format!("last backup {} days ago", age_days(inp.now_ms, t)),
            None,
        ),
    }
}

/// Counts per status: (pass, warn, fail, skipped).
fn counts(results: &[CheckResult]) -> (usize, usize, usize, usize) {
    let n = |s: CheckStatus| results.iter().filter(|r| r.status == s).count();
    (
        n(CheckStatus::Pass),
        n(CheckStatus::Warn),
        n(CheckStatus::Fail),
        n(CheckStatus::Skipped),
    )
}

/// One line per item (`PASS  vault  …`), the fix indented below it, then a summary line.
pub fn render_text(results: &[CheckResult]) -> String {
    let width = results.iter().map(|r| r.item.chars().count()).max().unwrap_or(0);
    let mut s = String::new();
    for r in results {
        s.push_str(&format!(
            "{}  {:<width$}  {}\n",
            r.status.label(),
            r.item,
            r.detail
        ));
        if let Some(fix) = &r.fix {
            s.push_str(&format!("      {:<width$}  fix: {fix}\n", ""));
        }
    }
    let (p, w, f, k) = counts(results);
    s.push_str(&format!("{p} pass, {w} warn, {f} fail, {k} skipped\n"));
    s
}

/// `{"ok": bool, "summary": {...}, "checks": [{item, status, detail, fix}]}`.
pub fn render_json(results: &[CheckResult]) -> String {
    let (p, w, f, k) = counts(results);
    serde_json::json!({
        "ok": f == 0,
        "summary": { "pass": p, "warn": w, "fail": f, "skipped": k },
        "checks": results,
    })
    .to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use rstest::rstest;

    const NOW: i64 = 1_764_000_000_000;

    pub(crate) fn restrictions(withdrawals: bool, ip: bool) -> ApiRestrictionsInfo {
        ApiRestrictionsInfo {
            ip_restrict: ip,
            enable_withdrawals: withdrawals,
            enable_spot_and_margin_trading: true,
            enable_reading: true,
        }
    }

    /// A live setup where every item passes.
    pub(crate) fn healthy() -> DoctorInputs {
        DoctorInputs {
            env: "production".into(),
            debug: false,
            mode: Mode::Live,
            vault: Some(VaultFileInfo {
                path: "/h/vault.crbot".into(),
                exists: true,
                mode_bits: 0o600,
            }),
            keys_for_mode: true,
            secrets_backend: Backend::Vault,
            keys_from: "vault".into(),
            api_restrictions: Some(Ok(restrictions(false, true))),
            clock_offset_ms: Some(Ok(12)),
            endpoints_tls: true,
            used_testnet_or_paper_before: Some(true),
            last_kill_switch_test_ms: Some(NOW - 2 * DAY_MS),
            last_backup_ms: Some(NOW - DAY_MS),
            now_ms: NOW,
            journal: Some(JournalStoreInfo {
                store: "PostgreSQL",
                location: "postgresql://crbot:***@db/crbot?sslmode=verify-full".into(),
                tls: Some(true),
                opened: Ok(()),
            }),
        }
    }

    #[test]
    fn the_journal_store_fails_when_it_cannot_open_or_is_plain_in_production() {
        let mut inp = healthy();
        assert_eq!(status_of(&inp, "journal store"), CheckStatus::Pass);
        let pg = inp.journal.as_mut().expect("journal");
        pg.tls = Some(false);
        assert_eq!(status_of(&inp, "journal store"), CheckStatus::Fail);
        inp.env = "development".into();
        assert_eq!(status_of(&inp, "journal store"), CheckStatus::Pass);
        inp.journal.as_mut().expect("journal").opened = Err("the server is unavailable".into());
        assert_eq!(status_of(&inp, "journal store"), CheckStatus::Fail);
    }

    fn status_of(inp: &DoctorInputs, item: &str) -> CheckStatus {
        evaluate(inp)
            .into_iter()
            .find(|r| r.item == item)
            .unwrap_or_else(|| panic!("no item {item}"))
            .status
    }

    #[test]
    fn a_key_without_withdrawals_passes_that_item() {
        assert_eq!(status_of(&healthy(), "API key: withdrawals"), CheckStatus::Pass);
    }

    #[rstest]
    #[case::ip_restricted(true, CheckStatus::Pass)]
    #[case::no_ip_restriction(false, CheckStatus::Warn)]
    fn ip_restriction(#[case] ip: bool, #[case] want: CheckStatus) {
        let mut inp = healthy();
        inp.api_restrictions = Some(Ok(restrictions(false, ip)));
        assert_eq!(status_of(&inp, "API key: IP restriction"), want);
    }

    #[test]
    fn permissions_are_skipped_and_said_so_where_the_endpoint_does_not_exist() {
        let mut inp = healthy();
        inp.mode = Mode::Testnet;
        inp.api_restrictions = None;
        let r = evaluate(&inp)
            .into_iter()
            .find(|r| r.item == "API key permissions")
            .unwrap();
        assert_eq!(r.status, CheckStatus::Skipped);
        assert!(r.detail.contains("not available on testnet"), "{}", r.detail);
    }

    #[test]
    fn a_key_that_cannot_trade_fails() {
        let mut inp = healthy();
        inp.api_restrictions = Some(Ok(ApiRestrictionsInfo {
            enable_spot_and_margin_trading: false,
            ..restrictions(false, true)
        }));
        assert_eq!(status_of(&inp, "API key: trading"), CheckStatus::Fail);
    }

    #[rstest]
    #[case(0, CheckStatus::Pass)]
    #[case(500, CheckStatus::Pass)]
    #[case(501, CheckStatus::Warn)]
    #[case(-800, CheckStatus::Warn)]
    #[case(1000, CheckStatus::Warn)]
    #[case(1001, CheckStatus::Fail)]
    #[case(-2500, CheckStatus::Fail)]
    fn clock_offset(#[case] off: i64, #[case] want: CheckStatus) {
        let mut inp = healthy();
        inp.clock_offset_ms = Some(Ok(off));
        assert_eq!(status_of(&inp, "clock offset"), want);
    }

    #[rstest]
    #[case("production", true, CheckStatus::Fail)]
    #[case("PRODUCTION", true, CheckStatus::Fail)]
    #[case("production", false, CheckStatus::Pass)]
    #[case("development", true, CheckStatus::Pass)]
    fn debug_posture(#[case] env: &str, #[case] debug: bool, #[case] want: CheckStatus) {
        let mut inp = healthy();
        inp.env = env.into();
        inp.debug = debug;
        assert_eq!(status_of(&inp, "ENV/DEBUG posture"), want);
    }

    #[rstest]
    #[case("production", Mode::Live, false, CheckStatus::Fail)]
    #[case("production", Mode::Sim, false, CheckStatus::Fail)]
    #[case("development", Mode::Testnet, false, CheckStatus::Warn)]
    #[case("development", Mode::Sim, false, CheckStatus::Pass)]
    #[case("production", Mode::Live, true, CheckStatus::Pass)]
    fn tls_endpoints(#[case] env: &str, #[case] mode: Mode, #[case] tls: bool, #[case] want: CheckStatus) {
        let mut inp = healthy();
        inp.env = env.into();
        inp.mode = mode;
        inp.endpoints_tls = tls;
        assert_eq!(status_of(&inp, "TLS endpoints"), want);
    }

    #[rstest]
    #[case(Mode::Live, Some(true), CheckStatus::Pass)]
    #[case(Mode::Live, Some(false), CheckStatus::Warn)]
    #[case(Mode::Live, None, CheckStatus::Warn)]
    #[case(Mode::Testnet, Some(false), CheckStatus::Skipped)]
    fn tried_before_live(#[case] mode: Mode, #[case] used: Option<bool>, #[case] want: CheckStatus) {
        let mut inp = healthy();
        inp.mode = mode;
        inp.used_testnet_or_paper_before = used;
        assert_eq!(status_of(&inp, "tried on testnet or paper"), want);
    }

    #[rstest]
    #[case(None, CheckStatus::Warn)]
    #[case(Some(NOW - 31 * DAY_MS), CheckStatus::Warn)]
    #[case(Some(NOW - 29 * DAY_MS), CheckStatus::Pass)]
    fn kill_switch_tested(#[case] last: Option<i64>, #[case] want: CheckStatus) {
        let mut inp = healthy();
        inp.last_kill_switch_test_ms = last;
        assert_eq!(status_of(&inp, "kill switch tested"), want);
    }

    #[rstest]
    #[case(None, CheckStatus::Warn)]
    #[case(Some(NOW - 7 * DAY_MS - 1), CheckStatus::Warn)]
    #[case(Some(NOW - 6 * DAY_MS), CheckStatus::Pass)]
    fn recent_backup(#[case] last: Option<i64>, #[case] want: CheckStatus) {
        let mut inp = healthy();
        inp.last_backup_ms = last;
        assert_eq!(status_of(&inp, "recent backup"), want);
    }

    #[rstest]
    #[case(Mode::Live, Some((true, 0o600)), CheckStatus::Pass)]
    #[case(Mode::Live, Some((true, 0o644)), CheckStatus::Fail)]
    #[case(Mode::Live, Some((false, 0)), CheckStatus::Fail)]
    #[case(Mode::Sim, Some((false, 0)), CheckStatus::Skipped)]
    #[case(Mode::Live, None, CheckStatus::Warn)]
    fn vault_file(#[case] mode: Mode, #[case] file: Option<(bool, u32)>, #[case] want: CheckStatus) {
        let mut inp = healthy();
        inp.env = "development".into();
        inp.mode = mode;
        inp.vault = file.map(|(exists, mode_bits)| VaultFileInfo {
            path: "/h/vault.crbot".into(),
            exists,
            mode_bits,
        });
        assert_eq!(status_of(&inp, "vault"), want);
    }

    #[test]
    fn a_readable_vault_names_the_chmod_fix() {
        let mut inp = healthy();
        inp.vault = Some(VaultFileInfo {
            path: "/h/vault.crbot".into(),
            exists: true,
            mode_bits: 0o644,
        });
        let r = evaluate(&inp).into_iter().find(|r| r.item == "vault").unwrap();
        assert_eq!(r.fix.as_deref(), Some("chmod 600 /h/vault.crbot"));
    }

    #[rstest]
    #[case(Mode::Live, true, CheckStatus::Pass)]
    #[case(Mode::Live, false, CheckStatus::Fail)]
    #[case(Mode::Paper, false, CheckStatus::Skipped)]
    fn keys_for_mode(#[case] mode: Mode, #[case] keys: bool, #[case] want: CheckStatus) {
        let mut inp = healthy();
        inp.mode = mode;
        inp.keys_for_mode = keys;
        assert_eq!(status_of(&inp, "keys for mode"), want);
    }

    #[test]
    fn text_shows_status_item_detail_fix_and_summary() {
        let mut inp = healthy();
        inp.api_restrictions = Some(Ok(restrictions(true, false)));
        let text = render_text(&evaluate(&inp));
        assert!(text.contains("FAIL  API key: withdrawals"), "{text}");
        assert!(text.contains("fix: disable \"Enable Withdrawals\""), "{text}");
        assert!(text.ends_with("11 pass, 1 warn, 1 fail, 0 skipped\n"), "{text}");
    }

    #[test]
    fn json_has_ok_summary_and_every_check() {
        let mut inp = healthy();
        inp.api_restrictions = Some(Ok(restrictions(true, true)));
        let results = evaluate(&inp);
        let doc: serde_json::Value = serde_json::from_str(&render_json(&results)).unwrap();
        assert_eq!(doc["ok"], false);
        assert_eq!(doc["summary"]["fail"], 1);
        assert_eq!(doc["checks"].as_array().unwrap().len(), results.len());
        let w = doc["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["item"] == "API key: withdrawals")
            .unwrap();
        assert_eq!(w["status"], "fail");
    }

    #[test]
    fn api_restrictions_parse_from_the_binance_response() {
        let body = r#"{"ipRestrict":false,"createTime":1698645219000,"enableReading":true,
            "enableWithdrawals":true,"enableInternalTransfer":false,"enableMargin":false,
            "enableFutures":false,"permitsUniversalTransfer":false,"enableVanillaOptions":false,
            "enableFixApiTrade":false,"enableFixReadOnly":false,"enableSpotAndMarginTrading":true,
            "enablePortfolioMarginTrading":false}"#;
        let r = ApiRestrictionsInfo::from_json(body).unwrap();
        assert_eq!(
            r,
            ApiRestrictionsInfo {
                ip_restrict: false,
                enable_withdrawals: true,
                enable_spot_and_margin_trading: true,
                enable_reading: true
            }
        );
        assert!(ApiRestrictionsInfo::from_json("{}").is_err());
    }

    #[test]
    fn a_service_backend_needs_no_vault_file_and_says_which_backend_served_the_keys() {
        let mut inp = healthy();
        inp.vault = Some(VaultFileInfo {
            path: "/h/vault.crbot".into(),
            exists: false,
            mode_bits: 0,
        });
        inp.secrets_backend = Backend::Aws;
        inp.keys_from = "aws (AWS_SECRET_ID=crbot/binance/prod)".into();
        let results = evaluate(&inp);
        let find = |item: &str| results.iter().find(|r| r.item == item).unwrap().clone();
        assert_eq!(find("vault").status, CheckStatus::Skipped);
        assert!(find("vault").detail.contains("aws"), "{:?}", find("vault"));
        let keys = find("keys for mode");
        assert_eq!(keys.status, CheckStatus::Pass);
        assert!(
            keys.detail.contains("AWS_SECRET_ID=crbot/binance/prod"),
            "{keys:?}"
        );
        let backend = find("secrets backend");
        assert_eq!(backend.status, CheckStatus::Pass);
        assert_eq!(backend.detail, "aws (AWS_SECRET_ID=crbot/binance/prod)");

        inp.keys_for_mode = false;
        let keys = evaluate(&inp)
            .into_iter()
            .find(|r| r.item == "keys for mode")
            .unwrap();
        assert_eq!(keys.status, CheckStatus::Fail);
        assert!(!keys.fix.unwrap().contains("vault set-keys"));
    }

    #[test]
    fn plain_keys_in_production_fail_the_secrets_backend_item() {
        let mut inp = healthy();
        inp.secrets_backend = Backend::Env;
        assert_eq!(status_of(&inp, "secrets backend"), CheckStatus::Fail);
        inp.env = "development".into();
        assert_eq!(status_of(&inp, "secrets backend"), CheckStatus::Pass);
        inp.mode = Mode::Sim;
        assert_eq!(status_of(&inp, "secrets backend"), CheckStatus::Skipped);
    }

    #[test]
    fn the_lease_item_names_the_leader_and_this_machines_role_or_fails_when_unreadable() {
        assert_eq!(check_lease(None).status, CheckStatus::Skipped);
        let leader = crate::journal::lease::Leader {
            epoch: 4,
            holder: "box-a pid 12".into(),
            address: Some("https://box-a:8002".into()),
            since_ms: 1_000,
        };
        let facts = LeaseFacts {
            leader: Ok(Some(leader)),
            local_role: Some("standby".into()),
            now_ms: 1_000 + 5 * 60_000,
        };
        let r = check_lease(Some(&facts));
        assert_eq!(r.status, CheckStatus::Pass);
        assert!(
            r.detail.contains("box-a pid 12 at https://box-a:8002 (epoch 4"),
            "{}",
            r.detail
        );
        assert!(
            r.detail.contains("(5 min)") && r.detail.contains("is the standby"),
            "{}",
            r.detail
        );
        let unreadable = LeaseFacts {
            leader: Err("server gone".into()),
            ..facts
        };
        assert_eq!(check_lease(Some(&unreadable)).status, CheckStatus::Fail);
    }
}
