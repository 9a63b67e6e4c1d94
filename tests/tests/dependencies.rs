//! What the runtime package makes its users build.

use std::path::Path;
use std::process::Command;

/// `name vX.Y.Z|feature,feature` for every package the runtime package
/// builds for a user (normal dependencies, every feature on).
fn normal_dependencies() -> Vec<String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is inside the workspace");
    let output = Command::new(cargo)
        .args(["tree", "-e", "normal", "-p", "tokio-supervisor", "--all-features", "--prefix", "none"])
        .args(["--format", "{p}|{f}", "--offline"])
        .current_dir(workspace)
        .output()
        .expect("cargo tree runs");
    assert!(output.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&output.stderr));
    let mut lines: Vec<String> =
        String::from_utf8_lossy(&output.stdout).lines().map(|line| line.trim_end_matches(" (*)").to_owned()).collect();
    lines.sort();
    lines.dedup();
    lines
}

#[test]
fn one_syn_and_tracing_without_its_proc_macros() {
    let packages = normal_dependencies();
    let syn_versions: Vec<&str> = packages
        .iter()
        .filter_map(|line| line.strip_prefix("syn v"))
        .map(|rest| rest.split('.').next().unwrap_or_default())
        .collect();
    assert_eq!(syn_versions.len(), 1, "syn is built more than once (major versions {syn_versions:?}): {packages:#?}");

    let tracing = packages.iter().find(|line| line.starts_with("tracing v")).expect("tracing is a dependency");
    let features: Vec<&str> = tracing.split_once('|').map(|(_, f)| f.split(',').collect()).unwrap_or_default();
    assert!(
        !features.contains(&"attributes"),
        "tracing's `attributes` feature (#[instrument]) is unused and builds tracing-attributes and syn 2: {tracing}"
    );
    assert!(features.contains(&"std"), "{tracing}");
    assert!(!packages.iter().any(|line| line.starts_with("tracing-attributes ")), "{packages:#?}");
}
