//! Every bootstrap file shipped in `bootstrap/` is valid.

use std::process::Command;

use wishbone_e2e::binary;

#[test]
fn every_shipped_bootstrap_passes_check() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bootstrap");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "yaml") {
            let output = Command::new(binary("wishbone"))
                .arg("check")
                .arg("--config")
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&output.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 2, "found only {checked} bootstrap files");
}
