//! README's first command: `oxlb lab demo` with the real `oxlb run` on every node (FRR
//! router, three nodes, BGP and Layer 2 services, a node failure). Exit 0 only if every
//! check passed.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

#[test]
fn lab_demo_passes_every_check() {
    if !oxlb_netlab::netns_tests_enabled("lab_demo").unwrap() {
        return;
    }
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_oxlb"))
        .args(["lab", "demo"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "lab demo failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("every check passed"), "{stdout}");
    assert!(stdout.contains("failed over to"), "{stdout}");
    // Nothing of the lab is left behind.
    let namespaces = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&namespaces.stdout).contains("oxlblab-"));
}
