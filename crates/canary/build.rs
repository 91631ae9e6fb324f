//! Build script: records the git commit the binary is built from, for
//! `canary --version`. Outside a git checkout (a source tarball, a container
//! build without .git) it says "unknown", or `CANARY_COMMIT` if set; it never
//! fails the build.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CANARY_COMMIT");
    let commit = std::env::var("CANARY_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| git(&["rev-parse", "--short", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CANARY_COMMIT={}", commit.trim());
    for file in watched() {
        // Only files that exist: cargo reruns on every build for a missing one.
        if file.exists() {
            println!("cargo:rerun-if-changed={}", file.display());
        }
    }
}

/// A git command's output in this crate's directory, if git runs and succeeds.
fn git(args: &[&str]) -> Option<String> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")?;
    let out = Command::new("git").args(args).current_dir(dir).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}

/// The files whose change means another commit: HEAD (a checkout), the
/// branch's ref (a commit) and packed-refs. In a worktree HEAD sits in its
/// own git dir and the refs in the common one.
fn watched() -> Vec<PathBuf> {
    let (Some(git_dir), Some(common)) =
        (git(&["rev-parse", "--absolute-git-dir"]), git(&["rev-parse", "--git-common-dir"]))
    else {
        return Vec::new();
    };
    let git_dir = PathBuf::from(git_dir);
    // --git-common-dir may be relative to the directory git ran in.
    let common = absolute(&common);
    let mut files = vec![git_dir.join("HEAD"), common.join("packed-refs")];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        files.push(common.join(branch));
    }
    files
}

fn absolute(path: &str) -> PathBuf {
    let p = Path::new(path);
    match std::env::var_os("CARGO_MANIFEST_DIR") {
        Some(dir) if p.is_relative() => Path::new(&dir).join(p),
        _ => p.to_path_buf(),
    }
}
