//! The command line: parsing and dispatch. The commands, their options and exit codes are a
//! contract with scripts (README "Commands"): change none silently.
//!
//! Owns: the argument grammar, exit codes and the one-line error contract. Must not: hold
//! trading logic of its own; every order goes through the same engine, risk and journal code
//! as the screen.

use std::future::Future;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub mod common;
pub mod doctor;
pub mod info;
pub mod kill;
pub mod migrate;
pub mod remote;
pub mod token;
pub mod trade;
pub mod vault;

use common::{Ctx, Failure, Outcome};

use crate::config::Config;
use crate::domain::Mode;
use crate::exchange::sim::SimArgs;
use vault::VaultCommand;

/// Exit codes: 0 success, 1 failure (one-line reason on stderr), 2 usage error, 3 risk rejection.
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
    // CRBOT_HOME is read by the configuration, not by clap: clap would take an empty
    // `CRBOT_HOME=` as a missing value and refuse every command, even one given `--home`.
    #[arg(long, global = true)]
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
    /// Journal export, and the copy of an SQLite journal into PostgreSQL.
    Journal {
        #[command(subcommand)]
        command: JournalCommand,
    },
    /// Run the engine headless with the control API on TCP.
    Serve(ServeArgs),
    /// Bearer tokens for the control API.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// HOST:PORT to listen on (default CRBOT_API_ADDR, else 127.0.0.1:8002; port 0 picks one).
    #[arg(long)]
    pub addr: Option<std::net::SocketAddr>,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print one token, signed with SECRET_KEY.
    Issue {
        /// read (the documents) or trade (also kill, resume and cancel).
        #[arg(long, value_enum, default_value_t = crate::api::auth::Scope::Read)]
        scope: crate::api::auth::Scope,
        /// Lifetime in hours (default JWT_EXPIRE_HOURS, else 24).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=8760))]
        ttl: Option<u64>,
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
    /// Copy this mode's SQLite journal into an empty PostgreSQL database and verify the copy.
    Migrate {
        /// postgresql://USER:PASSWORD@HOST[:PORT]/DATABASE[?sslmode=verify-full]
        #[arg(long)]
        to: String,
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

/// Runs the parsed command line and returns the process exit code. `console` is what `crbot`
/// with no subcommand runs (`crate::console::run`) and `serve` what `crbot serve` runs
/// (`crate::serve::run`): both wire the engine to its clients and sit above the command line,
/// so the binary hands them in rather than this module naming them.
pub fn run<C, F, S, G>(cli: Cli, console: C, serve: S) -> i32
where
    C: FnOnce(Config, GlobalOpts) -> F,
    F: Future<Output = anyhow::Result<()>>,
    S: FnOnce(Config, GlobalOpts, ServeArgs) -> G,
    G: Future<Output = anyhow::Result<()>>,
{
    let command = match &cli.command {
        // The local exchange prints its one banner line and logs nothing to the data folder.
        Some(Command::Sim(args)) => return report(crate::exchange::sim::run_cli(args)),
        Some(Command::Vault { command }) => {
            // The vault does not depend on the configuration; log when it loads.
            let _guard = Config::load(cli.global.mode, cli.global.home.clone())
                .ok()
                .and_then(|c| start_logging(&c));
            let mut global = cli.global.clone();
            global.home = match crate::config::home_override(global.home) {
                Ok(home) => home,
                Err(e) => {
                    eprintln!("crbot: {e}");
                    return exit::FAILURE;
                }
            };
            let ctx = vault::VaultCliContext::from_global(&global);
            return report(vault::run_cli(command, &ctx));
        }
        other => other.as_ref(),
    };
    let config = match Config::load(cli.global.mode, cli.global.home.clone()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("crbot: {e}");
            return exit::FAILURE;
        }
    };
    let _guard = start_logging(&config);
    for w in &config.warnings {
        eprintln!("crbot: warning: {w}");
    }
    let ctx = Ctx {
        config,
        global: cli.global.clone(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("crbot: cannot start the async runtime: {e}");
            return exit::FAILURE;
        }
    };
    let outcome = match command {
        Some(Command::Serve(args)) => runtime.block_on(run_wired(serve(
            ctx.config.clone(),
            ctx.global.clone(),
            args.clone(),
        ))),
        _ => runtime.block_on(dispatch(&ctx, command, console)),
    };
    // Background tasks (an in-process local exchange, HTTP pools) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match outcome {
        Ok(code) => code,
        Err(f) => {
            eprintln!("crbot: {}", one_line(&f.line));
            f.code
        }
    }
}

async fn dispatch<C, F>(ctx: &Ctx, command: Option<&Command>, console: C) -> Outcome
where
    C: FnOnce(Config, GlobalOpts) -> F,
    F: Future<Output = anyhow::Result<()>>,
{
    let Some(command) = command else {
        return run_console(ctx, console).await;
    };
    match command {
        Command::Ping => info::ping(ctx).await,
        Command::Balance => info::balance(ctx).await,
        Command::Health => info::health(ctx).await,
        Command::Doctor => doctor::doctor(ctx).await,
        Command::Order(args) => trade::order(ctx, args).await,
        Command::Orders => info::orders(ctx).await,
        Command::Positions => info::positions(ctx).await,
        Command::Pnl => info::pnl(ctx).await,
        Command::Kill { flatten } => kill::kill(ctx, *flatten).await,
        Command::Resume => kill::resume(ctx).await,
        // Through the running engine (it journals the backup); with none, the account is this
        // command's while it copies.
        Command::Backup { path } => match common::route(ctx).await? {
            remote::Route::Engine(engine) => info::backup_through(ctx, &engine, path).await,
            remote::Route::Alone(_lock) => info::backup(ctx, path),
        },
        Command::Journal {
            command: JournalCommand::Export { csv },
        } => info::export(ctx, csv).await,
        Command::Journal {
            command: JournalCommand::Migrate { to },
        } => migrate::migrate(ctx, to).await,
        Command::Token {
            command: TokenCommand::Issue { scope, ttl },
        } => token::issue(ctx, *scope, *ttl),
        Command::Sim(_) | Command::Vault { .. } | Command::Serve(_) => {
            Err(Failure::usage("not a trading command"))
        }
    }
}

/// `crbot` with no subcommand: the screen (configuration, logging and the runtime are set up).
async fn run_console<F>(ctx: &Ctx, console: impl FnOnce(Config, GlobalOpts) -> F) -> Outcome
where
    F: Future<Output = anyhow::Result<()>>,
{
    run_wired(console(ctx.config.clone(), ctx.global.clone())).await
}

/// The console or `crbot serve`: exit 0, or 1 with the error's one line.
async fn run_wired(wired: impl Future<Output = anyhow::Result<()>>) -> Outcome {
    match wired.await {
        Ok(()) => Ok(exit::OK),
        Err(e) => Err(Failure::new(format!("{e:#}"))),
    }
}

/// Logs go to the data folder, never to stdout (which carries the command's output).
fn start_logging(config: &Config) -> Option<crate::logging::LogGuard> {
    match crate::logging::init(&config.paths.data_dir, config.json_logs(), &config.log_filter) {
        Ok(g) => Some(g),
        Err(e) => {
            eprintln!("crbot: warning: logging disabled: {e}");
            None
        }
    }
}

/// The stderr contract: one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn report(result: anyhow::Result<()>) -> i32 {
    match result {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("crbot: {}", one_line(&format!("{e:#}")));
            exit::FAILURE
        }
    }
}
