//! The layering of `src/`: data ← stages ← orchestration ← face.
//!
//! `src/lib.rs` declares each top-level module under a `// layer: NAME`
//! marker. Every file of `src/` belongs to one top-level module (`x.rs` and
//! everything under `x/`), and each `crate::…` (or, in `main.rs`,
//! `ferry::…`) path it names is an import of that module. This test fails
//! on an import of a higher layer, on an import circle between modules, on
//! clap or `cli` named outside the face, and on a README layout table that
//! does not match the markers.
//!
//! The scanner reads tokens, not syntax trees: comments, strings and char
//! literals are skipped so a doc link or a message cannot count as an import.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const LAYERS: [&str; 4] = ["data", "stages", "orchestration", "face"];

/// Top-level module → layer index, from the markers in lib.rs.
fn layers_from_lib(lib: &str) -> BTreeMap<String, usize> {
    let mut layer = None;
    let mut out = BTreeMap::new();
    for line in lib.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("// layer:") {
            let name = name.trim();
            layer = Some(LAYERS.iter().position(|l| *l == name).unwrap_or_else(|| panic!("unknown layer `{name}` in lib.rs")));
        } else if let Some(rest) = ["pub mod ", "pub(crate) mod ", "mod "].iter().find_map(|p| line.strip_prefix(p)) {
            let module = rest.trim_end_matches(';').trim().to_string();
            let layer = layer.unwrap_or_else(|| panic!("module `{module}` in lib.rs has no `// layer:` marker above it"));
            out.insert(module, layer);
        }
    }
    out
}

/// The source with comments, string and char literals blanked out.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == b'r' && (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#')) && !ident_before(b, i) {
            // Raw string r"…" or r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push('r');
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == b'"' && (0..hashes).all(|h| b.get(j + 1 + h) == Some(&b'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            i = j;
            out.push_str("\"\"");
        } else if c == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == b'\'' {
            // A char literal ('a', '\n', '\u{..}') or a lifetime ('a).
            if b.get(i + 1) == Some(&b'\\') {
                i += 2;
                while i < b.len() && b[i] != b'\'' {
                    i += 1;
                }
                i += 1;
                out.push_str("' '");
            } else if b.get(i + 2) == Some(&b'\'') {
                i += 3;
                out.push_str("' '");
            } else {
                // Lifetime, or a multi-byte char: skip the quote only.
                let ch = src[i + 1..].chars().next();
                if let Some(ch) = ch.filter(|ch| ch.len_utf8() > 1)
                    && b.get(i + 1 + ch.len_utf8()) == Some(&b'\'')
                {
                    i += 2 + ch.len_utf8();
                    out.push_str("' '");
                    continue;
                }
                out.push('\'');
                i += 1;
            }
        } else {
            let ch = src[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn ident_before(b: &[u8], i: usize) -> bool {
    i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')
}

fn tokens(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = code.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            let mut end = start + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if d.is_alphanumeric() || d == '_' {
                    end = j + d.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(code[start..end].to_string());
        } else if c == ':' && chars.peek().map(|&(_, d)| d) == Some(':') {
            chars.next();
            out.push("::".into());
        } else if !c.is_whitespace() {
            out.push(c.to_string());
        }
    }
    out
}

/// The top-level modules a file names through `root::` paths (`crate` in
/// the library, `ferry` in main.rs), grouped imports included.
fn imports(code: &str, root: &str) -> BTreeSet<String> {
    let t = tokens(code);
    let mut out = BTreeSet::new();
    let mut i = 0;
    while i + 2 < t.len() {
        if t[i] == root && t[i + 1] == "::" && (i == 0 || t[i - 1] != "::") {
            if t[i + 2] == "{" {
                // `crate::{a, b::{c, d}, e}`: the first ident of each item at depth 1.
                let mut depth = 0;
                let mut expect_item = true;
                for tok in &t[i + 2..] {
                    match tok.as_str() {
                        "{" => {
                            depth += 1;
                            if depth == 1 {
                                expect_item = true;
                            }
                        }
                        "}" => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        "," if depth == 1 => expect_item = true,
                        word if depth == 1 && expect_item => {
                            out.insert(word.to_string());
                            expect_item = false;
                        }
                        _ => {}
                    }
                }
            } else {
                out.insert(t[i + 2].clone());
            }
        }
        i += 1;
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// What the checker found wrong.
#[derive(Debug, Default)]
struct Findings {
    upward: Vec<String>,
    circles: Vec<Vec<String>>,
    clap_outside_face: Vec<String>,
}

/// Module → (file, the modules it imports), checked against `layers`.
fn check(layers: &BTreeMap<String, usize>, files: &[(String, String, String)]) -> Findings {
    let face = LAYERS.iter().position(|l| *l == "face").unwrap();
    let mut f = Findings::default();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, module, code) in files {
        let Some(&from) = layers.get(module) else { panic!("{file}: module `{module}` is not declared in lib.rs") };
        let root = if module == "main" { "ferry" } else { "crate" };
        for to in imports(code, root) {
            let Some(&to_layer) = layers.get(&to) else { continue };
            if to != *module {
                graph.entry(module.clone()).or_default().insert(to.clone());
            }
            if to_layer > from {
                f.upward.push(format!("{file}: {} module `{module}` imports {} module `{to}`", LAYERS[from], LAYERS[to_layer]));
            }
        }
        if from != face && tokens(code).iter().any(|t| t == "clap") {
            f.clap_outside_face.push(format!("{file}: names clap, but only the face ({}) may", "cli, cmd, main"));
        }
    }
    f.circles = circles(&graph);
    f
}

/// Strongly connected components of more than one module (Tarjan).
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        if let Some(edges) = s.graph.get(v) {
            for w in edges {
                let w = w.as_str();
                if !s.index.contains_key(w) {
                    visit(s, w);
                    let low = s.low[v].min(s.low[w]);
                    s.low.insert(v, low);
                } else if s.on_stack.contains(w) {
                    let low = s.low[v].min(s.index[w]);
                    s.low.insert(v, low);
                }
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every file of src/ but lib.rs, with its top-level module and its code.
fn source_files() -> Vec<(String, String, String)> {
    let src = src_dir();
    let mut paths = Vec::new();
    rust_files(&src, &mut paths);
    paths.sort();
    paths
        .into_iter()
        .filter(|p| p.file_name().unwrap() != "lib.rs" || p.parent().unwrap() != src)
        .map(|p| {
            let rel = p.strip_prefix(&src).unwrap();
            let first = rel.components().next().unwrap().as_os_str().to_str().unwrap();
            let module = first.trim_end_matches(".rs").to_string();
            let text = std::fs::read_to_string(&p).unwrap();
            (format!("src/{}", rel.display()), module, code_only(&text))
        })
        .collect()
}

fn layers() -> BTreeMap<String, usize> {
    let mut layers = layers_from_lib(&std::fs::read_to_string(src_dir().join("lib.rs")).unwrap());
    layers.insert("main".into(), LAYERS.iter().position(|l| *l == "face").unwrap());
    layers
}

#[test]
fn src_imports_only_its_own_layer_or_below() {
    let f = check(&layers(), &source_files());
    assert!(f.upward.is_empty(), "imports against the layering (see src/lib.rs):\n{}", f.upward.join("\n"));
}

#[test]
fn no_import_circle_joins_two_modules() {
    let f = check(&layers(), &source_files());
    assert!(f.circles.is_empty(), "import circles between modules: {:?}", f.circles);
}

#[test]
fn only_the_face_names_clap() {
    let f = check(&layers(), &source_files());
    assert!(f.clap_outside_face.is_empty(), "{}", f.clap_outside_face.join("\n"));
}

#[test]
fn every_module_is_in_lib_rs_under_a_layer() {
    let layers = layers();
    for (file, module, _) in source_files() {
        assert!(layers.contains_key(&module), "{file} belongs to `{module}`, which lib.rs does not declare under a layer");
    }
}

#[test]
fn readme_layout_matches_the_layer_markers() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = readme.split("## Layout").nth(1).expect("README.md has a ## Layout section");
    let mut documented = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let Some(layer) = cells.get(1).and_then(|c| LAYERS.iter().position(|l| l == c)) else { continue };
        for path in cells[2].split(',') {
            let path = path.trim().trim_matches('`');
            if let Some(name) = path.strip_prefix("src/") {
                let module = name.trim_end_matches('/').trim_end_matches(".rs");
                documented.insert(module.to_string(), layer);
            }
        }
    }
    let mut declared = layers();
    declared.remove("main");
    assert_eq!(documented, declared, "README's Layout table and the `// layer:` markers in src/lib.rs disagree");
}

// The checker itself: each finding it exists for, on a made-up tree.

fn fake_layers() -> BTreeMap<String, usize> {
    layers_from_lib("// layer: data\npub mod config;\n// layer: stages\nmod upload;\nmod deploy;\n// layer: face\npub mod cli;\n")
}

#[test]
fn the_checker_sees_an_upward_import_even_in_a_group() {
    let files = vec![("src/config.rs".into(), "config".into(), code_only("use crate::{event, upload::Plan};"))];
    let f = check(&fake_layers(), &files);
    assert_eq!(f.upward.len(), 1, "{f:?}");
    assert!(f.upward[0].contains("`upload`"), "{f:?}");
}

#[test]
fn the_checker_sees_a_circle_within_a_layer() {
    let files = vec![
        ("src/upload.rs".into(), "upload".into(), code_only("fn f() { crate::deploy::x(); }")),
        ("src/deploy.rs".into(), "deploy".into(), code_only("use crate::upload::Uploaded;")),
    ];
    assert_eq!(check(&fake_layers(), &files).circles, vec![vec!["deploy".to_string(), "upload".to_string()]]);
}

#[test]
fn the_checker_ignores_comments_strings_and_doc_links() {
    let code =
        code_only("//! see [`crate::cli`]\n/* crate::cli */ let s = \"crate::cli\"; let r = r#\"crate::cli\"#; let c = '\"';");
    let files = vec![("src/config.rs".into(), "config".into(), code)];
    let f = check(&fake_layers(), &files);
    assert!(f.upward.is_empty() && f.clap_outside_face.is_empty(), "{f:?}");
}

#[test]
fn the_checker_sees_clap_outside_the_face() {
    let files = vec![("src/upload.rs".into(), "upload".into(), code_only("#[derive(clap::ValueEnum)] enum E { A }"))];
    assert_eq!(check(&fake_layers(), &files).clap_outside_face.len(), 1);
}

// File level: two files of one module that import each other (a sibling
// circle such as bundle/cache.rs ↔ bundle/known.rs) are as tangled as two
// modules that do. A file and its own parent module (`super::Bundle` in
// bundle/cache.rs, `cache::Cache` in bundle.rs) are one unit, not a circle.

/// A file's module path: `src/bundle/cache.rs` → `[bundle, cache]`,
/// `src/x/mod.rs` → `[x]`.
fn module_path(file: &str) -> Vec<String> {
    let rel = file.strip_prefix("src/").unwrap_or(file).trim_end_matches(".rs");
    let mut parts: Vec<String> = rel.split('/').map(String::from).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

fn is_ident(t: &str) -> bool {
    t.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// Every path a file names from `crate::`, `super::` or `self::`, as
/// module paths from the crate root, groups expanded.
fn paths(code: &str, here: &[String]) -> Vec<Vec<String>> {
    let t = tokens(code);
    let mut out = Vec::new();
    let mut i = 0;
    while i < t.len() {
        let root = t[i].as_str();
        let rooted =
            matches!(root, "crate" | "super" | "self") && t.get(i + 1).is_some_and(|n| n == "::") && (i == 0 || t[i - 1] != "::");
        if !rooted {
            i += 1;
            continue;
        }
        let base = match root {
            "crate" => Vec::new(),
            "self" => here.to_vec(),
            _ => here[..here.len().saturating_sub(1)].to_vec(),
        };
        i = path_rest(&t, i + 2, base, &mut out).max(i + 1);
    }
    out
}

/// Reads the path after `prefix::` from `t[i]` (names, `super`, a
/// `{…}` group), pushes each whole path, and returns where it ended.
fn path_rest(t: &[String], mut i: usize, mut prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    loop {
        match t.get(i).map(String::as_str) {
            Some("{") => {
                i += 1;
                loop {
                    match t.get(i).map(String::as_str) {
                        Some("}") => return i + 1,
                        None => return i,
                        Some(",") => i += 1,
                        _ => i = path_rest(t, i, prefix.clone(), out).max(i + 1),
                    }
                }
            }
            Some("super") => {
                prefix.pop();
            }
            Some(w) if is_ident(w) => prefix.push(w.to_string()),
            _ => {
                out.push(prefix);
                return i;
            }
        }
        i += 1;
        if t.get(i).is_some_and(|n| n == "::") {
            i += 1;
        } else {
            out.push(prefix);
            return i;
        }
    }
}

/// The circles between files (each file named as `src/…`).
fn file_circles(files: &[(String, String, String)]) -> Vec<Vec<String>> {
    let lib: Vec<(Vec<String>, &String)> =
        files.iter().filter(|(_, module, _)| module != "main").map(|(file, _, _)| (module_path(file), file)).collect();
    let file_of = |path: &[String]| {
        (1..=path.len()).rev().find_map(|n| lib.iter().find(|(m, _)| m.as_slice() == &path[..n]).map(|(m, f)| (m, *f)))
    };
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, module, code) in files {
        if module == "main" {
            continue;
        }
        let here = module_path(file);
        for path in paths(code, &here) {
            let Some((there, to)) = file_of(&path) else { continue };
            // A file and its ancestors are one unit: a parent declares and
            // re-exports its children, a child uses its parent's types.
            let related = there.len() <= here.len() && here[..there.len()] == there[..]
                || here.len() <= there.len() && there[..here.len()] == here[..];
            if !related {
                graph.entry(file.clone()).or_default().insert(to.clone());
            }
        }
    }
    circles(&graph)
}

#[test]
fn no_import_circle_joins_two_files() {
    let circles = file_circles(&source_files());
    assert!(circles.is_empty(), "import circles between files of src/: {circles:?}");
}

#[test]
fn the_checker_sees_a_circle_between_two_files_of_one_module() {
    let files = vec![
        ("src/bundle.rs".into(), "bundle".into(), code_only("mod cache; mod known; pub use cache::Cache;")),
        ("src/bundle/cache.rs".into(), "bundle".into(), code_only("use super::known::{self, Sums}; use super::Bundle;")),
        ("src/bundle/known.rs".into(), "bundle".into(), code_only("fn f() { crate::bundle::cache::RACY; }")),
        ("src/upload.rs".into(), "upload".into(), code_only("use crate::bundle::{Bundle, cache::Cache};")),
    ];
    assert_eq!(file_circles(&files), vec![vec!["src/bundle/cache.rs".to_string(), "src/bundle/known.rs".to_string()]]);
    let untangled: Vec<_> = files.into_iter().filter(|(f, _, _)| f != "src/bundle/known.rs").collect();
    assert!(file_circles(&untangled).is_empty());
}
