//! `oxlb memberlist-secret`: a fresh shared key for the Layer 2 speakers' gossip (the
//! generator is shared with `oxlb lab up`, in `oxlb_config::memberlist`).

use std::process::ExitCode;

use oxlb_config::memberlist::{random_key, secret_yaml};

pub fn run(namespace: &str) -> ExitCode {
    let key = match random_key() {
        Ok(key) => key,
        Err(e) => {
            eprintln!("oxlb memberlist-secret: cannot read /dev/urandom: {e}");
            return ExitCode::FAILURE;
        }
    };
    match secret_yaml(namespace, &key) {
        Ok(text) => {
            crate::out::print(&text);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("oxlb memberlist-secret: {e}");
            ExitCode::FAILURE
        }
    }
}
