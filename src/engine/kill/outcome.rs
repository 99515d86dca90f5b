//! What a kill switch achieved, as one document: the sweep's progress and report, the backup
//! after it, the trading state, and (with flatten) each sell and each asset left as dust.
//!
//! Owns: that document and its two renderings (the text `crbot kill` prints after the
//! progress lines, and its `--json` document), so that a kill run by the command itself and
//! one run by the account's engine (which sends this document back through its reply path)
//! print the same. Must not: decide or send anything.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Dust, KillEvent, KillReport};
use crate::domain::Symbol;

/// The whole outcome of one kill switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KillOutcome {
    /// The sweep's progress, in the order it came (printed as it happens when the command
    /// runs the sweep itself; replayed from here when the engine ran it).
    pub events: Vec<KillEvent>,
    /// The trading state once everything is done (`HALTED: …`).
    pub trading_state: String,
    /// The halt is in the journal (a crash now still starts HALTED).
    pub halt_recorded: bool,
    /// What went wrong before the sweep (the journal could not record the halt, …).
    pub warnings: Vec<String>,
    /// Stage one: per symbol, cancelled, still open, verified.
    pub report: KillReport,
    /// The journal's backup after stage one: its path, or why there is none; `None` when no
    /// backup was made (no journal).
    pub backup: Option<Result<PathBuf, String>>,
    /// What the reconcile after the sweep could not do.
    pub notes: Vec<String>,
    /// Stage two, when asked and run.
    pub flatten: Option<FlattenOutcome>,
    /// Stage two, when asked, completed (`true` when not asked).
    pub flatten_ok: bool,
}

/// Stage two: one MARKET sell per crbot position, and what was left as dust.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlattenOutcome {
    pub ok: bool,
    pub sells: Vec<FlattenSell>,
    pub dust: Vec<Dust>,
}

/// One sell of stage two: what the exchange answered (`detail`), or why it was not sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlattenSell {
    pub symbol: Symbol,
    pub qty: String,
    pub ok: bool,
    pub detail: String,
}

impl KillOutcome {
    /// Stage one and (when asked) stage two both completed.
    pub fn ok(&self) -> bool {
        self.report.ok && self.flatten_ok
    }

    /// The closing lines: the trading state, the backup, the notes.
    pub fn text(&self) -> String {
        let mut text = format!("trading state: {}\n", self.trading_state);
        match &self.backup {
            Some(Ok(p)) => text.push_str(&format!("journal backup: {}\n", p.display())),
            Some(Err(e)) => text.push_str(&format!("journal backup FAILED: {e}\n")),
            None => {}
        }
        for n in &self.notes {
            text.push_str(&format!("note: {n}\n"));
        }
        text
    }

    /// The `--json` document.
    pub fn json(&self) -> Value {
        let r = &self.report;
        json!({
            "ok": self.ok(),
            "trading_state": self.trading_state,
            "halt_recorded": self.halt_recorded,
            "warnings": self.warnings,
            "symbols": r.lines.iter().map(|l| json!({"symbol": l.symbol.as_str(), "ok": l.ok, "outcome": l.outcome})).collect::<Vec<_>>(),
            "cancelled": r.cancelled,
            "still_open": r.still_open.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            "summary": r.summary,
            "backup": self.backup.as_ref().map(|b| match b {
                Ok(p) => json!({"path": p.display().to_string()}),
                Err(e) => json!({"error": e}),
            }),
            "flatten": self.flatten.as_ref().map(FlattenOutcome::json),
        })
    }
}

impl FlattenOutcome {
    /// `flatten:` and a line per sell and per dust asset.
    pub fn text(&self) -> String {
        let mut text = String::from("flatten:\n");
        if self.sells.is_empty() && self.dust.is_empty() {
            text.push_str("  no crbot positions to sell\n");
        }
        for s in &self.sells {
            let failed = if s.ok { "" } else { "FAILED " };
            text.push_str(&format!("  {} SELL {}: {failed}{}\n", s.symbol, s.qty, s.detail));
        }
        for d in &self.dust {
            text.push_str(&format!(
                "  dust {} {} ({}): {}\n",
                d.qty, d.asset, d.symbol, d.reason
            ));
        }
        text
    }

    pub fn json(&self) -> Value {
        let sells: Vec<Value> = self
            .sells
            .iter()
            .map(|s| json!({"symbol": s.symbol.as_str(), "qty": s.qty, "ok": s.ok, "detail": s.detail}))
            .collect();
        let dust: Vec<Value> = self
            .dust
            .iter()
            .map(|d| json!({"symbol": d.symbol.as_str(), "asset": d.asset.as_str(), "qty": d.qty.to_string(), "reason": d.reason}))
            .collect();
        json!({"ok": self.ok, "sells": sells, "dust": dust})
    }
}

/// Why a sell of stage two was not sent: `refused: RULE: …; …` for the risk gate, the
/// journal's error otherwise.
pub fn refusal_text(r: &crate::engine::core::Refusal) -> String {
    use crate::engine::core::Refusal;
    match r {
        Refusal::Risk(d) => format!(
            "refused: {}",
            d.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("; ")
        ),
        e @ Refusal::Storage(_) => e.to_string(),
    }
}
