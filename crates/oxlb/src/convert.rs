//! `oxlb convert`: legacy ConfigMap / Helm values → metallb.io resources on stdout.

use std::process::ExitCode;

use crate::cli::ConvertArgs;

pub fn run(args: &ConvertArgs) -> ExitCode {
    let mut output = String::new();
    let mut failed = false;
    for file in &args.files {
        match convert(file, &args.namespace) {
            Ok(yaml) => {
                if !output.is_empty() && !yaml.starts_with("---") {
                    output.push_str("---\n");
                }
                output.push_str(&yaml);
            }
            Err(()) => failed = true,
        }
    }
    if failed {
        return ExitCode::FAILURE;
    }
    crate::out::print(&output);
    ExitCode::SUCCESS
}

/// One legacy file as metallb.io resources (YAML); what is wrong goes to stderr.
fn convert(file: &std::path::Path, namespace: &str) -> Result<String, ()> {
    let text = read(file).map_err(|e| eprintln!("error: {}: {e}", file.display()))?;
    match oxlb_config::legacy::convert_text(&text, Some(file), namespace) {
        Ok((objects, warnings)) => {
            for w in &warnings {
                eprintln!("{w}");
            }
            objects.to_yaml().map_err(|e| eprintln!("error: {e}"))
        }
        Err(diagnostics) => {
            for d in &diagnostics {
                eprintln!("{d}");
            }
            Err(())
        }
    }
}

fn read(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(oxlb_config::load::MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > oxlb_config::load::MAX_FILE_BYTES {
        return Err("file too large".into());
    }
    String::from_utf8(bytes).map_err(|e| e.to_string())
}
