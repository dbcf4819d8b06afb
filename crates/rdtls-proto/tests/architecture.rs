//! The shape of the code, checked: no module cycle inside the core, no source file too long to
//! read, and the connection's methods in the connection module (handshakes are objects that
//! return actions, not `impl Connection` blocks).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The most lines a source file may have.
const MAX_LINES: usize = 700;

fn src(krate: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(krate).join("src")
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap_or_else(|e| panic!("reading {}: {e}", d.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The source without comments (links in docs are not dependencies) and without its unit tests
/// (`#[cfg(test)]` modules and `tests.rs` files), which may reach anywhere.
fn non_test_source(path: &Path) -> String {
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return String::new();
    }
    let text = fs::read_to_string(path).expect("source file");
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(")
            && t.contains("test")
            && lines.peek().is_some_and(|n| n.trim_start().starts_with("mod "))
        {
            // A test module: skip to its closing brace at the same indentation.
            let indent = &line[..line.len() - t.len()];
            let header = lines.next().unwrap_or_default();
            if header.trim_end().ends_with(';') {
                continue;
            }
            for l in lines.by_ref() {
                if l.starts_with(indent) && l[indent.len()..].starts_with('}') {
                    break;
                }
            }
            continue;
        }
        if !t.starts_with("//") {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// The crate's top-level modules each top-level module refers to through `crate::`.
fn module_graph(dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let top = |path: &Path| -> String {
        let rel = path.strip_prefix(dir).expect("under src");
        let first = rel.components().next().expect("a component").as_os_str().to_string_lossy().into_owned();
        first.trim_end_matches(".rs").to_owned()
    };
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in rust_files(dir) {
        let from = top(&path);
        if from == "lib" || from == "tests" {
            continue;
        }
        let text = non_test_source(&path);
        let deps = graph.entry(from.clone()).or_default();
        let mut rest = text.as_str();
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                group[..end].split(',').map(|n| n.trim().split("::").next().unwrap_or("")).collect()
            } else {
                vec![rest.split(|c: char| !(c.is_alphanumeric() || c == '_')).next().unwrap_or("")]
            };
            for name in names {
                if !name.is_empty() && name.chars().next().is_some_and(char::is_lowercase) && name != from {
                    deps.insert(name.to_owned());
                }
            }
        }
    }
    // Only edges to modules (not to items re-exported at the crate root).
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for deps in graph.values_mut() {
        deps.retain(|d| modules.contains(d));
    }
    graph
}

/// A cycle in `graph`, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_core_has_no_module_cycle() {
    let graph = module_graph(&src("rdtls-proto"));
    assert!(graph.contains_key("connection") && graph.contains_key("handshake"), "{graph:?}");
    assert!(graph["connection"].contains("handshake"), "the engine drives the handshake objects");
    if let Some(cycle) = find_cycle(&graph) {
        panic!("module cycle in rdtls-proto: {}", cycle.join(" -> "));
    }
}

#[test]
fn the_socket_layer_has_no_module_cycle() {
    let graph = module_graph(&src("rdtls"));
    assert!(graph["connection"].contains("driver") && graph["tokio"].contains("driver"), "{graph:?}");
    if let Some(cycle) = find_cycle(&graph) {
        panic!("module cycle in dtls: {}", cycle.join(" -> "));
    }
}

#[test]
fn the_cycle_check_finds_a_cycle() {
    let mut graph = BTreeMap::new();
    graph.insert("a".to_owned(), BTreeSet::from(["b".to_owned()]));
    graph.insert("b".to_owned(), BTreeSet::from(["c".to_owned()]));
    graph.insert("c".to_owned(), BTreeSet::from(["a".to_owned()]));
    assert_eq!(find_cycle(&graph), Some(vec!["a".into(), "b".into(), "c".into(), "a".into()]));
    graph.get_mut("c").unwrap().clear();
    assert_eq!(find_cycle(&graph), None);
}

#[test]
fn no_source_file_is_over_700_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut dirs = vec![root.join("fuzz/src")];
    for krate in fs::read_dir(root.join("crates")).expect("crates") {
        let krate = krate.expect("entry").path();
        dirs.extend(["src", "tests", "examples", "benches"].map(|d| krate.join(d)).into_iter().filter(|d| d.is_dir()));
    }
    let files: Vec<PathBuf> = dirs.iter().flat_map(|d| rust_files(d)).collect();
    assert!(files.len() > 100, "only {} files found: the walk is wrong", files.len());
    let long: Vec<String> = files
        .into_iter()
        .filter_map(|p| {
            let n = fs::read_to_string(&p).expect("source").lines().count();
            (n > MAX_LINES).then(|| format!("{} ({n} lines)", p.display()))
        })
        .collect();
    assert!(long.is_empty(), "split these: {long:?}");
}

#[test]
fn connection_methods_live_in_the_connection_module() {
    let dir = src("rdtls-proto");
    let outside: Vec<String> = rust_files(&dir)
        .into_iter()
        .filter(|p| !p.strip_prefix(&dir).expect("under src").starts_with("connection"))
        .filter(|p| {
            let source = non_test_source(p);
            ["impl Connection", "impl crate::connection::Connection"].iter().any(|pat| {
                // The type itself, not another whose name starts alike (`ConnectionIdGenerator`).
                source.match_indices(pat).any(|(at, _)| {
                    source[at + pat.len()..].chars().next().is_none_or(|c| !c.is_alphanumeric() && c != '_')
                })
            })
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(outside.is_empty(), "`impl Connection` outside src/connection/: {outside:?}");
}

/// Files under `dir` that drive the sans-IO core themselves (feed it datagrams, collect what it
/// sends).
fn drivers_of_the_core(dir: &Path) -> Vec<String> {
    rust_files(dir)
        .into_iter()
        .filter(|p| {
            let text = non_test_source(p);
            ["handle_datagram(", "poll_transmit(", "handle_timeout("].iter().any(|call| text.contains(call))
        })
        .map(|p| p.display().to_string())
        .collect()
}

#[test]
fn the_program_runs_on_the_socket_layer_not_on_the_core() {
    let cli = src("rdtls-cli");
    assert!(drivers_of_the_core(&cli).is_empty(), "{:?}", drivers_of_the_core(&cli));
    let uses_core_crate: Vec<_> = rust_files(&cli)
        .into_iter()
        .filter(|p| non_test_source(p).contains("rdtls_proto"))
        .map(|p| p.display().to_string())
        .collect();
    assert!(uses_core_crate.is_empty(), "the CLI uses the core crate directly: {uses_core_crate:?}");
    // The check itself sees a driver where there is one.
    assert!(!drivers_of_the_core(&src("rdtls")).is_empty());
}

#[test]
fn at_most_one_example_drives_the_core() {
    let examples = src("rdtls").join("../examples");
    let drivers = drivers_of_the_core(&examples);
    assert!(drivers.len() <= 1, "{drivers:?}");
}
