//! README's first command: `oxlb lab demo` with the real `oxlb run` on every node (FRR
//! router, three nodes, BGP and Layer 2 services, a node failure). Exit 0 only if every
//! check passed; Layer 2 is checked by counting the nodes that answer ARP.
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
    // Layer 2 is judged by who answers ARP on the LAN, not by who served a curl: exactly
    // one node (the elected one) before the failure, another one after it, and again
    // one after healing. With every node answering these lines read FAIL.
    let one = "  ok   exactly one node answers ARP for 172.31.0.200";
    assert!(stdout.contains(one), "{stdout}");
    assert!(
        stdout.contains("  ok   after the failure: exactly one node answers ARP")
            && stdout.contains("measured failover time"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  ok   after healing: exactly one node answers ARP"),
        "{stdout}"
    );
    assert!(
        stdout.contains("added a Secret \"memberlist\"") && stdout.contains("added Node objects"),
        "{stdout}"
    );
    // Nothing of the lab is left behind.
    let namespaces = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&namespaces.stdout).contains("oxlblab-"));
}
