//! Dependencies point one way, and no two files import each other, directly or round a loop.
//!
//! The check reads every `.rs` file under `src/` as text (no compiler involved) and collects the
//! modules each file names. A file is a node named by its module path: `src/lib.rs` is `crate`,
//! `src/engine.rs` (or `src/engine/mod.rs`) is `engine`, `src/engine/core.rs` is `engine::core`, and
//! `src/main.rs`, a crate of its own, is `main`.
//!
//! **What counts as naming a module.** Comments, string and character literals are ignored. A
//! path counts when it starts with `crate::` (`$crate::`, and `crbot::` in `main.rs`), `super::`
//! or `self::` (resolved from the inline `mod` block it sits in), or with a name that the file
//! bound to a module: a `use` that ends at a module file (`use crate::doctor::{self, …}`, `use
//! crate::engine as e`) or one of the file's own child module files. Such bindings hold for the
//! whole file. `use` trees are expanded (`use crate::{a::X, b::{self, Y}}` names `a` and `b`), and a
//! glob names the module it opens. Paths that start anywhere else (`std`, other crates, local
//! items) are not ours. Every such reference is kept with its line.
//!
//! **Which file a path lands in.** A path goes to the longest prefix of it that is a module *file*:
//! `crate::engine::core::Core::restore` lands in `engine::core`; `crate::cli::exit::OK` lands in
//! `cli`, because `exit` is an inline `mod` inside `src/cli.rs`. Inline modules are their file.
//!
//! **Edges.** A reference from file A to another file B is an edge A → B, with one exception: B is
//! one of A's own direct child files (`mod child;` in A, and A using `child::…`). A parent owns its
//! children, declares them and re-exports their items; that is containment, not a dependency, and
//! counting it would make every child that reads its parent (`super::X`) a "cycle". Everything else
//! is an edge: a child reading its parent, siblings, cousins, and a grandparent reaching past its
//! child into a grandchild.
//!
//! **(a) No cycles.** No chain of edges A → B → … → A. Every strongly connected group of files is
//! reported with each edge inside it (file and line). `ALLOWED_CYCLES` lists the only exceptions (none today; an entry must name its reason).
//!
//! **(b) No upward imports.** `LAYERS` puts every top-level module on a layer; an edge whose target's
//! top-level module sits on a higher layer than its source's is reported with file and line. Edges
//! within one layer are allowed (cycles are still caught by (a)). A new top-level module that is not
//! in the table fails the test until it is placed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Lowest first. A module may import its own layer and the layers below, never one above.
const LAYERS: &[&[&str]] = &[
    // Values with no I/O, and the small leaf utilities everything may use.
    &["domain", "secret", "failpoint"],
    // Pure computations over domain values.
    &["portfolio", "risk"],
    // I/O parts: they take their settings as parameters and never read the configuration.
    &["exchange", "journal", "vault", "secrets", "alerts"],
    // Reading the configuration (files, environment) and logging set up from it.
    &["config", "logging"],
    // The one owner of mutable state; the doctor's checks (pure, over facts the command gathers).
    &["engine", "doctor"],
    // The engine's clients: the screen, the commands, the control API.
    &["ui", "cli", "api"],
    // Wiring: the console (terminal + engine + screen), `crbot serve` (engine + API), the screen
    // attached to an engine in another process (screen + the API's stream), the binary,
    // the library root that only declares the modules, and the fuzz targets' entry points.
    &["console", "serve", "attach", "main", "crate", "fuzzing"],
];

/// Known cycles still to be removed; each entry is the exact set of files of one cycle. An
/// entry that matches no cycle fails the test, and a cycle with any other member set is never
/// allowed: the list can only shrink.
const ALLOWED_CYCLES: &[&[&str]] = &[];

/// One place where a file names a module file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Reference {
    line: usize,
    /// The path as written, after `use` trees are expanded (`crate::a::b`).
    path: String,
    /// The module file it lands in.
    target: String,
}

/// `src/` as module path → file.
fn module_files(src: &Path) -> BTreeMap<String, PathBuf> {
    let mut files = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.insert(module_name(src, &path), path);
            }
        }
    }
    files
}

fn module_name(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    match parts.as_slice() {
        [only] if only == "lib" => return "crate".into(),
        [only] if only == "main" => return "main".into(),
        _ => {}
    }
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// The segments of a module path; `crate` (the root) has none.
fn segments(module: &str) -> Vec<String> {
    if module == "crate" || module == "main" {
        return vec![];
    }
    module.split("::").map(str::to_string).collect()
}

fn join(segs: &[String]) -> String {
    if segs.is_empty() {
        "crate".into()
    } else {
        segs.join("::")
    }
}

/// The source with comments and the insides of string and character literals replaced by
/// spaces; line breaks are kept, so line numbers stay right.
fn code_only(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut i = 0;
    while i < c.len() {
        let at = |k: usize| c.get(i + k).copied().unwrap_or('\0');
        if at(0) == '/' && at(1) == '/' {
            while i < c.len() && c[i] != '\n' {
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if at(0) == '/' && at(1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
        } else if at(0) == 'r'
            && (i == 0 || !ident(c[i - 1]) || c[i - 1] == 'b')
            && raw_string(&c, i).is_some()
        {
            let end = raw_string(&c, i).unwrap();
            for &ch in &c[i..end] {
                blank(&mut out, ch);
            }
            i = end;
        } else if at(0) == '"' {
            blank(&mut out, c[i]);
            i += 1;
            while i < c.len() && c[i] != '"' {
                let step = if c[i] == '\\' { 2 } else { 1 };
                for &ch in c.iter().skip(i).take(step) {
                    blank(&mut out, ch);
                }
                i += step;
            }
            if i < c.len() {
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if at(0) == '\'' && (at(1) == '\\' || (at(1) != '\'' && at(2) == '\'')) {
            // A character literal ('x', '\n', '\u{1F600}'); a lifetime ('a) has no closing quote.
            // An escaped quote ('\'') must not end it: start past the escaped character.
            let mut j = if at(1) == '\\' { i + 3 } else { i + 2 };
            while j < c.len() && c[j] != '\'' {
                j += 1;
            }
            for &ch in &c[i..=j.min(c.len() - 1)] {
                blank(&mut out, ch);
            }
            i = j + 1;
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// The end (exclusive) of a raw string starting at `i` (`r"…"`, `r#"…"#`), if one starts there.
fn raw_string(c: &[char], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while c.get(j) == Some(&'#') {
        j += 1;
    }
    if c.get(j) != Some(&'"') {
        return None;
    }
    let hashes = j - i - 1;
    j += 1;
    while j < c.len() {
        if c[j] == '"' && (1..=hashes).all(|k| c.get(j + k) == Some(&'#')) {
            return Some(j + 1 + hashes);
        }
        j += 1;
    }
    Some(c.len())
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    PathSep,
    Punct(char),
}

/// Identifiers, `::` and single punctuation characters, each with its line (1-based).
fn tokens(code: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch.is_alphanumeric()
            || ch == '_'
            || (ch == '$' && c.get(i + 1).is_some_and(|n| n.is_alphabetic()))
        {
            let start = if ch == '$' { i + 1 } else { i };
            i = start;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push((Tok::Ident(c[start..i].iter().collect()), line));
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            out.push((Tok::PathSep, line));
            i += 2;
        } else {
            out.push((Tok::Punct(ch), line));
            i += 1;
        }
    }
    out
}

/// One leaf of a `use` tree: its full path, the name it binds (None for a glob) and its line.
#[derive(Debug)]
struct UseLeaf {
    path: Vec<String>,
    binds: Option<String>,
    line: usize,
}

/// Expands the `use` tree starting at `toks[*i]` (just after `use`), up to its `;`.
fn use_tree(toks: &[(Tok, usize)], i: &mut usize, prefix: Vec<String>, out: &mut Vec<UseLeaf>) {
    let mut path = prefix;
    while let Some((tok, line)) = toks.get(*i) {
        match tok {
            Tok::PathSep => *i += 1,
            Tok::Punct('*') => {
                *i += 1;
                out.push(UseLeaf {
                    path,
                    binds: None,
                    line: *line,
                });
                return;
            }
            Tok::Punct('{') => {
                *i += 1;
                while let Some((tok, _)) = toks.get(*i) {
                    match tok {
                        Tok::Punct('}') => {
                            *i += 1;
                            return;
                        }
                        Tok::Punct(',') => *i += 1,
                        _ => use_tree(toks, i, path.clone(), out),
                    }
                }
                return;
            }
            Tok::Ident(name) => {
                *i += 1;
                if toks.get(*i).is_some_and(|(t, _)| *t == Tok::PathSep) {
                    path.push(name.clone());
                    continue;
                }
                let mut binds = name.clone();
                if name != "self" {
                    path.push(name.clone());
                } else if let Some(last) = path.last() {
                    binds = last.clone();
                }
                if let (Some((Tok::Ident(kw), _)), Some((Tok::Ident(alias), _))) =
                    (toks.get(*i), toks.get(*i + 1))
                    && kw == "as"
                {
                    binds = alias.clone();
                    *i += 2;
                }
                out.push(UseLeaf {
                    path,
                    binds: Some(binds),
                    line: *line,
                });
                return;
            }
            Tok::Punct(_) => return,
        }
    }
}

/// Reads one file's references to module files.
struct Scanner<'a> {
    files: &'a BTreeMap<String, PathBuf>,
    /// The file's own module path (segments; empty for the crate root and `main`).
    file_module: Vec<String>,
    /// `crbot::` means `crate::` in the binary.
    is_main: bool,
    /// Names bound to module paths in this file.
    bindings: BTreeMap<String, Vec<String>>,
    refs: Vec<Reference>,
}

impl<'a> Scanner<'a> {
    fn new(files: &'a BTreeMap<String, PathBuf>, module: &str) -> Self {
        let file_module = segments(module);
        let mut bindings = BTreeMap::new();
        // The file's child module files are in scope by their names.
        for child in files.keys().map(|m| segments(m)) {
            if child.len() == file_module.len() + 1 && child.starts_with(&file_module) && module != "main" {
                bindings.insert(child[child.len() - 1].clone(), child);
            }
        }
        Self {
            files,
            file_module,
            is_main: module == "main",
            bindings,
            refs: vec![],
        }
    }

    /// Resolves a path written in module `here` to absolute segments, or None when it is not ours.
    fn absolute(&self, path: &[String], here: &[String]) -> Option<Vec<String>> {
        let (first, rest) = path.split_first()?;
        let mut base: Vec<String> = match first.as_str() {
            "crate" => vec![],
            "crbot" if self.is_main => vec![],
            "self" => here.to_vec(),
            "super" => here.get(..here.len().checked_sub(1)?)?.to_vec(),
            name => self.bindings.get(name)?.clone(),
        };
        let mut rest = rest;
        while let Some((s, tail)) = rest.split_first()
            && s == "super"
        {
            base.pop()?;
            rest = tail;
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    /// The module file a path lands in: its longest prefix that is a file.
    fn landing(&self, abs: &[String]) -> String {
        (0..=abs.len())
            .rev()
            .map(|n| join(&abs[..n]))
            .find(|m| self.files.contains_key(m))
            .unwrap_or_else(|| "crate".into())
    }

    fn record(&mut self, path: &[String], here: &[String], line: usize) -> Option<Vec<String>> {
        let abs = self.absolute(path, here)?;
        let target = self.landing(&abs);
        self.refs.push(Reference {
            line,
            path: path.join("::"),
            target,
        });
        Some(abs)
    }

    fn scan(mut self, code: &str) -> Vec<Reference> {
        let toks = tokens(code);
        // Inline `mod name {` blocks we are inside, with the brace depth each opened at.
        let mut inline: Vec<(String, usize)> = vec![];
        let mut depth = 0;
        let mut i = 0;
        while i < toks.len() {
            let here: Vec<String> = self
                .file_module
                .iter()
                .cloned()
                .chain(inline.iter().map(|(m, _)| m.clone()))
                .collect();
            match &toks[i].0 {
                Tok::Punct('{') => depth += 1,
                Tok::Punct('}') => {
                    depth -= 1;
                    if inline.last().is_some_and(|(_, d)| *d == depth) {
                        inline.pop();
                    }
                }
                Tok::Ident(kw) if kw == "mod" => {
                    if let (Some((Tok::Ident(name), _)), Some((Tok::Punct('{'), _))) =
                        (toks.get(i + 1), toks.get(i + 2))
                    {
                        inline.push((name.clone(), depth));
                        depth += 1;
                        i += 3;
                        continue;
                    }
                }
                Tok::Ident(kw) if kw == "use" => {
                    i += 1;
                    let mut leaves = vec![];
                    use_tree(&toks, &mut i, vec![], &mut leaves);
                    for leaf in leaves {
                        let Some(abs) = self.record(&leaf.path, &here, leaf.line) else {
                            continue;
                        };
                        if let Some(name) = leaf.binds
                            && self.files.contains_key(&join(&abs))
                        {
                            self.bindings.insert(name, abs);
                        }
                    }
                    continue;
                }
                Tok::Ident(first) if toks.get(i + 1).is_some_and(|(t, _)| *t == Tok::PathSep) => {
                    let continues_a_path = i > 0 && toks[i - 1].0 == Tok::PathSep;
                    let mut path = vec![first.clone()];
                    let line = toks[i].1;
                    i += 1;
                    while let (Some((Tok::PathSep, _)), Some((Tok::Ident(s), _))) =
                        (toks.get(i), toks.get(i + 1))
                    {
                        path.push(s.clone());
                        i += 2;
                    }
                    if !continues_a_path {
                        self.record(&path, &here, line);
                    }
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
        self.refs
    }
}

/// Every file's references, by module path.
fn references(files: &BTreeMap<String, PathBuf>) -> BTreeMap<String, Vec<Reference>> {
    files
        .iter()
        .map(|(module, path)| {
            let code = code_only(&std::fs::read_to_string(path).unwrap());
            (module.clone(), Scanner::new(files, module).scan(&code))
        })
        .collect()
}

/// Whether `child` is a direct child module file of `parent`.
fn is_child(parent: &str, child: &str) -> bool {
    if parent == "main" || child == "crate" || child == "main" {
        return false;
    }
    let (p, c) = (segments(parent), segments(child));
    c.len() == p.len() + 1 && c.starts_with(&p)
}

/// from → to → the references that make that edge.
type Graph = BTreeMap<String, BTreeMap<String, Vec<Reference>>>;

fn graph(refs: &BTreeMap<String, Vec<Reference>>) -> Graph {
    let mut g: Graph = refs.keys().map(|m| (m.clone(), BTreeMap::new())).collect();
    for (from, list) in refs {
        for r in list {
            if r.target != *from && !is_child(from, &r.target) {
                g.entry(from.clone())
                    .or_default()
                    .entry(r.target.clone())
                    .or_default()
                    .push(r.clone());
            }
        }
    }
    g
}

/// Strongly connected groups of more than one file (Tarjan's algorithm), each sorted.
fn cycles(g: &Graph) -> Vec<Vec<String>> {
    struct Walk<'g> {
        g: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        found: Vec<Vec<String>>,
    }
    impl<'g> Walk<'g> {
        fn visit(&mut self, v: &'g str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.g.get(v).into_iter().flat_map(|e| e.keys()) {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut group = vec![];
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    group.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if group.len() > 1 {
                    group.sort();
                    self.found.push(group);
                }
            }
        }
    }
    let mut walk = Walk {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: vec![],
        on_stack: BTreeSet::new(),
        found: vec![],
    };
    for v in g.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found.sort();
    walk.found
}

fn top_level(module: &str) -> &str {
    module.split("::").next().unwrap_or(module)
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|row| row.contains(&top_level(module)))
}

/// Where a reference sits, as a reader opens it.
fn at(files: &BTreeMap<String, PathBuf>, module: &str, r: &Reference) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let file = files[module]
        .strip_prefix(root)
        .unwrap_or(&files[module])
        .display()
        .to_string();
    format!("{file}:{}: `{}` ({module} → {})", r.line, r.path, r.target)
}

/// The cycle report: every group that is not allowed, and every allowed group that is gone.
fn cycle_report(files: &BTreeMap<String, PathBuf>, g: &Graph) -> String {
    let found = cycles(g);
    let mut report = String::new();
    for group in &found {
        if ALLOWED_CYCLES
            .iter()
            .any(|a| a.iter().copied().eq(group.iter().map(String::as_str)))
        {
            continue;
        }
        writeln!(report, "import cycle between {}:", group.join(", ")).unwrap();
        for from in group {
            for (to, refs) in &g[from] {
                if group.contains(to) {
                    for r in refs {
                        writeln!(report, "  {}", at(files, from, r)).unwrap();
                    }
                }
            }
        }
    }
    for allowed in ALLOWED_CYCLES {
        if !found
            .iter()
            .any(|group| allowed.iter().copied().eq(group.iter().map(String::as_str)))
        {
            writeln!(
                report,
                "ALLOWED_CYCLES lists {allowed:?}, which is no longer a cycle: remove the entry"
            )
            .unwrap();
        }
    }
    report
}

/// The layer report: every edge into a higher layer, and every top-level module with no layer.
fn layer_report(files: &BTreeMap<String, PathBuf>, g: &Graph) -> String {
    let mut report = String::new();
    let unplaced: BTreeSet<&str> = files
        .keys()
        .map(|m| top_level(m))
        .filter(|t| layer_of(t).is_none())
        .collect();
    for t in unplaced {
        writeln!(report, "top-level module `{t}` has no layer: place it in LAYERS").unwrap();
    }
    for (from, edges) in g {
        for (to, refs) in edges {
            if let (Some(lf), Some(lt)) = (layer_of(from), layer_of(to))
                && lt > lf
            {
                for r in refs {
                    let (tf, tt) = (top_level(from), top_level(to));
                    writeln!(
                        report,
                        "{}: `{tf}` (layer {lf}) imports `{tt}` (layer {lt})",
                        at(files, from, r)
                    )
                    .unwrap();
                }
            }
        }
    }
    report
}

fn source_graph() -> (BTreeMap<String, PathBuf>, Graph) {
    let files = module_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let g = graph(&references(&files));
    (files, g)
}

#[test]
fn no_file_imports_itself_round_a_loop() {
    let (files, g) = source_graph();
    let report = cycle_report(&files, &g);
    assert!(report.is_empty(), "\n{report}");
}

#[test]
fn no_module_imports_a_higher_layer() {
    let (files, g) = source_graph();
    let report = layer_report(&files, &g);
    assert!(report.is_empty(), "\n{report}");
}

#[test]
fn every_layer_entry_is_listed_once() {
    let all: Vec<&str> = LAYERS.iter().flat_map(|row| row.iter().copied()).collect();
    let unique: BTreeSet<&str> = all.iter().copied().collect();
    assert_eq!(all.len(), unique.len(), "a module on two layers: {all:?}");
}

// The reader itself, on small inputs.

/// The references of one made-up file `module` among the module files `others`.
fn scan_snippet(module: &str, others: &[&str], code: &str) -> Vec<(usize, String)> {
    let files: BTreeMap<String, PathBuf> = others
        .iter()
        .chain([&module])
        .map(|m| (m.to_string(), PathBuf::from(format!("{m}.rs"))))
        .collect();
    Scanner::new(&files, module)
        .scan(&code_only(code))
        .into_iter()
        .map(|r| (r.line, r.target))
        .collect()
}

#[test]
fn comments_and_literals_name_nothing() {
    let code = "// crate::cli::x\n/* crate::ui /* nested */ crate::ui */\nlet s = \"crate::cli::y\";\n\
                let r = r#\"crate::cli \"quoted\"\"#;\nlet c = '\"'; let d = '{'; let q = '\\''; fn f<'a>(x: &'a str) {}\n\
                use crate::domain::Mode;\n";
    assert_eq!(
        scan_snippet("engine", &["cli", "ui", "domain"], code),
        vec![(6, "domain".to_string())]
    );
}

#[test]
fn use_trees_are_expanded_and_land_in_the_longest_module_file() {
    let code =
        "use crate::{cli::exit::OK, engine::{self, core::Core}};\nfn f() { engine::state::State::new(); }\n";
    let got = scan_snippet(
        "console",
        &["cli", "engine", "engine::core", "engine::state"],
        code,
    );
    let want = [
        (1, "cli"),
        (1, "engine"),
        (1, "engine::core"),
        (2, "engine::state"),
    ];
    assert_eq!(got, want.map(|(l, t)| (l, t.to_string())));
}

#[test]
fn super_resolves_from_the_inline_module_it_is_written_in() {
    let code =
        "use super::X;\nmod tests {\n    use super::*;\n    use super::super::Y;\n}\nuse self::z::Q;\n";
    let got = scan_snippet("a::b", &["a", "a::b::z"], code);
    let want = [(1, "a"), (3, "a::b"), (4, "a"), (6, "a::b::z")];
    assert_eq!(got, want.map(|(l, t)| (l, t.to_string())));
}

#[test]
fn a_parent_reaching_into_its_child_is_no_edge_but_the_reverse_is() {
    let refs: BTreeMap<String, Vec<Reference>> = [
        (
            "a",
            vec![Reference {
                line: 1,
                path: "b::f".into(),
                target: "a::b".into(),
            }],
        ),
        (
            "a::b",
            vec![Reference {
                line: 2,
                path: "super::X".into(),
                target: "a".into(),
            }],
        ),
    ]
    .into_iter()
    .map(|(m, r)| (m.to_string(), r))
    .collect();
    let g = graph(&refs);
    assert!(g["a"].is_empty());
    assert_eq!(g["a::b"].keys().collect::<Vec<_>>(), ["a"]);
    assert!(cycles(&g).is_empty());
}

#[test]
fn a_loop_through_three_files_is_one_cycle() {
    let edge = |target: &str| {
        vec![Reference {
            line: 1,
            path: format!("crate::{target}"),
            target: target.into(),
        }]
    };
    let refs: BTreeMap<String, Vec<Reference>> = [
        ("x", edge("y")),
        ("y", edge("z::w")),
        ("z::w", edge("x")),
        ("z", vec![]),
    ]
    .into_iter()
    .map(|(m, r)| (m.to_string(), r))
    .collect();
    assert_eq!(
        cycles(&graph(&refs)),
        vec![vec!["x".to_string(), "y".into(), "z::w".into()]]
    );
}

/// Functions longer than this hold several jobs; data tables are the exception, by name.
const MAX_FN_LINES: usize = 150;
/// Functions that are one data table (a row per entry), allowed past the limit.
const DATA_TABLES: &[&str] = &[
    // ui::keymap: the key table, one row a binding.
    "with_kill_key",
];

/// `(line, name, length)` of each function in `code` (comments and literals blanked), by
/// brace matching from its `fn` keyword to the end of its body.
fn function_lengths(code: &str) -> Vec<(usize, String, usize)> {
    let toks = tokens(code);
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if let (Tok::Ident(kw), Some((Tok::Ident(name), _))) = (&toks[i].0, toks.get(i + 1))
            && kw == "fn"
        {
            let start = toks[i].1;
            // The body opens at the first `{` before any `;` (a declaration without a body).
            let mut j = i + 2;
            while j < toks.len() && !matches!(toks[j].0, Tok::Punct('{') | Tok::Punct(';')) {
                j += 1;
            }
            if matches!(toks.get(j), Some((Tok::Punct('{'), _))) {
                let mut depth = 0usize;
                let mut k = j;
                while k < toks.len() {
                    match toks[k].0 {
                        Tok::Punct('{') => depth += 1,
                        Tok::Punct('}') => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    k += 1;
                }
                let end = toks.get(k).map_or(start, |t| t.1);
                out.push((start, name.clone(), end - start + 1));
            }
        }
        i += 1;
    }
    out
}

#[test]
fn no_function_in_src_is_longer_than_the_limit() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut long = Vec::new();
    for (module, file) in module_files(&src) {
        let text = std::fs::read_to_string(&file).expect("read a source file");
        for (line, name, len) in function_lengths(&code_only(&text)) {
            if len > MAX_FN_LINES && !DATA_TABLES.contains(&name.as_str()) {
                long.push(format!(
                    "{module} ({}:{line}) fn {name}: {len} lines",
                    file.display()
                ));
            }
        }
    }
    assert!(
        long.is_empty(),
        "split these by job (or, for one data table, list it in DATA_TABLES):\n{}",
        long.join("\n")
    );
}

#[test]
fn the_length_check_sees_a_long_function() {
    let body = "    let x = 1;\n".repeat(MAX_FN_LINES);
    let code = format!("fn short() {{ }}\nfn long() {{\n{body}}}\nfn decl();\n");
    let lengths = function_lengths(&code);
    let names: Vec<(&str, usize)> = lengths.iter().map(|(_, n, l)| (n.as_str(), *l)).collect();
    assert_eq!(names, [("short", 1), ("long", MAX_FN_LINES + 2)]);
}
