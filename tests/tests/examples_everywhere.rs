//! Every public function of the runtime crate shows an example: a
//! `pub fn` or `pub async fn` whose doc comment has no code block fails
//! this test (the hidden `private.rs` excepted), so that a new method comes
//! with its example.

use std::fs;
use std::path::{Path, PathBuf};

fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .join("supervisor")
        .join("src")
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).expect("readable source directory") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The name of the function a line declares, if it is a `pub fn` or a
/// `pub async fn` (also `const` and `unsafe` ones).
fn public_fn(line: &str) -> Option<&str> {
    let mut rest = line.trim_start().strip_prefix("pub ")?;
    for qualifier in ["const ", "async ", "unsafe "] {
        rest = rest.strip_prefix(qualifier).unwrap_or(rest);
    }
    let rest = rest.strip_prefix("fn ")?;
    let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// Whether the doc comment above line `at` (past its attributes) has a
/// code block.
fn documented_with_code(lines: &[&str], at: usize) -> bool {
    for line in lines[..at].iter().rev() {
        let line = line.trim();
        if let Some(doc) = line.strip_prefix("///") {
            if doc.trim_start().starts_with("```") {
                return true;
            }
        } else if line.starts_with("#[") || line.starts_with(')') || line.starts_with(']') || line.ends_with(")]") {
            // An attribute, or the end of one over several lines.
        } else {
            return false;
        }
    }
    false
}

/// `file:line:name` of every public function without an example.
fn missing_examples() -> Vec<String> {
    let root = source_dir();
    let mut missing = Vec::new();
    for path in rust_files(&root) {
        if path.file_name().is_some_and(|name| name == "private.rs") {
            continue;
        }
        let text = fs::read_to_string(&path).expect("readable source file");
        let lines: Vec<&str> = text.lines().collect();
        for (index, line) in lines.iter().enumerate() {
            if let Some(name) = public_fn(line)
                && !documented_with_code(&lines, index)
            {
                let relative = path.strip_prefix(&root).unwrap_or(&path);
                missing.push(format!("{}:{}:{name}", relative.display(), index + 1));
            }
        }
    }
    missing
}

#[test]
fn every_public_function_has_an_example() {
    let missing = missing_examples();
    assert!(
        missing.is_empty(),
        "{} public functions have no code block in their doc comment (add `/// # Examples`):\n{}",
        missing.len(),
        missing.join("\n")
    );
}

#[test]
fn the_check_sees_what_it_should() {
    assert_eq!(public_fn("    pub async fn wait_ready(&self) -> Result<(), Error> {"), Some("wait_ready"));
    assert_eq!(public_fn("pub const fn new() -> Self {"), Some("new"));
    assert_eq!(public_fn("    pub(crate) fn hidden(&self) {"), None);
    assert_eq!(public_fn("    fn private(&self) {"), None);
    let with = [
        "    /// Does it.",
        "    ///",
        "    /// ```",
        "    /// x();",
        "    /// ```",
        "    #[must_use]",
        "    pub fn x() {}",
    ];
    assert!(documented_with_code(&with, 6));
    let without = ["    /// Does it.", "    #[must_use]", "    pub fn x() {}"];
    assert!(!documented_with_code(&without, 2));
    let undocumented = ["}", "", "pub fn y() {}"];
    assert!(!documented_with_code(&undocumented, 2));
    assert!(rust_files(&source_dir()).iter().any(|path| path.ends_with("handle.rs")));
}
