//! `oxlb-lab-backend [lab-backend] NODE`: the lab's HTTP backend as its own program (the
//! `oxlb` binary offers the same as the hidden `oxlb lab-backend NODE`).

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let node = match args.as_slice() {
        [cmd, node] if cmd == "lab-backend" => node.clone(),
        [node] => node.clone(),
        _ => {
            eprintln!("usage: oxlb-lab-backend [lab-backend] NODE");
            return std::process::ExitCode::from(2);
        }
    };
    match oxlb_lab::backend::serve(&node) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lab backend for {node}: cannot listen on port 80: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
