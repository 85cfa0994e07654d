//! `oxlb convert`: legacy ConfigMap / Helm values → metallb.io resources on stdout.

use std::process::ExitCode;

use crate::cli::ConvertArgs;

pub fn run(args: &ConvertArgs) -> ExitCode {
    let text = match read(&args.file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {}: {e}", args.file.display());
            return ExitCode::FAILURE;
        }
    };
    match oxlb_config::legacy::convert_text(&text, Some(&args.file), &args.namespace) {
        Ok((objects, warnings)) => {
            for w in &warnings {
                eprintln!("{w}");
            }
            match objects.to_yaml() {
                Ok(yaml) => {
                    print!("{yaml}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(diagnostics) => {
            for d in &diagnostics {
                eprintln!("{d}");
            }
            ExitCode::FAILURE
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
