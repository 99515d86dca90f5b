//! `crbot kill [--flatten]` and `crbot resume`.
//!
//! Owns: running the kill switch's one sequence (`engine::kill`) from a shell — the halt
//! before connecting (if the journal cannot record it, say so loudly and cancel anyway), the
//! sweep's progress on the terminal and in the journal, the outcome per symbol, then a
//! reconcile and a backup through the backup service; `--flatten` then sells crbot's
//! positions at market through the risk gate (exit confirmed). Must not: need a running
//! console or the market stream; re-arm anything (only `resume` does, explicitly).

use std::time::Duration;

use serde_json::json;

use crate::cli::common::{self, Ctx, Failure, Outcome, Ready, now_ms};
use crate::cli::exit;
use crate::cli::remote::{self, Remote, Route};
use crate::domain::OrderPurpose;
use crate::engine::backup;
use crate::engine::core::Core;
use crate::engine::kill::{self, FlattenOutcome, FlattenSell, KillEvent, KillOutcome};
use crate::engine::lock::EngineLock;
use crate::journal::{EventKind, Journal, KillTrigger};
use crate::risk::TradingState;

/// The code of the event a kill switch leaves in the journal, for `crbot doctor`'s
/// comparison of stored codes (new code matches on [`EventKind`] instead).
pub const KILL_EVENT: &str = EventKind::Kill.as_code();
/// The code of the event every backup leaves, so `doctor` finds backups written anywhere.
pub const BACKUP_EVENT: &str = EventKind::Backup.as_code();

/// `<data>/backups/journal-<mode>-<UTC time>.db`.
pub fn backup_path(ctx: &Ctx) -> std::path::PathBuf {
    backup::file_in(
        &backup::folder(&ctx.config.paths.data_dir),
        ctx.config.mode,
        now_ms(),
    )
}

/// One progress line on the terminal, as the sweep reports it.
fn print_progress(ev: &KillEvent) {
    match ev {
        KillEvent::Stage(s) => println!("kill: {}", s.label()),
        KillEvent::Line { symbol, ok, outcome } => {
            let mark = match ok {
                Some(true) => "ok",
                Some(false) => "FAILED",
                None => "..",
            };
            println!("  {symbol:<12} {mark:<6} {outcome}");
        }
        KillEvent::Countdown { secs } if *secs > 0 => {
            println!("  rate limited: cancelling again in {secs}s")
        }
        KillEvent::Countdown { .. } => {}
        KillEvent::Done { ok, summary } => {
            println!("kill: {} — {summary}", if *ok { "DONE" } else { "INCOMPLETE" })
        }
    }
}

/// How long the kill switch gives a running engine to take the kill (its halt shows within one
/// engine step) before this command runs the sweep itself.
const KILL_ANSWER: Duration = Duration::from_secs(8);
/// How long the command follows the engine's sweep (and flatten) before it reports it as
/// unfinished.
const KILL_FOLLOW: Duration = Duration::from_secs(120);

pub async fn kill(ctx: &Ctx, flatten: bool) -> Outcome {
    // The kill switch never waits for another process. The account free: this command is the
    // engine for the sweep, holding the lock. Held by an engine that answers: the engine runs
    // the kill (its screen and API show it at once). Held but the engine does not answer (hung,
    // starting, or another command): the sweep runs from here anyway.
    let lock = EngineLock::try_acquire(&ctx.config.paths.data_dir, ctx.config.mode).ok();
    if lock.is_none() {
        match remote::engine_now(&ctx.config.paths.data_dir, ctx.config.mode).await {
            Some(engine) => match kill_through(ctx, &engine, flatten).await {
                Ok(outcome) => return outcome,
                Err(why) => eprintln!("crbot: {why}; running the kill sweep from here"),
            },
            None => eprintln!(
                "crbot: another crbot process holds the {} account and no engine answers; running the kill sweep from here",
                ctx.config.mode
            ),
        }
    }
    let outcome = kill_alone(ctx, flatten).await;
    drop(lock);
    outcome
}

/// The kill through the running engine: `POST /api/kill` with `"wait": true`, answered with
/// the engine's whole outcome (its sweep's progress, the backup, the flatten) once it is
/// done, printed with the same renderer as a kill run here. `Err` (why) when the engine did
/// not take it within [`KILL_ANSWER`] (its halt not seen in its state) or did not report it:
/// the caller then sweeps itself (a second sweep of an empty book is harmless).
async fn kill_through(ctx: &Ctx, engine: &Remote, flatten: bool) -> Result<Outcome, String> {
    let sent_ms = now_ms();
    let body = json!({"flatten": flatten, "wait": true});
    let answer = engine.call("POST", "/api/kill", Some(&body), KILL_ANSWER + KILL_FOLLOW);
    tokio::pin!(answer);
    // Taken: the engine's state shows this kill (its halt is journaled first, within a step).
    let taken = async {
        let deadline = std::time::Instant::now() + KILL_ANSWER;
        while std::time::Instant::now() < deadline {
            if let Ok((200, doc)) = engine
                .call("GET", "/api/risk", None, Duration::from_secs(2))
                .await
                && doc["kill"]["started_ms"]
                    .as_i64()
                    .is_some_and(|t| t >= sent_ms - 1000)
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    let early = tokio::select! {
        answered = &mut answer => Some(answered),
        taken = taken => if taken {
            None
        } else {
            return Err(format!("the engine did not take the kill within {} s", KILL_ANSWER.as_secs()));
        },
    };
    let answered = match early {
        Some(a) => a,
        None => answer.await,
    };
    let outcome = match answered {
        Ok((200, doc)) => serde_json::from_value::<KillOutcome>(doc["outcome"].clone())
            .map_err(|e| format!("the engine's kill report is not readable ({e})"))?,
        Ok((status, doc)) => {
            return Err(format!(
                "the engine did not report its kill ({})",
                remote::error_line(status, &doc)
            ));
        }
        Err(e) => return Err(format!("the engine did not report its kill ({e})")),
    };
    if !ctx.json() {
        for ev in &outcome.events {
            print_progress(ev);
        }
    }
    Ok(finish(ctx, &outcome))
}

/// The kill switch run by this command itself: halt in the journal, sweep, backup, flatten.
async fn kill_alone(ctx: &Ctx, flatten: bool) -> Outcome {
    let mut warnings: Vec<String> = Vec::new();
    // 1. The halt, durable before any request leaves (connecting may take a while).
    let mut core = match common::open_core(&ctx.config) {
        Ok(c) => Some(c),
        Err(e) => {
            warnings.push(format!(
                "WARNING: the journal cannot be opened ({}); the halt is NOT recorded; cancelling anyway",
                e.line
            ));
            None
        }
    };
    let halted = kill::halt(
        core.as_mut(),
        KillTrigger::Cli,
        "kill switch from the command line",
        now_ms(),
    );
    if let Some(e) = halted.halt_error() {
        warnings.push(format!(
            "WARNING: the journal could not record the halt ({e}); cancelling anyway"
        ));
    }
    for w in &warnings {
        eprintln!("crbot: {w}");
    }

    // 2. The sweep, its progress printed and journaled as it happens.
    let session = common::connect(ctx).await?;
    let mut running = halted.sweep(core.as_mut(), &session.rest, now_ms());
    while let Some(ev) = running.next().await {
        if !ctx.json() {
            print_progress(&ev);
        }
        if let Some(c) = core.as_mut() {
            kill::record(c, &ev, now_ms());
        }
    }
    let report = running.report().await;

    let mut ready = match core.take() {
        Some(core) => Some(Ready {
            session,
            core,
            notes: Vec::new(),
            lock: None,
            beside_engine: false,
        }),
        None => {
            session.close(&ctx.config).await;
            None
        }
    };
    let mut backup = None;
    if let Some(r) = ready.as_mut() {
        // Bring the journal's orders up to date with what the sweep cancelled.
        if let Err(e) = common::sync(r, &[]).await {
            r.notes
                .push(format!("after the sweep, reconcile failed: {}", e.line));
        }
        // 3. An online backup once stage one is over.
        let now = now_ms();
        let outcome = backup::spawn(
            r.core.journal.location().clone(),
            ctx.config.mode,
            backup_path(ctx),
            backup::Reason::AfterKill,
            now,
        )
        .await;
        r.core
            .record_event(outcome.kind(), None, &outcome.detail(), now_ms());
        backup = Some(outcome.result.map(|_| outcome.path));
    }

    // 4. Stage two when asked.
    let mut flatten_out = None;
    let mut flatten_ok = true;
    // Sells are orders: on PostgreSQL only under the account's lease (cancels always go).
    let lease = if flatten {
        crate::engine::lock::take_lease(&ctx.config.journal_location(), ctx.config.mode).await
    } else {
        Ok(None)
    };
    if flatten {
        match (ready.as_mut(), lease.as_ref()) {
            (Some(r), Err(e)) => {
                flatten_ok = false;
                let line = format!(
                    "flatten skipped: {e}; the leader flattens: POST /api/kill {{\"flatten\": true}} on its API"
                );
                eprintln!("crbot: {line}");
                r.notes.push(line);
            }
            (Some(r), Ok(held)) => {
                if let Some(l) = held {
                    r.core.journal.set_fence(l.guard());
                }
                let f = flatten_all(r).await;
                flatten_ok = f.ok;
                flatten_out = Some(f);
            }
            (None, _) => {
                flatten_ok = false;
                warnings.push("flatten skipped: without the journal crbot cannot tell its positions".into());
            }
        }
    }
    drop(lease);

    let trading_state = ready
        .as_ref()
        .map(|r| r.core.state.trading.to_string())
        .unwrap_or_else(|| "HALTED (not recorded)".into());
    let outcome = KillOutcome {
        // Printed as they came.
        events: Vec::new(),
        trading_state,
        halt_recorded: warnings.is_empty(),
        warnings,
        report,
        backup,
        notes: ready.as_ref().map(|r| r.notes.clone()).unwrap_or_default(),
        flatten: flatten_out,
        flatten_ok,
    };
    let result = finish(ctx, &outcome);
    if let Some(r) = ready {
        r.session.close(&ctx.config).await;
    }
    result
}

/// Prints a kill switch's outcome (after its progress lines) and gives its exit: the same
/// renderer whether this command or the account's engine ran it.
fn finish(ctx: &Ctx, outcome: &KillOutcome) -> Outcome {
    if let Some(f) = &outcome.flatten
        && !ctx.json()
    {
        println!("{}", f.text());
    }
    ctx.print(&outcome.text(), outcome.json());
    if !outcome.report.ok {
        return Err(Failure::new(format!(
            "kill incomplete: {}",
            outcome.report.summary
        )));
    }
    if !outcome.flatten_ok {
        return Err(Failure::new(
            "kill: orders cancelled, but flatten did not complete",
        ));
    }
    Ok(exit::OK)
}

/// Stage two: a MARKET sell of each of crbot's positions (all of it), through the risk gate
/// with the exit confirmed; dust reported per asset.
async fn flatten_all(ready: &mut Ready) -> FlattenOutcome {
    let plan = kill::flatten_plan(&ready.core.state, 100, None);
    let mut out = FlattenOutcome {
        ok: true,
        sells: Vec::new(),
        dust: plan.dust,
    };
    for t in &plan.tickets {
        let mut log = Vec::new();
        let result = match ready.core.decide(t, OrderPurpose::Flatten, true, now_ms()) {
            Ok(p) => ready.oneshot().send_prepared(&p.request, &mut log).await,
            Err(r) => Err(kill::refusal_text(&r)),
        };
        out.ok &= result.is_ok();
        out.sells.push(FlattenSell {
            symbol: t.symbol.clone(),
            qty: t.qty.to_string(),
            ok: result.is_ok(),
            detail: result.err().unwrap_or_else(|| log.join("; ")),
        });
    }
    out
}

/// `crbot resume`: re-arms, journaled. In modes with keys the vault passphrase is required
/// first, or with `SECRETS_BACKEND=aws`/`hashicorp` the keys must still be readable there (keys
/// from the environment in development stand in for it, as everywhere).
pub async fn resume(ctx: &Ctx) -> Outcome {
    let route = common::route(ctx).await?;
    let config = &ctx.config;
    let mut passphrase = None;
    if config.keys_from_vault() {
        let path = crate::vault::vault_path(Some(&config.paths.config_dir));
        let mut source: Box<dyn crate::vault::PassphraseSource> = if ctx.global.passphrase_stdin {
            Box::new(crate::vault::StdinLines::new().map_err(|e| Failure::new(e.to_string()))?)
        } else {
            Box::new(crate::vault::TerminalPrompt)
        };
        let attempts = crate::vault::UNLOCK_ATTEMPTS;
        let (contents, pass, _) =
            crate::vault::unlock_contents(&path, source.as_mut(), &std::thread::sleep, attempts)
                .map_err(|e| Failure::new(format!("re-arm needs the vault passphrase: {e}")))?;
        if contents.get(config.mode).is_none() {
            return Err(Failure::new(format!(
                "re-arm needs the vault passphrase: {}",
                crate::vault::VaultError::NoKeys { mode: config.mode }
            )));
        }
        passphrase = Some(pass);
    }
    if config.mode.needs_keys() && config.secrets.backend.is_service() {
        // As the vault's passphrase above: a secret that can no longer be read keeps trading
        // halted. The keys themselves are dropped here (an engine's re-arm fetches its own).
        drop(
            crate::secrets::fetch(&config.secrets)
                .await
                .map_err(|e| Failure::new(format!("re-arm needs the keys: {e}")))?,
        );
    }
    let _lock = match route {
        // The engine checks the passphrase again against its vault: a console's engine holds
        // none of its own to re-arm with.
        Route::Engine(engine) => return resume_through(ctx, &engine, passphrase).await,
        Route::Alone(lock) => lock,
    };
    let mut core: Core = common::open_core(config)?;
    if core.state.trading == TradingState::Active {
        ctx.print(
            "trading is already active; nothing to re-arm",
            json!({"rearmed": false, "trading_state": "ACTIVE", "message": "already active"}),
        );
        return Ok(exit::OK);
    }
    let before = core.state.trading.to_string();
    core.rearm("cli", now_ms()).map_err(Failure::new)?;
    let after = core.state.trading.to_string();
    ctx.print(
        &format!("re-armed: {before} → {after}"),
        json!({"rearmed": true, "previous": before, "trading_state": after}),
    );
    Ok(exit::OK)
}

/// `crbot resume` through the running engine (the passphrase, in a mode with keys, was checked
/// here first, as when the command runs alone).
async fn resume_through(
    ctx: &Ctx,
    engine: &Remote,
    passphrase: Option<crate::secret::SecretString>,
) -> Outcome {
    let wait = Duration::from_secs(20);
    let (_, before) = engine
        .call("GET", "/api/risk", None, wait)
        .await
        .map_err(Failure::new)?;
    let before = before["trading_state"].as_str().unwrap_or_default().to_string();
    if before == "ACTIVE" {
        ctx.print(
            "trading is already active; nothing to re-arm",
            json!({"rearmed": false, "trading_state": "ACTIVE", "message": "already active"}),
        );
        return Ok(exit::OK);
    }
    let mut body = json!({"confirm": "RESUME"});
    if let Some(p) = &passphrase {
        body["passphrase"] = json!(p.expose());
    }
    let (status, doc) = engine
        .call("POST", "/api/resume", Some(&body), wait)
        .await
        .map_err(Failure::new)?;
    let after = doc["trading_state"].as_str().unwrap_or_default().to_string();
    if status != 200 || after != "ACTIVE" {
        return Err(Failure::new(format!(
            "the engine did not re-arm (still {after}); see its log"
        )));
    }
    ctx.print(
        &format!("re-armed: {before} → {after}"),
        json!({"rearmed": true, "previous": before, "trading_state": after}),
    );
    Ok(exit::OK)
}

/// Opens this mode's journal only if it exists (backup and export never create one); a
/// journal that cannot be written is opened read-only (both only read it).
pub fn open_existing(ctx: &Ctx) -> Result<Journal, Failure> {
    let path = ctx.config.journal_path();
    let location = ctx.config.journal_location();
    if let crate::journal::Location::Postgres(_) = location {
        // Never created here: a database with no journal is refused.
        return Journal::open_read_only_at(&location, ctx.config.mode)
            .map_err(|e| common::journal_failure(&path, &e));
    }
    if !path.exists() {
        return Err(Failure::new(format!("no journal at {}", path.display())));
    }
    Journal::open_for_reading(&path, ctx.config.mode)
        .map(|(journal, _read_only)| journal)
        .map_err(|e| common::journal_failure(&path, &e))
}
