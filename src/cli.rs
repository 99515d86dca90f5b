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
    Backup {
        /// File to write the copy to (a new file; its folder must exist).
        path: PathBuf,
    },
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
    /// buy (an entry: needs --stop-loss and --take-profit) or sell.
    pub side: OrderSide,
    /// The exchange's symbol, e.g. BTCUSDT (case does not matter).
    pub symbol: String,
    /// Quantity in the base asset, e.g. 0.001 (positive, a multiple of the symbol's step size).
    // Negative numbers are taken as values so that `-0.001` is refused as a quantity that
    // must be positive, not as an unknown option.
    #[arg(allow_negative_numbers = true)]
    pub qty: String,
    /// Limit price (without it the order is MARKET).
    #[arg(long, allow_negative_numbers = true)]
    pub limit: Option<String>,
    /// Stop-loss price (required for an entry).
    #[arg(long, allow_negative_numbers = true)]
    pub stop_loss: Option<String>,
    /// Take-profit price (required for an entry).
    #[arg(long, allow_negative_numbers = true)]
    pub take_profit: Option<String>,
    /// Print the verdict and the exact orders; send nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum OrderSide {
    /// Buy: an entry (or adding to a position).
    Buy,
    /// Sell: an exit from crbot's position.
    Sell,
}

/// The stable code of `--json`'s failure document for an exit code.
pub fn error_code(exit_code: i32) -> &'static str {
    match exit_code {
        exit::USAGE => "USAGE",
        exit::RISK_REJECTED => "RISK_REJECTED",
        _ => "FAILURE",
    }
}

/// `--json`'s failure document: `{"error": {"code", "exit_code", "message"}}`, the message
/// being the same one line stderr carries.
pub fn error_doc(exit_code: i32, message: &str) -> serde_json::Value {
    serde_json::json!({
        "error": {
            "code": error_code(exit_code),
            "exit_code": exit_code,
            "message": one_line(message),
        }
    })
}

/// Parses the process's arguments. A usage error exits 2 as clap has it; with `--json`
/// among the arguments it also prints [`error_doc`] on stdout.
pub fn parse() -> Cli {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let json = args
                .iter()
                .skip(1)
                .take_while(|a| *a != "--")
                .any(|a| a == "--json");
            if json && e.use_stderr() {
                let text = e.render().to_string();
                let first = text.lines().next().unwrap_or_default();
                // An argument may be a URL with a password (`journal migrate --to`).
                let message = crate::config::redact_urls(first.strip_prefix("error: ").unwrap_or(first));
                std::process::exit(fail_with(true, exit::USAGE, &message));
            }
            e.exit()
        }
    }
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
        Some(Command::Sim(args)) => return report(&cli.global, crate::exchange::sim::run_cli(args)),
        Some(Command::Vault { command }) => {
            // The vault does not depend on the configuration; log when it loads.
            let _guard = Config::load(cli.global.mode, cli.global.home.clone())
                .ok()
                .and_then(|c| start_logging(&c));
            let mut global = cli.global.clone();
            global.home = match crate::config::home_override(global.home) {
                Ok(home) => home,
                Err(e) => return fail(&cli.global, exit::FAILURE, &e.to_string()),
            };
            let ctx = vault::VaultCliContext::from_global(&global);
            return report(&cli.global, vault::run_cli(command, &ctx));
        }
        other => other.as_ref(),
    };
    let config = match Config::load(cli.global.mode, cli.global.home.clone()) {
        Ok(c) => c,
        Err(e) => return fail(&cli.global, exit::FAILURE, &e.to_string()),
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
            return fail(
                &cli.global,
                exit::FAILURE,
                &format!("cannot start the async runtime: {e}"),
            );
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
        Err(f) => fail(&ctx.global, f.code, &f.line),
    }
}

/// A failure: its one line on stderr and, with `--json` when the command printed no document
/// of its own, [`error_doc`] on stdout. Returns the exit code.
fn fail(global: &GlobalOpts, code: i32, line: &str) -> i32 {
    fail_with(global.json, code, line)
}

fn fail_with(json: bool, code: i32, line: &str) -> i32 {
    // The same line on both: a command's `Failure` is redacted where it is made.
    eprintln!("crbot: {}", one_line(line));
    if json && !common::document_printed() {
        common::print_json(error_doc(code, line));
    }
    code
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

fn report(global: &GlobalOpts, result: anyhow::Result<()>) -> i32 {
    match result {
        Ok(()) => exit::OK,
        Err(e) => fail(global, exit::FAILURE, &format!("{e:#}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every subcommand and every argument of every command says what it is in `--help`.
    #[test]
    fn every_command_and_argument_has_help_text() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() {
                    missing.push(format!("{path} <{id}>"));
                }
            }
            for sub in cmd.get_subcommands() {
                let name = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(name.clone());
                }
                walk(sub, &name, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "crbot", &mut missing);
        assert!(missing.is_empty(), "without help text: {missing:?}");
    }

    #[test]
    fn the_error_document_carries_the_code_of_the_exit_code_and_one_line() {
        let doc = error_doc(exit::USAGE, "QTY `-1`:\n  must be positive");
        assert_eq!(doc["error"]["code"], "USAGE");
        assert_eq!(doc["error"]["exit_code"], 2);
        assert_eq!(doc["error"]["message"], "QTY `-1`: must be positive");
        assert_eq!(error_doc(exit::FAILURE, "x")["error"]["code"], "FAILURE");
        assert_eq!(
            error_doc(exit::RISK_REJECTED, "x")["error"]["code"],
            "RISK_REJECTED"
        );
    }
}
