//! The packages' names on crates.io, the library names the code imports, and
//! the README's instructions that tie them together.
//!
//! `supervisor` on crates.io is an unrelated crate: a README that says
//! `supervisor = "0.1"` installs that one. The packages are published under
//! names of their own, while the libraries keep the names the code uses
//! (`use supervisor::...`, and `::supervisor::__private` in the macros'
//! output).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The runtime package's name on crates.io.
const RUNTIME: &str = "tokio-supervisor";
/// The macro package's name on crates.io.
const MACROS: &str = "tokio-supervisor-macros";
/// Names on crates.io that belong to other crates.
const TAKEN: &[&str] = &["supervisor"];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is inside the workspace").to_owned()
}

fn metadata() -> Value {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(workspace_root())
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON")
}

/// The package whose manifest is `<root>/<folder>/Cargo.toml`.
fn package_in<'a>(metadata: &'a Value, folder: &str) -> &'a Value {
    let manifest = workspace_root().join(folder).join("Cargo.toml");
    metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|package| Path::new(package["manifest_path"].as_str().unwrap_or_default()) == manifest)
        .unwrap_or_else(|| panic!("no package in {folder}/"))
}

/// The name of the package's library target, if it has one.
fn lib_name(package: &Value) -> Option<&str> {
    package["targets"].as_array()?.iter().find_map(|target| {
        let kinds = target["kind"].as_array()?;
        kinds.iter().any(|kind| kind == "lib" || kind == "proc-macro").then(|| target["name"].as_str())?
    })
}

fn publishable(package: &Value) -> bool {
    // `publish = false` is `[]` in the metadata; no `publish` key is `null`.
    package["publish"].as_array().is_none_or(|registries| !registries.is_empty())
}

#[test]
fn packages_have_names_of_their_own_and_libraries_keep_theirs() {
    let metadata = metadata();

    let runtime = package_in(&metadata, "supervisor");
    assert_eq!(runtime["name"], RUNTIME);
    assert_eq!(lib_name(runtime), Some("supervisor"), "`use supervisor::` and `::supervisor::__private` need this");
    assert!(publishable(runtime));

    let macros = package_in(&metadata, "supervisor-macros");
    assert_eq!(macros["name"], MACROS);
    assert_eq!(lib_name(macros), Some("supervisor_macros"));
    assert!(publishable(macros));

    for package in metadata["packages"].as_array().expect("packages") {
        let name = package["name"].as_str().expect("a name");
        assert!(
            !(publishable(package) && TAKEN.contains(&name)),
            "package `{name}` would be published under a name that belongs to another crate"
        );
    }

    // Every member that depends on the runtime package sees it as `supervisor`.
    for package in metadata["packages"].as_array().expect("packages") {
        for dependency in package["dependencies"].as_array().expect("dependencies") {
            if dependency["name"] == RUNTIME {
                let key = dependency["rename"].as_str().unwrap_or(RUNTIME);
                assert!(
                    key == "supervisor" || key == RUNTIME,
                    "{} depends on {RUNTIME} as `{key}`: the macros' output needs `::supervisor`",
                    package["name"]
                );
            }
        }
    }
}

#[test]
fn readme_tells_what_to_put_in_cargo_toml() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).expect("README.md");
    let toml_blocks: Vec<&str> =
        readme.split("```toml\n").skip(1).filter_map(|rest| rest.split("```").next()).collect();
    assert!(!toml_blocks.is_empty(), "the README shows the lines for Cargo.toml");
    let dependency_lines: Vec<&str> = toml_blocks
        .iter()
        .flat_map(|block| block.lines())
        .filter(|line| line.contains("supervisor") && line.contains('='))
        .collect();
    assert!(
        dependency_lines.iter().any(|line| line.trim_start().starts_with(&format!("{RUNTIME} = \"0.1\""))),
        "the README's Cargo.toml lines name the package {RUNTIME}: {dependency_lines:?}"
    );
    for line in &dependency_lines {
        let key = line.split('=').next().unwrap_or_default().trim();
        assert!(
            !TAKEN.contains(&key) || line.contains(&format!("package = \"{RUNTIME}\"")),
            "`{line}` installs another crate"
        );
    }
}

#[test]
fn readme_commands_name_existing_packages() {
    let metadata = metadata();
    let names: Vec<&str> =
        metadata["packages"].as_array().expect("packages").iter().filter_map(|p| p["name"].as_str()).collect();
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).expect("README.md");
    let mut seen = 0;
    for (at, flag) in readme.match_indices(" -p ") {
        let package = readme[at + flag.len()..].split_whitespace().next().unwrap_or_default();
        assert!(
            names.contains(&package),
            "the README runs `cargo ... -p {package}`, which is not a package: {names:?}"
        );
        seen += 1;
    }
    assert!(seen > 0, "the README's benchmark commands name their package");
}
