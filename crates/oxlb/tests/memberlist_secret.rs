//! The generated Secret loads as the memberlist key `oxlb run` reads.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

#[test]
fn generated_secret_is_a_valid_memberlist_secret() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_oxlb"))
        .args(["memberlist-secret", "-n", "metallb-system"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let snapshot = oxlb_config::load_str(&text, None, "metallb-system").unwrap();
    let secret = &snapshot.secrets[0].object;
    assert_eq!(secret.metadata.name.as_deref(), Some("memberlist"));
    let key = &secret.data.as_ref().unwrap()["secretkey"];
    assert_eq!(key.0.len(), 128);
    // Two runs give two different keys.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_oxlb"))
        .arg("memberlist-secret")
        .output()
        .unwrap();
    assert_ne!(again.stdout, text.as_bytes());
}
