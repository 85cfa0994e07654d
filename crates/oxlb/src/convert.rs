use std::process::ExitCode;
pub fn run(_args: &crate::cli::ConvertArgs) -> ExitCode {
    ExitCode::FAILURE
}
