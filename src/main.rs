//! The `crbot` binary: parse the command line and hand over to the library.

use clap::Parser;

fn main() {
    let cli = crbot::cli::Cli::parse();
    std::process::exit(crbot::cli::run(cli));
}
