//! The `crbot` binary: harden the process, parse the command line and hand over to the library
//! (the commands, and the console when no subcommand is given).

/// Freed memory is wiped: no secret survives in a buffer some crate freed (`secret::WipeOnFree`).
#[global_allocator]
static ALLOCATOR: crbot::secret::WipeOnFree = crbot::secret::WipeOnFree;

fn main() {
    // Core dumps off before any secret can exist in memory; a failure is reported, not fatal.
    if let Err(e) = crbot::vault::harden_process() {
        eprintln!("crbot: warning: could not disable core dumps: {e}");
    }
    let cli = crbot::cli::parse();
    std::process::exit(crbot::cli::run(cli, crbot::console::run, crbot::serve::run));
}
