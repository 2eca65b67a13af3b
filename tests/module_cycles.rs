//! No module cycles in the library crate: data flows one way (config →
//! clients → snapshot → metrics → HTTP), and a cycle between two modules
//! means neither can be read, tested or moved without the other.
//!
//! How: a module is a file or a directory of src/ (`a/b.rs` and `a/b/mod.rs`
//! are `a::b`); module A depends on module B when A's code (outside its
//! `#[cfg(test)] mod tests`, comments and string literals) names a path into
//! B: `crate::b::…`, `super::b::…`, `self::b::…`, or a path starting with a
//! name a `use` bound to B. The deepest module a path reaches is the one it
//! depends on (`crate::metrics::Family` depends on `metrics`, whatever
//! `metrics` re-exports). A module and its own ancestors are one room (the
//! parent declares its children and re-exports them, the children use the
//! room's shared types): their edges are not counted. Any strongly connected
//! set of modules left is a cycle, reported as a path with the line behind
//! each step.
//!
//! Why a test over the source text rather than `cargo modules dependencies
//! --lib --acyclic` (cargo-modules): it needs no tool installed in
//! scripts/install-test-deps.sh (cargo-modules builds rust-analyzer's crates:
//! minutes of CI on 2 cores, and a version tied to the toolchain), it runs
//! in milliseconds inside `cargo test` (so `make test` runs it), it can hold
//! a temporary allowlist, and it prints the cycle with the lines that make
//! it. What it cannot see: paths produced by macros and names reached only
//! through a glob import (`use crate::x::*` counts as a dependency on `x`,
//! not on what `x` re-exports); neither is used across rooms in src/ today.
//! `SHOW_MODULE_GRAPH=1 cargo test --test module_cycles` prints every
//! dependency it found.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

/// Cycles accepted while they are being taken apart, each a path of
/// modules; the dependency from its last module back to its first is not
/// counted while it is listed. Empty, and it should stay so: an entry needs a
/// reason beside it, and the test fails on an entry that is no longer a
/// dependency, so a stale one cannot linger.
const ALLOWED_CYCLES: &[&[&str]] = &[];

type Module = String;

/// Where a dependency is written: file, line, and the line's text.
#[derive(Debug, Clone)]
struct Evidence {
    file: String,
    line: usize,
    text: String,
}

/// Module → the modules it depends on, with the first place it does.
type Graph = BTreeMap<Module, BTreeMap<Module, Evidence>>;

/// `a/b.rs` and `a/b/mod.rs` → `a::b`; `lib.rs` → the root, "".
fn module_of(rel: &Path) -> Module {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts.join("::")
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file with comments, string and char literals blanked
/// (newlines kept, so line numbers stay right) and its `#[cfg(test)] mod`
/// removed.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let blank = |s: &[u8], out: &mut String| {
        for &c in s {
            out.push(if c == b'\n' { '\n' } else { ' ' });
        }
    };
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            let end = rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
            blank(&rest[..end], &mut out);
            i += end;
        } else if rest.starts_with(b"/*") {
            let (mut depth, mut j) = (0, 0);
            while j < rest.len() {
                if rest[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if rest[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&rest[..j], &mut out);
            i += j;
        } else if (rest.starts_with(b"r\"") || rest.starts_with(b"r#"))
            && (i == 0
                || b[i - 1] == b'b'
                || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
        {
            let hashes = rest[1..].iter().take_while(|&&c| c == b'#').count();
            if rest.get(1 + hashes) != Some(&b'"') {
                out.push(rest[0] as char);
                i += 1;
                continue;
            }
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            let start = 2 + hashes;
            let end = rest[start..]
                .windows(close.len())
                .position(|w| w == close.as_slice())
                .map_or(rest.len(), |p| start + p + close.len());
            blank(&rest[..end], &mut out);
            i += end;
        } else if rest[0] == b'"' {
            let mut j = 1;
            while j < rest.len() && rest[j] != b'"' {
                j += if rest[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(rest.len());
            blank(&rest[..end], &mut out);
            i += end;
        } else if rest[0] == b'\'' {
            // A char literal ('x', '\n', '\u{1F600}'), or a lifetime ('a).
            let len = if rest.get(1) == Some(&b'\\') {
                rest[2..].iter().position(|&c| c == b'\'').map(|p| p + 3)
            } else {
                src[i + 1..]
                    .chars()
                    .next()
                    .map(char::len_utf8)
                    .filter(|n| rest.get(1 + n) == Some(&b'\''))
                    .map(|n| n + 2)
            };
            match len {
                Some(n) => {
                    blank(&rest[..n], &mut out);
                    i += n;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            let ch = src[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    cut_test_module(&out)
}

/// `code` without the block of a `#[cfg(test)] mod name { … }`.
fn cut_test_module(code: &str) -> String {
    let Some(at) = code.find("#[cfg(test)]") else {
        return code.to_string();
    };
    let after = &code[at + "#[cfg(test)]".len()..];
    let trimmed = after.trim_start();
    if !trimmed.starts_with("mod ") && !trimmed.starts_with("pub mod ") {
        return code.to_string();
    }
    let Some(open) = after.find('{') else {
        return code.to_string();
    };
    let mut depth = 0;
    let mut end = after.len();
    for (k, c) in after[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    end = open + k + 1;
                    break;
                }
            }
            _ => {}
        }
    }
    let removed = &code[at..at + "#[cfg(test)]".len() + end];
    let newlines = "\n".repeat(removed.matches('\n').count());
    format!("{}{newlines}{}", &code[..at], &code[at + removed.len()..])
}

/// The use trees of `use …;` items, expanded into whole paths
/// (`use a::{b, c::{d as e}}` → `a::b`, `a::c::d as e`), each with the
/// byte offset of its `use`.
fn use_paths(code: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut search = 0;
    while let Some(p) = code[search..].find("use ") {
        let at = search + p;
        search = at + 4;
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let Some(semi) = code[at..].find(';') else {
            break;
        };
        let tree = code[at + 4..at + semi]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        expand("", &tree, &mut |p| out.push((at, p)));
    }
    out
}

fn expand(prefix: &str, tree: &str, f: &mut dyn FnMut(String)) {
    let tree = tree.trim().trim_start_matches("::");
    match tree.find('{') {
        None => {
            let p = tree.trim();
            if !p.is_empty() {
                f(format!("{prefix}{p}"));
            }
        }
        Some(open) => {
            let head = format!("{prefix}{}", tree[..open].trim());
            let inner = tree[open + 1..].trim_end().trim_end_matches('}');
            let mut depth = 0;
            let mut start = 0;
            for (k, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand(&head, &inner[start..k], f);
                        start = k + 1;
                    }
                    _ => {}
                }
            }
            expand(&head, &inner[start..], f);
        }
    }
}

/// The deepest module of `modules` that `path` (segments) reaches from
/// module `here`, if it starts at the crate root, `self` or `super`.
fn resolve(path: &[&str], here: &str, modules: &BTreeSet<Module>) -> Option<Module> {
    let mut at: Vec<&str> = if here.is_empty() {
        Vec::new()
    } else {
        here.split("::").collect()
    };
    let mut segs = path.iter().copied().peekable();
    match segs.peek() {
        Some(&"crate") => {
            at.clear();
            segs.next();
        }
        Some(&"self") => {
            segs.next();
        }
        Some(&"super") => {
            while segs.peek() == Some(&"super") {
                at.pop()?;
                segs.next();
            }
        }
        _ => return None,
    }
    for s in segs {
        at.push(s);
        if !modules.contains(&at.join("::")) {
            at.pop();
            break;
        }
    }
    Some(at.join("::"))
}

/// Whether `a` is `b` or an ancestor of it (the root is everyone's).
fn is_ancestor(a: &str, b: &str) -> bool {
    a.is_empty() || a == b || b.starts_with(&format!("{a}::"))
}

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    // The library crate: lib.rs and what hangs below it; main.rs and
    // src/bin/ are the binary.
    files.retain(|f| {
        let rel = f.strip_prefix(&src).unwrap();
        rel != Path::new("main.rs") && !rel.starts_with("bin")
    });
    let modules: BTreeSet<Module> = files
        .iter()
        .map(|f| module_of(f.strip_prefix(&src).unwrap()))
        .collect();
    let mut g = Graph::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let here = module_of(rel);
        let text = std::fs::read_to_string(f).unwrap();
        let code = code_only(&text);
        let line_of = |offset: usize| code[..offset].matches('\n').count() + 1;
        let mut add = |to: Module, offset: usize| {
            if is_ancestor(&to, &here) || is_ancestor(&here, &to) {
                return;
            }
            let line = line_of(offset);
            g.entry(here.clone())
                .or_default()
                .entry(to)
                .or_insert(Evidence {
                    file: format!("src/{}", rel.display()),
                    line,
                    text: text.lines().nth(line - 1).unwrap_or("").trim().to_string(),
                });
        };
        // Names a `use` binds to a module: paths starting with them count.
        let mut aliases: BTreeMap<String, Module> = BTreeMap::new();
        for (offset, path) in use_paths(&code) {
            let (path, alias) = match path.split_once(" as ") {
                Some((p, a)) => (p.trim().to_string(), Some(a.trim().to_string())),
                None => (path, None),
            };
            let segs: Vec<&str> = path.split("::").map(str::trim).collect();
            let Some(m) = resolve(&segs, &here, &modules) else {
                continue;
            };
            let last = *segs.last().unwrap_or(&"");
            let target = if last == "self" {
                segs.get(segs.len().wrapping_sub(2)).copied()
            } else {
                Some(last)
            };
            if target.is_some_and(|t| m == t || m.ends_with(&format!("::{t}"))) {
                let name = alias.unwrap_or_else(|| target.unwrap_or_default().to_string());
                aliases.insert(name, m.clone());
            }
            add(m, offset);
        }
        // Every other path: `crate::…`, `super::…`, `self::…`, `alias::…`.
        let bytes = code.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let c = bytes[i];
            let starts_ident = (c.is_ascii_alphabetic() || c == b'_')
                && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'));
            if !starts_ident {
                i += 1;
                continue;
            }
            let mut j = i;
            while j < bytes.len()
                && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_' || bytes[j] == b':')
            {
                j += 1;
            }
            let path = code[i..j].trim_end_matches(':');
            let segs: Vec<&str> = path.split("::").collect();
            if segs.len() > 1 {
                let m = match aliases.get(segs[0]) {
                    Some(base) => {
                        let mut full: Vec<&str> = vec!["crate"];
                        full.extend(base.split("::"));
                        full.extend(&segs[1..]);
                        resolve(&full, &here, &modules)
                    }
                    None => resolve(&segs, &here, &modules),
                };
                if let Some(m) = m {
                    add(m, i);
                }
            }
            i = j.max(i + 1);
        }
    }
    g
}

/// Strongly connected sets of more than one module (Tarjan).
fn knots(g: &Graph) -> Vec<Vec<Module>> {
    struct T<'a> {
        g: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<Vec<Module>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        let n = t.index.len();
        t.index.insert(v, n);
        t.low.insert(v, n);
        t.stack.push(v);
        t.on.insert(v);
        for w in t.g.get(v).into_iter().flat_map(|e| e.keys()) {
            let w = w.as_str();
            if !t.index.contains_key(w) {
                visit(t, w);
                let l = t.low[w].min(t.low[v]);
                t.low.insert(v, l);
            } else if t.on.contains(w) {
                let l = t.index[w].min(t.low[v]);
                t.low.insert(v, l);
            }
        }
        if t.low[v] == t.index[v] {
            let mut set = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                set.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if set.len() > 1 {
                set.sort();
                t.out.push(set);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out.sort();
    t.out
}

/// A shortest cycle through `from` within `set`: `from`, …, back to `from`.
fn cycle_through(g: &Graph, set: &[Module], from: &str) -> Vec<Module> {
    let mut prev: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([from]);
    while let Some(v) = queue.pop_front() {
        for w in g.get(v).into_iter().flat_map(|e| e.keys()) {
            if !set.contains(w) {
                continue;
            }
            if w == from {
                let mut path = vec![from.to_string()];
                let mut at = v;
                while at != from {
                    path.push(at.to_string());
                    at = prev[at];
                }
                let n = path.len();
                path[1..n].reverse();
                path.push(from.to_string());
                return path;
            }
            if !prev.contains_key(w.as_str()) {
                prev.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    vec![from.to_string()]
}

fn describe(g: &Graph, set: &[Module]) -> String {
    let path = cycle_through(g, set, &set[0]);
    let mut s = format!("  {}", path.join(" -> "));
    if set.len() + 1 > path.len() {
        s.push_str(&format!(" (one knot with {})", set.join(", ")));
    }
    for w in path.windows(2) {
        let e = &g[&w[0]][&w[1]];
        s.push_str(&format!(
            "\n    {} -> {}: {}:{}: {}",
            w[0], w[1], e.file, e.line, e.text
        ));
    }
    s
}

#[test]
fn no_module_cycles_in_the_library() {
    let mut g = graph();
    // A reader that lost its way would find no cycle in an empty graph.
    assert!(
        g.len() > 20 && g["metrics::live"].contains_key("metrics::catalog"),
        "the dependency graph missed known modules: {:?}",
        g.keys().collect::<Vec<_>>()
    );
    let mut stale = Vec::new();
    for cycle in ALLOWED_CYCLES {
        let (last, first) = (cycle[cycle.len() - 1], cycle[0]);
        let edges_exist = cycle
            .iter()
            .zip(cycle.iter().cycle().skip(1))
            .all(|(a, b)| g.get(*a).is_some_and(|e| e.contains_key(*b)));
        if !edges_exist {
            stale.push(cycle.join(" -> "));
        }
        if let Some(e) = g.get_mut(last) {
            e.remove(first);
        }
    }
    let found: Vec<String> = knots(&g).iter().map(|set| describe(&g, set)).collect();
    if std::env::var_os("SHOW_MODULE_GRAPH").is_some() {
        for (a, es) in &g {
            for (b, e) in es {
                eprintln!("{a} -> {b}  ({}:{})", e.file, e.line);
            }
        }
    }
    assert!(
        found.is_empty(),
        "module cycles in src/ (module = file or directory; each step with the line that \
         makes it):\n{}",
        found.join("\n")
    );
    assert!(
        stale.is_empty(),
        "ALLOWED_CYCLES lists cycles that are gone: remove {stale:?}"
    );
}

#[test]
fn the_checker_reads_paths_and_finds_cycles() {
    let code = code_only(
        "use crate::a::{b::{self, C}, d as e};\n\
         // use crate::x;\n\
         let s = \"crate::y::z\"; let c = '{'; fn f<'a>() {}\n\
         #[cfg(test)]\nmod tests { use crate::w; }\n",
    );
    assert!(!code.contains("crate::x") && !code.contains("crate::y"));
    assert!(!code.contains("crate::w"));
    assert_eq!(code.lines().count(), 5, "line numbers kept");
    let paths: Vec<String> = use_paths(&code).into_iter().map(|(_, p)| p).collect();
    assert_eq!(
        paths,
        ["crate::a::b::self", "crate::a::b::C", "crate::a::d as e"]
    );
    let modules: BTreeSet<Module> = ["a", "a::b", "c", "c::d"].map(String::from).into();
    assert_eq!(
        resolve(&["super", "b", "X"], "a::q", &modules).as_deref(),
        Some("a::b")
    );
    assert_eq!(
        resolve(&["crate", "c", "d", "f"], "a", &modules).as_deref(),
        Some("c::d")
    );
    assert_eq!(resolve(&["std", "io"], "a", &modules), None);
    assert_eq!(module_of(Path::new("a/b/mod.rs")), "a::b");
    assert_eq!(module_of(Path::new("lib.rs")), "");
    let ev = || Evidence {
        file: "src/x.rs".into(),
        line: 1,
        text: "use".into(),
    };
    let mut g = Graph::new();
    for (a, b) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        g.entry(a.into()).or_default().insert(b.into(), ev());
    }
    let k = knots(&g);
    assert_eq!(k, vec![vec!["a", "b", "c"]]);
    assert_eq!(cycle_through(&g, &k[0], "a"), ["a", "b", "c", "a"]);
    assert!(describe(&g, &k[0]).contains("a -> b -> c -> a"));
}
