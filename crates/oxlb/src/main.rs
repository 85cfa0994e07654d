//! `oxlb`: the command line. A thin dispatcher: one module per subcommand.

mod check;
mod cli;
mod convert;
mod crds;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::Check(args) => check::run(&args),
        cli::Command::Convert(args) => convert::run(&args),
        cli::Command::Crds => crds::run(),
    }
}
