#!/usr/bin/env python3
"""The shape ARCHITECTURE.md promises, checked: no import cycles among the
modules of engine, net and client (per file, and per top-level module);
no file in engine/src over 700 lines and no engine function over 80,
except the frame codec's encode and decode; no too_many_arguments allow;
no file of the browser client (web/static) or its tests over 700 lines,
and the page under 150 KB.
Exits 1, naming each breach. Reads `use crate::`/`super::` paths (comments
and `#[cfg(test)] mod tests` tails left out), not the compiler's view: a
cheap guard, not a proof."""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CRATES = ["engine/src", "net/src", "client/src"]
CODEC = "engine/src/wire/codec.rs"
MAX_FILE, MAX_FN = 700, 80


def rust_files(src):
    for d, _, fs in os.walk(os.path.join(ROOT, src)):
        for f in fs:
            if f.endswith(".rs"):
                yield os.path.join(d, f)


def module_of(root, path):
    rel = os.path.relpath(path, root)[:-3].split(os.sep)
    return rel[:-1] if rel[-1] in ("mod", "lib", "main") else rel


def code_of(path):
    lines = [l for l in open(path).read().splitlines() if not l.lstrip().startswith("//")]
    text = "\n".join(lines)
    cut = text.find("#[cfg(test)]\nmod tests")
    return text if cut < 0 else text[:cut]


def graph(src, depth):
    root = os.path.join(ROOT, src)
    edges = {}
    for f in rust_files(src):
        me = module_of(root, f)
        if "tests" in me:
            continue
        key = tuple(me[:depth])
        deps = edges.setdefault(key, set())
        for m in re.finditer(r"\b(crate|super)((?:::\w+)+)", code_of(f)):
            parts = m.group(2).split("::")[1:]
            target = (me[:-1] + parts) if m.group(1) == "super" else parts
            for n in range(len(target), 0, -1):
                p = os.path.join(root, *target[:n])
                if os.path.exists(p + ".rs") or os.path.exists(os.path.join(p, "mod.rs")):
                    k = tuple(target[:n][:depth])
                    if k != key and key[: len(k)] != k:
                        deps.add(k)
                    break
    return edges


def cycles(edges):
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
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
                out.append(sorted("::".join(c) or "crate" for c in comp))

    sys.setrecursionlimit(10000)
    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def long_functions(path):
    lines = open(path).read().splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"\s*(pub(\([^)]*\))?\s+)?(const\s+)?fn\s+(\w+)", line)
        if not m:
            continue
        depth, started, j = 0, False, i
        while j < len(lines):
            code = re.sub(r'"([^"\\]|\\.)*"', '""', lines[j].split("//")[0])
            depth += code.count("{") - code.count("}")
            started |= "{" in code
            if (started and depth <= 0) or (not started and code.rstrip().endswith(";")):
                break
            j += 1
        if j - i + 1 > MAX_FN:
            yield m.group(4), i + 1, j - i + 1


breaches = []
for src in CRATES:
    for depth in (1, 99):
        for c in cycles(graph(src, depth)):
            breaches.append(f"{src}: import cycle among {', '.join(c)}")
for f in rust_files("engine/src"):
    rel = os.path.relpath(f, ROOT)
    if rel == CODEC:
        continue
    n = len(open(f).read().splitlines())
    if n > MAX_FILE:
        breaches.append(f"{rel}: {n} lines (at most {MAX_FILE})")
    for name, at, length in long_functions(f):
        breaches.append(f"{rel}:{at}: fn {name} is {length} lines (at most {MAX_FN})")
for src in CRATES + ["bench/src", "tests", "fuzz/fuzz_targets"]:
    for f in rust_files(src):
        if "too_many_arguments" in open(f).read():
            breaches.append(f"{os.path.relpath(f, ROOT)}: allows too_many_arguments")
# The browser client (web/static, no build step) and its tests: the same
# file length limit, and the whole page under 150 KB.
PAGE_MAX = 150 * 1024
page_bytes = 0
for src in ["web/static", "tests/browser"]:
    for d, _, fs in os.walk(os.path.join(ROOT, src)):
        for f in fs:
            path = os.path.join(d, f)
            if src == "web/static":
                page_bytes += os.path.getsize(path)
            if f.endswith((".js", ".py", ".css", ".html")):
                n = len(open(path).read().splitlines())
                if n > MAX_FILE:
                    breaches.append(f"{os.path.relpath(path, ROOT)}: {n} lines (at most {MAX_FILE})")
if page_bytes > PAGE_MAX:
    breaches.append(f"web/static: {page_bytes} bytes (the page must stay under {PAGE_MAX})")
for b in breaches:
    print(b)
sys.exit(1 if breaches else 0)
