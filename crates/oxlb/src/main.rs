//! `oxlb`: the command line. A thin dispatcher: one module per subcommand.

mod check;
mod cli;
mod control_plane;
mod controller;
mod convert;
mod crds;
mod drain;
mod lab;
mod logging;
mod memberlist;
mod out;
mod router_config;
mod run;
mod speaker;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Counts the bytes the process holds, so `oxlb run` can report its live heap exactly
/// (`GET /api/v1/memory`; the soak test bounds it).
#[global_allocator]
static ALLOCATOR: oxlb_standalone::memory::CountingAllocator =
    oxlb_standalone::memory::CountingAllocator;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::Check(args) => check::run(&args),
        cli::Command::Convert(args) => convert::run(&args),
        cli::Command::Crds => crds::run(),
        cli::Command::Run(args) => run::run(&args),
        cli::Command::Status(args) => run::status(&args),
        cli::Command::Explain(args) => run::explain(&args),
        cli::Command::Drain(args) => drain::drain(&args),
        cli::Command::Undrain(args) => drain::undrain(&args),
        cli::Command::RouterConfig(args) => router_config::run(&args),
        cli::Command::Lab(args) => lab::run(&args),
        cli::Command::LabBackend { node } => lab::backend(&node),
        cli::Command::LabLoad { targets } => lab::load(&targets),
        cli::Command::LabRelay {
            port,
            via,
            loss,
            delay_ms,
            seed,
        } => lab::relay(port, via, loss, delay_ms, seed),
        cli::Command::Controller(args) => controller::run(&args),
        cli::Command::ControlPlaneVip(args) => control_plane::run(&args),
        cli::Command::MemberlistSecret { namespace } => memberlist::run(&namespace),
        cli::Command::Speaker(args) => speaker::run(&args),
    }
}

/// Loads and validates a configuration, every error in one message.
pub(crate) fn load_config(
    paths: &[PathBuf],
    namespace: &str,
) -> Result<oxlb_config::Config, String> {
    let join = |errors: Vec<oxlb_config::Diagnostic>| {
        errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n  ")
    };
    let snapshot = oxlb_config::load_paths(paths, namespace).map_err(join)?;
    oxlb_config::build_config(&snapshot).config.map_err(join)
}
