//! The house's layering, checked on the source: every top-level module of the
//! service library uses only modules of its own layer or below, no two modules
//! use each other (directly or around a circle), and the tools of the binary
//! (`src/cmd/`) stay out of the library. docs/architecture.md draws the same
//! layers; `scripts/check-layers` runs this test alone.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The library's layers, top first. A module may use its own layer and those
/// below it, never one above.
const LAYERS: &[&[&str]] = &[
    // serve, settings, HTTP listener, auth/guard/audit layers
    &["server"],
    // one file per gRPC service, proto <-> domain
    &["api"],
    // state, persistence, delivery, callers
    &["calibrator", "store", "webhooks", "auth"],
    // pure: numbers and rules (time and ids live in domain)
    &["calibration", "domain"],
    // leaves every layer may use
    &["error", "metrics", "memory", "telemetry", "pauses", "proto"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without `//` comments (doc links name modules in prose).
fn code_of(text: &str) -> String {
    text.lines().map(|line| line.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

/// Top-level modules a piece of code names through `crate::` (or `$crate::`),
/// including every name of a `use crate::{a, b::c}` group.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let ident = |s: &str| s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level names of the group: after `{` and after each `,` at depth 0.
            let mut depth = 0;
            let mut start = true;
            for (i, c) in group.char_indices() {
                if start && !c.is_whitespace() {
                    let name = ident(&group[i..]);
                    if !name.is_empty() {
                        found.insert(name);
                    }
                    start = false;
                }
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

/// Top-level module → the top-level modules it uses.
fn library_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(src).expect("under src");
        let first = relative.components().next().expect("a component").as_os_str().to_string_lossy().to_string();
        let module = first.trim_end_matches(".rs").to_string();
        if matches!(module.as_str(), "lib" | "main" | "cmd") {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(&file).expect("read"));
        let uses = graph.entry(module.clone()).or_default();
        for used in crate_paths(&code) {
            if used != module && used != "self" {
                uses.insert(used);
            }
        }
    }
    graph
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn every_library_module_has_a_layer() {
    let graph = library_graph(&src_dir());
    let unplaced: Vec<&String> = graph.keys().filter(|m| layer_of(m).is_none()).collect();
    assert!(unplaced.is_empty(), "modules without a layer (add them to LAYERS and docs/architecture.md): {unplaced:?}");
}

#[test]
fn modules_use_only_their_layer_and_those_below() {
    let graph = library_graph(&src_dir());
    let mut upward = Vec::new();
    for (module, uses) in &graph {
        let Some(own) = layer_of(module) else { continue };
        for used in uses {
            match layer_of(used) {
                Some(layer) if layer >= own => {}
                Some(_) => upward.push(format!("{module} -> {used} (a layer above)")),
                None => upward.push(format!("{module} -> {used} (not a library module)")),
            }
        }
    }
    assert!(upward.is_empty(), "uses against the layering:\n{}", upward.join("\n"));
}

#[test]
fn no_two_modules_use_each_other_even_around_a_circle() {
    let graph = library_graph(&src_dir());
    // Depth-first search with colours; a grey node met again closes a circle.
    fn visit<'a>(
        node: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<&'a str, u8>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match state.get(node) {
            Some(1) => {
                let from = path.iter().position(|n| *n == node).unwrap_or(0);
                let mut circle: Vec<String> = path[from..].iter().map(|s| s.to_string()).collect();
                circle.push(node.to_string());
                return Some(circle);
            }
            Some(2) => return None,
            _ => {}
        }
        state.insert(node, 1);
        path.push(node);
        for next in graph.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, state, path) {
                return Some(circle);
            }
        }
        path.pop();
        state.insert(node, 2);
        None
    }
    let mut state = BTreeMap::new();
    for module in graph.keys() {
        let mut path = Vec::new();
        if let Some(circle) = visit(module, &graph, &mut state, &mut path) {
            panic!("a circle between top-level modules: {}", circle.join(" -> "));
        }
    }
}

#[test]
fn the_tools_stay_out_of_the_library() {
    let src = src_dir();
    let lib = code_of(&std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs"));
    assert!(!lib.contains("mod cmd"), "src/cmd/ belongs to the binary, not the library");
    let graph = library_graph(&src);
    let users: Vec<&String> = graph.iter().filter(|(_, uses)| uses.contains("cmd")).map(|(m, _)| m).collect();
    assert!(users.is_empty(), "library modules that use the binary's tools: {users:?}");
}

#[test]
fn the_checker_reads_use_groups_and_ignores_comments() {
    let code = code_of(
        "use crate::{api::x, store::{A, B}, domain};\n// crate::server in prose\nlet y = $crate::auth::caller();",
    );
    let found: Vec<String> = crate_paths(&code).into_iter().collect();
    assert_eq!(found, ["api", "auth", "domain", "store"]);
}
