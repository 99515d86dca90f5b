//! The command line (DESIGN.md §7): parsing and dispatch.
//!
//! Owns: the argument grammar, exit codes and the one-line error contract. Must not: hold
//! trading logic of its own; every order goes through the same engine, risk and journal code
//! as the screen.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::domain::Mode;
use crate::exchange::sim::SimArgs;
use crate::vault::VaultCommand;

/// Exit codes of DESIGN.md §7.
pub mod exit {
    pub const OK: i32 = 0;
    pub const FAILURE: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const RISK_REJECTED: i32 = 3;
}

/// crbot: a terminal trading console for Binance spot.
#[derive(Debug, Parser)]
#[command(name = "crbot", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options valid before or after the subcommand.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GlobalOpts {
    /// sim | paper | demo | testnet | live (sim when nothing is configured).
    #[arg(long, global = true)]
    pub mode: Option<Mode>,
    /// Folder for config, vault and journal instead of the user folders (also CRBOT_HOME).
    #[arg(long, global = true, env = "CRBOT_HOME")]
    pub home: Option<PathBuf>,
    /// Print one JSON document on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Read the passphrase from the first line of standard input.
    #[arg(long, global = true)]
    pub passphrase_stdin: bool,
    /// ASCII borders and charts (no box-drawing characters).
    #[arg(long, global = true)]
    pub ascii: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Binance-compatible local exchange.
    Sim(SimArgs),
    /// Manage the encrypted credential vault.
    Vault {
        #[command(subcommand)]
        command: VaultCommand,
    },
    /// REST latency, clock offset and stream reachability.
    Ping,
    /// Account balances.
    Balance,
    /// Connection, clock, rate-limit and trading-state health.
    Health,
    /// Walk the production checklist.
    Doctor,
    /// Place an order through the risk engine.
    Order(OrderArgs),
    /// Open orders.
    Orders,
    /// Positions built by crbot's fills.
    Positions,
    /// Today's P&L, drawdown and limits.
    Pnl,
    /// Stop everything: halt, cancel every open order (and flatten with --flatten).
    Kill {
        /// Also sell crbot's positions at market.
        #[arg(long)]
        flatten: bool,
    },
    /// Re-arm trading after a halt.
    Resume,
    /// Online backup of the journal to PATH.
    Backup { path: PathBuf },
    /// Journal export.
    Journal {
        #[command(subcommand)]
        command: JournalCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Export orders, trades, risk events and the equity curve.
    Export {
        /// Folder to write the CSV files into.
        #[arg(long)]
        csv: PathBuf,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct OrderArgs {
    pub side: OrderSide,
    pub symbol: String,
    pub qty: String,
    /// Limit price (without it the order is MARKET).
    #[arg(long)]
    pub limit: Option<String>,
    /// Stop-loss price (required for an entry).
    #[arg(long)]
    pub stop_loss: Option<String>,
    /// Take-profit price (required for an entry).
    #[arg(long)]
    pub take_profit: Option<String>,
    /// Print the verdict and the exact orders; send nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum OrderSide {
    Buy,
    Sell,
}

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let result = match &cli.command {
        Some(Command::Sim(args)) => crate::exchange::sim::run_cli(args),
        Some(Command::Vault { command }) => {
            crate::vault::run_cli(command, &crate::vault::VaultCliContext::from_global(&cli.global))
        }
        None => crate::config::Config::load(cli.global.mode, cli.global.home.clone())
            .map_err(anyhow::Error::from)
            .and_then(|config| crate::engine::console::run(config, &cli.global)),
        _ => Err(anyhow::anyhow!("this command is not available yet")),
    };
    match result {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("crbot: {e:#}");
            exit::FAILURE
        }
    }
}
