#!/usr/bin/env python3
"""The layer check: drill's top-level modules import downward only, and no
files import each other in a loop except a folder's mod.rs with its own
children.

Usage: python3 ci/layers.py   (from the repository root; ci/lint.sh runs it)

LAYERS below is the map the README's "Layout" section draws, bottom first.
A module may use modules of lower layers only; modules sharing a layer are
peers and may not use each other. Only shipped code counts: `#[cfg(test)]`
modules and test-only files may reach anywhere (a test of the results model
renders a report, for instance).

Paths are read as written (`crate::a::b`, `super::x`, `use crate::{a, b}`,
a child module's name), each resolved to the file defining the longest
module prefix. Exit 1 with the offending imports named, else 0.
"""
import os
import re
import sys

LAYERS = [
    ["base"],  # units, diagnostics, exit codes, clock, TLS, error chains
    ["results"],  # the results model: what a drill produced
    ["report"],  # renders results: JUnit, Markdown, SVG, JSON, metrics
    ["history"],  # past results on disk, trends, regressions
    ["measure"],  # recorder, HDR histograms, RTO/RPO math
    ["scenario"],  # the TOML model, validation, the plan
    ["db", "observe", "load"],  # PostgreSQL, Prometheus/Alertmanager, the generator
    ["targets"],  # lab, http and Kubernetes targets, the journal
    ["agent"],  # remote vantage points
    ["fault"],  # the fault lifecycle, cleanup, run identity
    ["verdict"],  # pure judging: recorded facts + plan -> result
    ["run"],  # the stages of a drill and its teardown
    ["cli"],  # commands, flags, output
]
ROOT = "src"


def read_sources():
    files = {}
    for d, _, names in os.walk(ROOT):
        for n in names:
            if n.endswith(".rs"):
                p = os.path.join(d, n)
                with open(p, encoding="utf-8") as f:
                    files[p] = f.read()
    return files


def module_path(p):
    parts = os.path.relpath(p, ROOT)[:-3].split(os.sep)
    return parts[:-1] if parts[-1] in ("mod", "lib", "main") else parts


def shipped(text):
    """The text without comments and without an inline test module."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    pattern = re.compile(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{")
    while test := pattern.search(text):
        depth, end = 0, len(text)
        for i in range(test.end() - 1, len(text)):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                end = i + 1
                break
        text = text[: test.start()] + text[end:]
    return text


def test_only_files(files):
    """Files declared `#[cfg(test)] mod x;`: compiled into tests only."""
    out = set()
    for p, text in files.items():
        folder = os.path.dirname(p) if os.path.basename(p) in ("mod.rs", "lib.rs") else p[:-3]
        for m in re.finditer(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", text):
            out.add(os.path.join(folder, m.group(1) + ".rs"))
            out.add(os.path.join(folder, m.group(1), "mod.rs"))
    return out


def resolve(by_module, segs):
    """The file defining the longest module prefix of `segs`."""
    for k in range(len(segs), 0, -1):
        f = by_module.get(tuple(segs[:k]))
        if f:
            return f
    return None


def imports(p, text, by_module):
    here = module_path(p)
    children = set(re.findall(r"\bmod\s+(\w+)\s*;", text))
    is_mod_file = os.path.basename(p) in ("mod.rs", "lib.rs")
    parent = here if is_mod_file else here[:-1]
    paths = []
    for m in re.finditer(r"\buse\s+(crate|super)((?:::\w+)*)::\{([^;]*)\};", text, re.S):
        head, prefix, inner = m.groups()
        for item in re.sub(r"\{[^{}]*\}", "", inner).split(","):
            item = item.strip().split(" as ")[0].strip()
            if item:
                paths.append((head, prefix + ("" if item == "self" else "::" + item)))
    for m in re.finditer(r"(?<![\w:])(crate|super|[a-z_]\w*)((?:::\w+)+)", text):
        paths.append(m.groups())
    out = set()
    for head, tail in paths:
        segs = [s for s in tail.split("::") if s]
        if head == "crate":
            full = segs
        elif head == "super":
            base = parent[:-1] if is_mod_file else parent
            while segs and segs[0] == "super":
                base, segs = base[:-1], segs[1:]
            full = base + segs
        elif head in children:
            full = here + [head] + segs
        else:
            continue
        f = resolve(by_module, full)
        if f and f != p:
            out.add(f)
    return out


def loops(edges):
    """Strongly connected groups of two or more files (Tarjan)."""
    sys.setrecursionlimit(10000)
    index, low, stack, on, comps = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return comps


def a_folder_and_its_children(comp):
    """A loop is allowed when it is one folder's mod.rs and its own children
    (files in that folder, or the mod.rs of a folder in it)."""
    for m in comp:
        if os.path.basename(m) != "mod.rs":
            continue
        folder = os.path.dirname(m)
        if all(
            f == m
            or os.path.dirname(f) == folder
            or (os.path.basename(f) == "mod.rs" and os.path.dirname(os.path.dirname(f)) == folder)
            for f in comp
        ):
            return True
    return False


def main():
    files = read_sources()
    for p in test_only_files(files):
        files.pop(p, None)
    by_module = {tuple(module_path(p)): p for p in files}
    edges = {p: imports(p, shipped(t), by_module) for p, t in files.items()}
    layer = {m: i for i, ms in enumerate(LAYERS) for m in ms}
    top = lambda p: os.path.relpath(p, ROOT).split(os.sep)[0].removesuffix(".rs")
    problems = []
    for p, ts in sorted(edges.items()):
        a = top(p)
        if a in ("lib", "main"):
            continue
        if a not in layer:
            problems.append(f"src/{a}: not in ci/layers.py's LAYERS (add it to the map and the README's Layout)")
            continue
        for t in sorted(ts):
            b = top(t)
            if b == a or b in ("lib", "main"):
                continue
            if b not in layer or layer[b] >= layer[a]:
                how = "a peer" if layer.get(b) == layer[a] else "a higher layer"
                problems.append(f"{p} uses {t}: `{b}` is {how} than `{a}`")
    for comp in loops(edges):
        if not a_folder_and_its_children(comp):
            problems.append("files import each other in a loop: " + ", ".join(comp))
    for line in dict.fromkeys(problems):
        print(line)
    if problems:
        print(f"ci/layers.py: {len(set(problems))} problems; the layers, bottom first: "
              + " -> ".join("/".join(ms) for ms in LAYERS))
        return 1
    print(f"ci/layers.py: {len(files)} files in {len(LAYERS)} layers import downward only; "
          "every file loop is a mod.rs with its own children")
    return 0


if __name__ == "__main__":
    sys.exit(main())
