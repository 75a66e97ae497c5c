//! The layers hold: reads every `crate::` path in src/ and fails on an import the architecture
//! forbids (docs/architecture.md) or on a cycle between top-level modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The text without `//` comments (doc comments name modules in prose).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| l.find("//").map_or(l, |i| &l[..i]))
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident(s: &str) -> Option<String> {
    let s = s.trim_start();
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    (end > 0).then(|| s[..end].to_string())
}

/// The paths below the crate root a text names: `crate::a::b` gives "a/b", and each item of
/// `crate::{a::b, c}` its own path (two segments at most: enough to tell modules apart).
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let mut depth = 1;
            let mut end = 0;
            for (k, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    end = k;
                    break;
                }
            }
            let mut item = String::new();
            let mut d = 0;
            for c in group[..end].chars().chain(std::iter::once(',')) {
                match c {
                    '{' => d += 1,
                    '}' => d -= 1,
                    _ => {}
                }
                if c == ',' && d == 0 {
                    out.extend(two_segments(item.trim()));
                    item.clear();
                } else {
                    item.push(c);
                }
            }
        } else {
            out.extend(two_segments(after));
        }
        rest = after;
    }
    out
}

fn two_segments(path: &str) -> Option<String> {
    let first = ident(path)?;
    let second = path[first.len()..]
        .strip_prefix("::")
        .and_then(ident)
        .filter(|s| s.chars().next().is_some_and(|c| c.is_lowercase()));
    Some(match second {
        Some(s) => format!("{first}/{s}"),
        None => first,
    })
}

/// A file's place: its top-level module ("model", "family", …) and its path below src/.
fn place(file: &Path, src: &Path) -> (String, String) {
    let rel = file.strip_prefix(src).expect("under src/");
    let rel = rel.to_string_lossy().replace('\\', "/");
    let top = rel
        .split('/')
        .next()
        .expect("a path")
        .trim_end_matches(".rs");
    (top.to_string(), rel)
}

struct Graph {
    /// (importing file, its module, imported path) for every `crate::` path.
    imports: Vec<(String, String, String)>,
}

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![];
    sources(&src, &mut files);
    files.sort();
    let mut imports = vec![];
    for f in files {
        let (top, rel) = place(&f, &src);
        // The binary (main.rs and cli/) sits above the library and may use all of it.
        if rel == "main.rs" || rel == "lib.rs" || top == "cli" {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("a source file");
        for path in crate_paths(&code(&text)) {
            imports.push((rel.clone(), top.clone(), path));
        }
    }
    Graph { imports }
}

fn module_of(path: &str) -> &str {
    path.split('/').next().unwrap_or(path)
}

/// What each layer may not import: (importing module, forbidden modules, why).
const FORBIDDEN: &[(&str, &[&str], &str)] = &[
    (
        "model",
        &[
            "dynamics",
            "integrate",
            "problem",
            "family",
            "archive",
            "report",
            "measure",
        ],
        "a model knows nothing of time, solvers, problem files or archives",
    ),
    (
        "dynamics",
        &["integrate", "problem", "family", "archive", "report"],
        "a vector field knows models, not solvers or problem files",
    ),
    (
        "integrate",
        &[
            "model", "data", "limits", "problem", "family", "archive", "report",
        ],
        "an integrator knows vector fields, not networks",
    ),
    (
        "limits",
        &[
            "dynamics",
            "integrate",
            "problem",
            "family",
            "archive",
            "report",
        ],
        "a closed form needs no solver and no problem file",
    ),
    (
        "data",
        &[
            "dynamics",
            "integrate",
            "problem",
            "family",
            "archive",
            "report",
        ],
        "datasets are built from typed specs, below the problem layer",
    ),
    (
        "linalg",
        &[
            "model",
            "dynamics",
            "integrate",
            "limits",
            "data",
            "problem",
            "family",
            "archive",
            "report",
            "measure",
        ],
        "dense linear algebra is the bottom layer",
    ),
    (
        "measure",
        &[
            "dynamics",
            "integrate",
            "problem",
            "family",
            "archive",
            "report",
        ],
        "distances and fits take arrays",
    ),
    (
        "archive",
        &["problem", "family", "report", "dynamics"],
        "the archive writes and reads trajectories",
    ),
    (
        "report",
        &["problem", "family", "dynamics", "integrate"],
        "tables and plots only see archives",
    ),
    (
        "expr",
        &[
            "model",
            "dynamics",
            "integrate",
            "limits",
            "data",
            "problem",
            "family",
            "archive",
            "report",
            "measure",
            "linalg",
        ],
        "formulas are parsed and differentiated below every model that is stated as one",
    ),
    (
        "problem",
        &["family"],
        "problem parses and validates, then hands typed specs down",
    ),
];

#[test]
fn no_forbidden_imports() {
    let g = graph();
    assert!(
        g.imports.len() > 100,
        "the scan found too few imports: {}",
        g.imports.len()
    );
    let mut bad = vec![];
    for (file, top, path) in &g.imports {
        let target = module_of(path);
        if target == "cli" {
            bad.push(format!(
                "{file} imports crate::{path}: the library never imports the CLI"
            ));
        }
        for (layer, forbidden, why) in FORBIDDEN {
            if top == layer && forbidden.contains(&target) {
                bad.push(format!("{file} imports crate::{path}: {why}"));
            }
        }
        // Families are independent of each other: shared code goes down a layer.
        if top == "family" {
            let own = file.split('/').nth(1).unwrap_or("").trim_end_matches(".rs");
            if let Some(other) = path.strip_prefix("family/") {
                if own != "mod" && other != own && other != "mod" && is_family(other) {
                    bad.push(format!(
                        "{file} imports crate::{path}: families do not import each other"
                    ));
                }
            }
        }
        // The roles of a family's own files, named as the layers are.
        let role = Path::new(file)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("");
        if top == "family"
            && role == "model"
            && ["integrate", "dynamics", "problem"].contains(&target)
        {
            bad.push(format!(
                "{file} imports crate::{path}: a model knows nothing of time or problem files"
            ));
        }
        if top == "family" && role == "dynamics" && ["integrate", "problem"].contains(&target) {
            bad.push(format!(
                "{file} imports crate::{path}: a vector field knows nothing of solvers"
            ));
        }
    }
    assert!(bad.is_empty(), "forbidden imports:\n{}", bad.join("\n"));
}

fn is_family(name: &str) -> bool {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/family")
        .join(name);
    dir.is_dir()
}

#[test]
fn no_cycles_between_modules() {
    let g = graph();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, top, path) in &g.imports {
        let target = module_of(path).to_string();
        // `Error`/`Result` re-exports at the root are not modules.
        if &target != top && target.chars().next().is_some_and(|c| c.is_lowercase()) {
            edges.entry(top.clone()).or_default().insert(target);
        }
    }
    // Depth-first search; a back edge is a cycle.
    fn visit(
        m: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(m.to_string(), 1);
        stack.push(m.to_string());
        for n in edges.get(m).into_iter().flatten() {
            match state.get(n.as_str()).copied().unwrap_or(0) {
                1 => {
                    let start = stack.iter().position(|s| s == n).unwrap_or(0);
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(n.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(n, edges, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(m.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in edges.keys() {
        if state.get(m.as_str()).copied().unwrap_or(0) == 0 {
            if let Some(cycle) = visit(m, &edges, &mut state, &mut vec![]) {
                panic!("import cycle between modules: {}", cycle.join(" → "));
            }
        }
    }
}

/// The scanner itself, on text whose imports are known.
#[test]
fn scanner_reads_use_groups_and_paths() {
    let text = "use crate::archive::{A, B};\nuse crate::{model::two_layer::X, error::Result};\nfn f() { crate::integrate::ode::solve(); }\n// crate::cli::nothing\n";
    let got = crate_paths(&code(text));
    let want: BTreeSet<String> = ["archive", "model/two_layer", "error", "integrate/ode"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(got, want);
}

/// The CLI stays thin: argument parsing and printing.
#[test]
fn main_is_thin() {
    let main = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/main.rs");
    let lines = std::fs::read_to_string(main)
        .expect("src/main.rs")
        .lines()
        .count();
    assert!(
        lines <= 250,
        "src/main.rs has {lines} lines; at most 250 (the work belongs in the library)"
    );
}
