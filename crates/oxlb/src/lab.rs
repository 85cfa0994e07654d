//! `oxlb lab ...`: the lab library (crates/lab) behind a thin command line.

use std::process::ExitCode;

use oxlb_lab::{DemoOptions, Lab, LabOptions, RouterKind};

use crate::cli::{LabArgs, LabCommand};

fn router_kind(name: &str) -> Result<RouterKind, String> {
    match name {
        "frr" => Ok(RouterKind::Frr),
        "bird" => Ok(RouterKind::Bird),
        other => Err(format!("--router {other:?}: expected frr or bird")),
    }
}

fn options(router: &str) -> Result<LabOptions, String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find the oxlb executable to run on the nodes: {e}"))?;
    let mut options = LabOptions::new(
        exe,
        Box::new(|paths: &[std::path::PathBuf]| {
            crate::load_config(paths, oxlb_config::DEFAULT_NAMESPACE)
        }),
    );
    options.router = router_kind(router)?;
    Ok(options)
}

pub fn run(args: &LabArgs) -> ExitCode {
    let result: Result<(), String> = (|| match &args.command {
        LabCommand::Up {
            nodes,
            router,
            config,
        } => {
            let mut options = options(router)?;
            options.nodes = *nodes;
            options.config = config.clone();
            let lab = Lab::up(options).map_err(|e| e.to_string())?;
            crate::out::print(&lab.describe());
            Ok(())
        }
        LabCommand::Status => {
            crate::out::print(&Lab::load().map_err(|e| e.to_string())?.status());
            Ok(())
        }
        LabCommand::Curl { ip } => {
            let answer = Lab::load()
                .map_err(|e| e.to_string())?
                .curl(*ip)
                .map_err(|e| e.to_string())?;
            crate::out::print(&answer);
            Ok(())
        }
        LabCommand::Fail { node } => Lab::load()
            .map_err(|e| e.to_string())?
            .fail(node)
            .map_err(|e| e.to_string()),
        LabCommand::Heal { node } => Lab::load()
            .map_err(|e| e.to_string())?
            .heal(node)
            .map_err(|e| e.to_string()),
        LabCommand::Down => {
            let removed = oxlb_lab::down(
                oxlb_lab::plan::DEFAULT_PREFIX,
                std::path::Path::new(oxlb_lab::plan::DEFAULT_STATE_DIR),
            )
            .map_err(|e| e.to_string())?;
            for item in removed {
                crate::out::println(&format!("removed {item}"));
            }
            Ok(())
        }
        LabCommand::Demo { router } => {
            let options = options(router)?;
            oxlb_lab::demo(
                options,
                DemoOptions { check_layer2: true },
                &mut std::io::stdout(),
            )
            .map_err(|e| e.to_string())
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

pub fn backend(node: &str) -> ExitCode {
    match oxlb_lab::backend::serve(node) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("oxlb lab-backend: {e}");
            ExitCode::FAILURE
        }
    }
}
