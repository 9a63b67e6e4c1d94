//! The docs.rs build: a nightly rustdoc with `--cfg docsrs` and every
//! feature. `#![feature(doc_auto_cfg)]` is an error there since the feature
//! was merged into `doc_cfg`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is inside the workspace").to_owned()
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// The `[package.metadata.docs.rs]` table of the runtime package.
fn docs_rs_metadata() -> Value {
    let output = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(workspace_root())
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr));
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let manifest = workspace_root().join("supervisor").join("Cargo.toml");
    let package = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|package| Path::new(package["manifest_path"].as_str().unwrap_or_default()) == manifest)
        .expect("the runtime package");
    package["metadata"]["docs"]["rs"].clone()
}

#[test]
fn docs_rs_builds_every_feature_with_cfg_docsrs() {
    let docs_rs = docs_rs_metadata();
    assert_eq!(docs_rs["all-features"], true, "{docs_rs}");
    let args: Vec<&str> =
        docs_rs["rustdoc-args"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    assert!(args.windows(2).any(|pair| pair == ["--cfg", "docsrs"]), "rustdoc-args: {args:?}");
}

#[test]
fn crate_attributes_use_features_current_nightlies_know() {
    let lib = std::fs::read_to_string(workspace_root().join("supervisor/src/lib.rs")).expect("lib.rs");
    let attributes: Vec<&str> = lib.lines().filter(|line| line.starts_with("#![")).collect();
    // Merged into `doc_cfg` (rust-lang/rust#138907); `doc_cfg_hide` likewise.
    for removed in ["doc_auto_cfg", "doc_cfg_hide"] {
        assert!(
            !attributes.iter().any(|attribute| attribute.contains(removed)),
            "`{removed}` is a removed feature: {attributes:?}"
        );
    }
    assert!(attributes.contains(&"#![cfg_attr(docsrs, feature(doc_cfg))]"), "{attributes:?}");
}

/// What docs.rs runs. Needs a nightly toolchain, and builds every dependency
/// once more: `cargo test -p supervisor-tests --test docs_rs -- --ignored`.
#[test]
#[ignore = "needs a nightly toolchain and a full documentation build"]
fn nightly_rustdoc_with_cfg_docsrs_succeeds() {
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("docs-rs");
    let output = Command::new("cargo")
        .args(["+nightly", "doc", "-p", "tokio-supervisor", "--all-features", "--no-deps"])
        .env("RUSTDOCFLAGS", "--cfg docsrs -Dwarnings")
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("RUSTC")
        .env_remove("RUSTDOC")
        .env_remove("CARGO")
        .current_dir(workspace_root())
        .output()
        .expect("cargo +nightly runs (is rustup installed?)");
    assert!(output.status.success(), "the docs.rs build fails:\n{}", String::from_utf8_lossy(&output.stderr));
    let page = std::fs::read_to_string(target_dir.join("doc/supervisor/struct.HttpEndpoint.html"))
        .expect("HttpEndpoint is documented");
    assert!(page.contains("Available on <strong>crate feature <code>http</code>"), "HttpEndpoint is not labelled");
}
