//! bytes → YAML → Snapshot → Config: must never panic, hang or allocate without bound,
//! whatever the bytes (the loader caps sizes and the YAML parser runs with budgets).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(snapshot) = oxlb_config::load_bytes(data, "metallb-system") {
        let built = oxlb_config::build_config(&snapshot);
        // Every message must render (Display walks every field).
        for d in built.config.err().unwrap_or_default().iter().chain(&built.warnings) {
            let _ = d.to_string();
        }
    }
});
