//! Standard output of the printing commands. When the reader goes away (`oxlb check
//! ... | head -1`), the command stops at once and quietly, with the status a shell
//! reports for a Unix tool stopped by SIGPIPE (128 + 13), instead of the panic
//! `println!` gives. (Rust ignores SIGPIPE; restoring its default action would take
//! unsafe code, which the workspace denies.)

use std::io::Write;

/// 128 + SIGPIPE: what `$?` shows for `cat`, `grep`... whose reader went away.
pub const BROKEN_PIPE_STATUS: i32 = 141;

/// Writes `text` to stdout.
pub fn print(text: &str) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        stop(&e);
    }
}

/// Writes `text` and a newline to stdout.
pub fn println(text: &str) {
    print(&format!("{text}\n"));
}

fn stop(error: &std::io::Error) -> ! {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(BROKEN_PIPE_STATUS);
    }
    // stderr may be gone as well: nothing more to say then.
    let _ = writeln!(std::io::stderr(), "oxlb: cannot write the output: {error}");
    std::process::exit(1);
}
