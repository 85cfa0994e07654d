//! Prints a generated configuration: `cargo run -p oxlb-config --example synthetic --
//! POOLS PEERS ADVERTISEMENTS > large.yaml` (default 1000 1000 2000), for timing
//! `oxlb check -f large.yaml`.

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let get = |i: usize, default: usize| args.get(i).copied().unwrap_or(default);
    print!(
        "{}",
        oxlb_config::synthetic::synthetic_config(get(0, 1000), get(1, 1000), get(2, 2000))
    );
}
