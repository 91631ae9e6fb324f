//! ARCHITECTURE.md is the map of the code, and these tests keep it true: every
//! source file under `crates/*/src` is named in it exactly once, every file it
//! names exists, it stays short enough to read, and the modules of
//! `crates/canary/src` import each other only down the layers it draws.
//!
//! A file is named by its path from the repository root in backticks, such as
//! `crates/canary/src/live.rs`; `crates/x/src/{a,b/c}.rs` names
//! `crates/x/src/a.rs` and `crates/x/src/b/c.rs`.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Past this, the map stops being read in one sitting; the long accounts
/// belong in `docs/` and the measurements in BENCHMARKS.md.
const MAX_BYTES: usize = 15_360;

/// The line of ARCHITECTURE.md that gives the canary crate's layers.
const LAYERS_MARK: &str = "Layers, bottom first:";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn architecture() -> String {
    fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md at the repository root")
}

/// Every `.rs` file under `dir`, as a path relative to the repository root
/// with `/` between its parts.
fn rs_files(dir: &Path, out: &mut Vec<String>) {
    let mut entries: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            let rel = p.strip_prefix(root()).unwrap();
            let parts: Vec<_> =
                rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            out.push(parts.join("/"));
        }
    }
}

/// The source files of every crate: `crates/*/src/**/*.rs`.
fn source_files() -> Vec<String> {
    let mut out = Vec::new();
    let mut crates: Vec<_> =
        fs::read_dir(root().join("crates")).unwrap().map(|e| e.unwrap().path()).collect();
    crates.sort();
    for c in crates {
        let src = c.join("src");
        if src.is_dir() {
            rs_files(&src, &mut out);
        }
    }
    out
}

/// The `.rs` paths a text names: backtick spans on one line that start with
/// `crates/` and end with `.rs`, one `{a,b}` group expanded. A span that does
/// not parse is returned as an error naming it.
fn named_paths(text: &str) -> (Vec<String>, Vec<String>) {
    let mut named = Vec::new();
    let mut bad = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            continue;
        }
        let spans = line.split('`').skip(1).step_by(2);
        for span in spans {
            if !(span.starts_with("crates/") && span.ends_with(".rs")) {
                continue;
            }
            match (span.find('{'), span.find('}')) {
                (None, None) => named.push(span.to_string()),
                (Some(open), Some(close))
                    if open < close && span.matches('{').count() == 1 && span.matches('}').count() == 1 =>
                {
                    let (head, tail) = (&span[..open], &span[close + 1..]);
                    for item in span[open + 1..close].split(',') {
                        let item = item.trim();
                        if item.is_empty() {
                            bad.push(span.to_string());
                        } else {
                            named.push(format!("{head}{item}{tail}"));
                        }
                    }
                }
                _ => bad.push(span.to_string()),
            }
        }
    }
    (named, bad)
}

#[test]
fn every_source_file_is_named_once_in_architecture_md() {
    let text = architecture();
    let mut problems = Vec::new();

    if text.len() > MAX_BYTES {
        problems.push(format!(
            "ARCHITECTURE.md is {} bytes, over {MAX_BYTES}: move long accounts to docs/ and measurements to BENCHMARKS.md",
            text.len()
        ));
    }

    let (named, bad) = named_paths(&text);
    for span in bad {
        problems
            .push(format!("`{span}` cannot be read as paths: use one {{a,b}} group at most, no empty items"));
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for n in &named {
        *counts.entry(n).or_default() += 1;
    }

    for file in source_files() {
        if !counts.contains_key(file.as_str()) {
            problems.push(format!("{file} is not named: name it in ARCHITECTURE.md under its module"));
        }
    }
    for (name, count) in &counts {
        if *count > 1 {
            problems.push(format!(
                "{name} is named {count} times: keep it in one place only (its module's paragraph)"
            ));
        }
        if !root().join(name).is_file() {
            problems.push(format!(
                "{name} is named but does not exist: take it out of ARCHITECTURE.md or fix its path"
            ));
        }
    }

    assert!(problems.is_empty(), "ARCHITECTURE.md is out of date:\n  {}", problems.join("\n  "));
}

/// The top-level modules of `crates/canary/src`: its directories and its
/// `.rs` files but `lib.rs` and `main.rs`.
fn canary_modules() -> Vec<String> {
    let src = root().join("crates/canary/src");
    let mut out = Vec::new();
    for e in fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.is_dir() {
            out.push(name);
        } else if let Some(stem) = name.strip_suffix(".rs")
            && stem != "lib"
            && stem != "main"
        {
            out.push(stem.to_string());
        }
    }
    out.sort();
    out
}

/// A file's code as the build sees it outside tests: comment lines dropped,
/// a `#[cfg(test)] mod x;` line skipped, and everything from any other
/// `#[cfg(test)]` on left out.
fn code_outside_tests(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim();
        if t.starts_with("#[cfg(test)]") {
            while lines.peek().is_some_and(|l| l.trim().is_empty()) {
                lines.next();
            }
            match lines.peek() {
                Some(next) if next.trim().starts_with("mod ") && next.trim().ends_with(';') => {
                    lines.next();
                    continue;
                }
                _ => break,
            }
        }
        if t.starts_with("//") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The first path segments after each `crate::` in `code`: `crate::a::B`
/// gives `a`, `crate::{a, b::C}` gives `a` and `b`.
fn crate_uses(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut from = 0;
    while let Some(at) = code[from..].find("crate::") {
        let start = from + at;
        from = start + "crate::".len();
        if start > 0 && ident(bytes[start - 1]) {
            continue; // `my_crate::`, not ours
        }
        let rest = &code[from..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let mut item = String::new();
            let mut items = Vec::new();
            for ch in group.chars() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        items.push(std::mem::take(&mut item));
                        continue;
                    }
                    _ => {}
                }
                item.push(ch);
            }
            items.push(item);
            for it in items {
                let name: String =
                    it.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
        } else {
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

#[test]
fn canary_modules_import_only_down_the_layers() {
    let text = architecture();
    let line = text.lines().find(|l| l.starts_with(LAYERS_MARK)).unwrap_or_else(|| {
        panic!(
            "ARCHITECTURE.md has no line starting with {LAYERS_MARK:?}: give the layers there, bottom first"
        )
    });
    let layers: Vec<String> = line[LAYERS_MARK.len()..]
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();

    // The drawing above the line, top layer first, must say the same.
    let drawn: Vec<&str> = text
        .split("## Layers of")
        .nth(1)
        .and_then(|after| after.split("```").nth(1))
        .map(|block| block.lines().filter_map(|l| l.split_whitespace().next()).collect())
        .unwrap_or_default();
    let mut bottom_first: Vec<&str> = drawn.clone();
    bottom_first.reverse();
    let listed: Vec<&str> = layers.iter().map(String::as_str).collect();
    assert_eq!(
        bottom_first, listed,
        "the drawing under \"## Layers of\" (top first) and the {LAYERS_MARK:?} line disagree: make them say the same"
    );

    let modules = canary_modules();
    let mut problems = Vec::new();
    for m in &modules {
        if !layers.contains(m) {
            problems.push(format!("module `{m}` is not in the layers: add it to ARCHITECTURE.md's {LAYERS_MARK:?} line and the drawing, above every module it imports"));
        }
    }
    for m in &layers {
        if !modules.contains(m) {
            problems.push(format!(
                "`{m}` is in the layers but is no module of crates/canary/src: take it out of the line"
            ));
        }
    }

    let src = root().join("crates/canary/src");
    for (level, m) in layers.iter().enumerate() {
        let mut files = Vec::new();
        let dir = src.join(m);
        if dir.is_dir() {
            rs_files(&dir, &mut files);
        } else if src.join(format!("{m}.rs")).is_file() {
            files.push(format!("crates/canary/src/{m}.rs"));
        }
        for file in files {
            if file.ends_with("/tests.rs") {
                continue; // a test module: tests may reach anywhere
            }
            let code = code_outside_tests(&fs::read_to_string(root().join(&file)).unwrap());
            let mut seen = Vec::new();
            for used in crate_uses(&code) {
                let Some(up) = layers.iter().position(|l| *l == used) else { continue };
                if up > level && !seen.contains(&used) {
                    problems.push(format!(
                        "{file} uses `crate::{used}`, a layer above `{m}`: move that code down, or move `{used}` below `{m}` in ARCHITECTURE.md's layers if that is the truth"
                    ));
                    seen.push(used);
                }
            }
        }
    }

    assert!(problems.is_empty(), "the canary crate's layers are broken:\n  {}", problems.join("\n  "));
}

#[test]
fn the_path_reader_expands_one_group() {
    let (named, bad) = named_paths(
        "x `crates/a/src/{b,c/d}.rs` and `crates/a/src/e.rs`, `dir/{a}.rs`, `crates/a/src/{x,}.rs`",
    );
    assert_eq!(named, ["crates/a/src/b.rs", "crates/a/src/c/d.rs", "crates/a/src/e.rs", "crates/a/src/x.rs"]);
    assert_eq!(bad, ["crates/a/src/{x,}.rs"]);
}

#[test]
fn the_use_reader_sees_groups_and_skips_tests() {
    let code = code_outside_tests(
        "use crate::{config, server::{A, B}};\n// use crate::cli;\nuse my_crate::x;\n#[cfg(test)]\nmod tests;\nuse crate::live;\n#[cfg(test)]\nmod t {\n use crate::admin;\n}\n",
    );
    assert_eq!(crate_uses(&code), ["config", "server", "live"]);
}
