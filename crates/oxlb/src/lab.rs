//! `oxlb lab ...`: the lab library (crates/lab) behind a thin command line.

use std::process::ExitCode;

use oxlb_lab::chaos::ChaosOptions;
use oxlb_lab::{DemoOptions, Lab, LabOptions, RouterKind};

use crate::cli::{LabArgs, LabCommand};

fn router_kind(name: &str) -> Result<RouterKind, String> {
    match name {
        "frr" => Ok(RouterKind::Frr),
        "bird" => Ok(RouterKind::Bird),
        other => Err(format!("--router {other:?}: expected frr or bird")),
    }
}

fn options(router: &str, args: &LabArgs) -> Result<LabOptions, String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find the oxlb executable to run on the nodes: {e}"))?;
    let mut options = LabOptions::new(
        exe,
        Box::new(|paths: &[std::path::PathBuf]| {
            crate::load_config(paths, oxlb_config::DEFAULT_NAMESPACE)
        }),
    );
    options.router = router_kind(router)?;
    options.prefix = args.prefix.clone();
    options.state_dir = args.state_dir.clone();
    Ok(options)
}

pub fn run(args: &LabArgs) -> ExitCode {
    let result: Result<(), String> = (|| match &args.command {
        LabCommand::Up {
            nodes,
            router,
            config,
        } => {
            let mut options = options(router, args)?;
            options.nodes = *nodes;
            options.config = config.clone();
            let lab = Lab::up(options).map_err(|e| e.to_string())?;
            crate::out::print(&lab.describe());
            Ok(())
        }
        LabCommand::Status => {
            crate::out::print(
                &Lab::load_from(&args.state_dir)
                    .map_err(|e| e.to_string())?
                    .status(),
            );
            Ok(())
        }
        LabCommand::Curl { ip } => {
            let answer = Lab::load_from(&args.state_dir)
                .map_err(|e| e.to_string())?
                .curl(*ip)
                .map_err(|e| e.to_string())?;
            crate::out::print(&answer);
            Ok(())
        }
        LabCommand::Fail { node } => Lab::load_from(&args.state_dir)
            .map_err(|e| e.to_string())?
            .fail(node)
            .map_err(|e| e.to_string()),
        LabCommand::Heal { node } => Lab::load_from(&args.state_dir)
            .map_err(|e| e.to_string())?
            .heal(node)
            .map_err(|e| e.to_string()),
        LabCommand::Down => {
            let removed =
                oxlb_lab::down(&args.prefix, &args.state_dir).map_err(|e| e.to_string())?;
            for item in removed {
                crate::out::println(&format!("removed {item}"));
            }
            Ok(())
        }
        LabCommand::Demo { router } => {
            let options = options(router, args)?;
            oxlb_lab::demo(
                options,
                DemoOptions { check_layer2: true },
                &mut std::io::stdout(),
            )
            .map_err(|e| e.to_string())
        }
        LabCommand::Chaos {
            duration,
            seed,
            faults,
            nodes,
            out,
        } => {
            let lab = Lab::load_from(&args.state_dir).map_err(|e| not_up(e, args))?;
            let options = ChaosOptions {
                duration: oxlb_lab::chaos::parse_duration(duration).map_err(|e| e.to_string())?,
                seed: *seed,
                faults: faults.clone(),
                nodes: nodes.clone(),
                out_dir: out.clone(),
            };
            let report = oxlb_lab::chaos::run(&lab, &options, &mut std::io::stdout())
                .map_err(|e| e.to_string())?;
            if report.passed() {
                Ok(())
            } else {
                Err(format!(
                    "chaos: {} invariant(s) broken; replay with --seed {}",
                    report.score.violations.len(),
                    report.seed
                ))
            }
        }
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("oxlb lab: {e}");
            ExitCode::FAILURE
        }
    }
}

/// "No lab is up" with the command that starts this one (same prefix and state dir).
fn not_up(e: oxlb_lab::Error, args: &LabArgs) -> String {
    match e {
        oxlb_lab::Error::NotUp(_) => {
            let mut how = String::from("oxlb lab up");
            if args.prefix != oxlb_lab::plan::DEFAULT_PREFIX {
                how.push_str(&format!(" --prefix {}", args.prefix));
            }
            if args.state_dir != std::path::Path::new(oxlb_lab::plan::DEFAULT_STATE_DIR) {
                how.push_str(&format!(" --state-dir {}", args.state_dir.display()));
            }
            format!(
                "no lab is up ({} has no state.json): start one with `{how}`, then run chaos on it",
                args.state_dir.display()
            )
        }
        other => other.to_string(),
    }
}

pub fn load(targets: &std::path::Path) -> ExitCode {
    match oxlb_lab::chaos::load::run(targets) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("oxlb lab-load: {e}");
            ExitCode::FAILURE
        }
    }
}

pub fn relay(port: String, via: String, loss: u8, delay_ms: u64, seed: u64) -> ExitCode {
    let options = oxlb_lab::chaos::relay::RelayOptions {
        port,
        via,
        loss_percent: loss.min(100),
        delay: std::time::Duration::from_millis(delay_ms),
        seed,
    };
    match oxlb_lab::chaos::relay::run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("oxlb lab-relay: {e}");
            ExitCode::FAILURE
        }
    }
}

pub fn backend(node: &str) -> ExitCode {
    match oxlb_lab::backend::serve(node) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("oxlb lab-backend: {e}");
            ExitCode::FAILURE
        }
    }
}
