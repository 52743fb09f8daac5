"""A structured mutator for suite files, driven by hypothesis (see test_fuzz_suites.py).

Seeds are the suites users start from: the README's examples and examples/ (the demo, the
protocols suite, the GitOps suite). Each generated case takes one seed and applies a few
mutations, either to its data (then written back as YAML: wrong types, unknown fields, bad
durations, regexes, JSONPaths, JSON Schemas, huge numbers, deep nesting, odd ``${...}``) or to
its text/bytes (non-UTF-8, binary, tabs, duplicate keys, empty files, truncation, alias bombs).
The result is bytes, written to a file and read by the loader like any suite.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]


def _readme_suites() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    # Top-level suites only (not a suite quoted inside Helm values or a serve config).
    return [b for b in blocks if re.search(r"^apiVersion: smokegate\.io/v1\nkind: Suite", b, re.M)]


def seed_texts() -> list[str]:
    """The README's suites and every suite under examples/."""
    files = [ROOT / "examples" / "demo.yaml", ROOT / "examples" / "protocols.yaml"]
    files += sorted((ROOT / "examples" / "gitops" / "smokegate" / "suites").glob("*.yaml"))
    texts = [f.read_text(encoding="utf-8") for f in files]
    return [*texts, *_readme_suites()]


SEEDS: list[str] = seed_texts()
SEED_DATA: list[Any] = [yaml.safe_load(t) for t in SEEDS]

# Values that are wrong in some place of every suite.
WRONG_TYPES: list[Any] = [
    None, True, 0, -1, 3.5, "", "x", [], [1, "a"], {}, {"a": 1}, "${nope}", [[[]]],
]  # fmt: skip
BAD_DURATIONS = [
    "10x", "-5s", "5", "s", "1e400s", "99999999999999999999h", "1.5.5s", "ms", "0x10s", "∞s",
    "10 s", "NaN", "inf", "1d1d1d1d", "-0s", 1e400, -3, "${nope}s",
]  # fmt: skip
BAD_REGEXES = ["(", "[a-", "(?P<x", "a{99999999999}", "*", "(?<=a+)b", "\\", "(?i", "[[:x:]]"]
BAD_JSONPATHS = ["$[", "$..[?(@", "$.a[", "", "$", "$['a", "$.*.*[?@.x ==", "a.b", "$..", "@"]
BAD_SCHEMAS: list[Any] = [
    {"type": 5}, {"$ref": "#/nope"}, {"pattern": "("}, {"type": "nope"}, {"required": "x"},
    {"properties": []}, {"minimum": "a"}, "schema", 7, [], {"$ref": "http://127.0.0.1:1/x"},
    {"allOf": [{"$ref": "#"}]}, {"$schema": "http://nope/"},
]  # fmt: skip
HUGE_NUMBERS: list[Any] = [
    10**400, -(10**400), 2**63, 2**64 + 1, 1e308, -1e308, 1e-320, 0, -0.0, 65536, 99999999,
]  # fmt: skip
ODD_STRINGS = [
    "${", "${}", "${env:}", "${secret:}", "${secret:a}", "${secret:a/b/c/d}", "${a:-${b}}",
    "${release.nope}", "$${x}", "${x", "}", "\x00", "\t", "\u202e", "a" * 5000, "${" * 50,
    "${env:HOME:-${env:HOME:-${env:HOME}}}", "%(x)s", "{x}", "\ud7ff", "'\"", "\\u0000",
]  # fmt: skip
FIELD_NAMES = [
    "expectt", "timeout", "retry", "http", "tcp", "dns", "tls", "kube", "exec", "postgres",
    "redis", "mysql", "grpc", "matrix", "needs", "json", "schema", "secretRef", "secret",
    "value", "regex", "contains", "status", "latency", "range", "name", "tags", "skip",
    "<<", "", "0", "spec", "apiVersion", "x" * 300,
]  # fmt: skip
# Where typed values live: the mutator favours them so that model validators run.
KEYS_FOR = {
    "duration": ("timeout", "within", "interval", "max", "min", "connectTimeout", "maxInterval"),
    "regex": ("regex", "matches", "pattern"),
    "jsonpath": ("json",),
    "schema": ("schema",),
}


def _paths(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, (*path, i))
    return out


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        data = data[p]
    return data


def _set(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    _get(data, path[:-1])[path[-1]] = value
    return data


def _nested(match: re.Match[str]) -> str:
    depth, kind = int(match.group(1)), match.group(2)
    return (
        ("[" * depth + "1" + "]" * depth) if kind == "L" else ("{a: " * depth + "1" + "}" * depth)
    )


@st.composite
def _data_mutation(draw: st.DrawFn, data: Any) -> Any:
    """One structural change somewhere in ``data`` (a deep copy)."""
    paths = _paths(data)
    op = draw(
        st.sampled_from(
            ["type", "unknown", "typed", "typed", "huge", "delete", "odd", "dupcheck"] * 3
            + ["nest"]
        )
    )
    if op == "typed":
        what = draw(st.sampled_from(sorted(KEYS_FOR)))
        where = [p for p in paths if p and p[-1] in KEYS_FOR[what]] or paths
        path = draw(st.sampled_from(where))
        bad: list[Any] = {
            "duration": BAD_DURATIONS,
            "regex": BAD_REGEXES,
            "jsonpath": BAD_JSONPATHS,
            "schema": BAD_SCHEMAS,
        }[what]
        value = copy.deepcopy(draw(st.sampled_from(bad)))  # later mutations edit it in place
        target = _get(data, path) if path else None
        if what == "jsonpath" and isinstance(target, dict):
            target[value] = copy.deepcopy(
                draw(st.sampled_from([1, "x", {"regex": "("}, {"gte": "a"}]))
            )
            return data
        if what == "regex" and path and path[-1] == "matches":
            return _set(data, path, value)
        return _set(data, path, value)
    path = draw(st.sampled_from(paths))
    if op == "type":
        return _set(data, path, copy.deepcopy(draw(st.sampled_from(WRONG_TYPES))))
    if op == "huge":
        return _set(data, path, draw(st.sampled_from(HUGE_NUMBERS)))
    if op == "odd":
        return _set(data, path, draw(st.sampled_from(ODD_STRINGS)))
    if op == "nest":
        # A marker, replaced in the text after dumping (see _dump): nesting thousands deep in
        # the data would exhaust the recursion of the mutator and of the YAML writer themselves.
        # Up to 300 levels: ruamel's pure-Python scanner is quadratic in flow depth (2,000
        # levels take ~5 s); the deeper case is one regression test in test_fuzz_suites.
        depth = draw(st.sampled_from([5, 60, 300]))
        return _set(data, path, f"NEST{depth}{draw(st.sampled_from('LM'))}X")
    if op == "unknown":
        holders = [p for p in paths if isinstance(_get(data, p), dict)] or [()]
        holder = _get(data, draw(st.sampled_from(holders)))
        if isinstance(holder, dict):
            holder[draw(st.sampled_from(FIELD_NAMES))] = copy.deepcopy(
                draw(st.sampled_from(WRONG_TYPES))
            )
        return data
    if op == "delete" and path:
        parent = _get(data, path[:-1])
        del parent[path[-1]]
        return data
    if op == "dupcheck":
        spec = data.get("spec") if isinstance(data, dict) else None
        checks = spec.get("checks") if isinstance(spec, dict) else None
        if isinstance(checks, list) and checks:
            checks.append(copy.deepcopy(checks[draw(st.integers(0, len(checks) - 1))]))
        return data
    return data


def _dump(data: Any, style: str) -> str:
    if style == "json":
        text = json.dumps(data, ensure_ascii=False, default=str)
    else:
        try:
            text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=80)
        except (yaml.YAMLError, ValueError):
            text = json.dumps(data, default=str)
    return re.sub(r"NEST(\d+)([LM])X", _nested, text.replace('"NEST', "NEST").replace('X"', "X"))


ALIAS_BOMB = """\
apiVersion: smokegate.io/v1
kind: Suite
metadata: {name: bomb}
spec:
  vars:
    a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
    g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
    h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
    i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
  checks: []
"""
MAP_BOMB = """\
apiVersion: smokegate.io/v1
kind: Suite
metadata: {name: bomb}
spec:
  vars:
    a: &a {x0: lol, x1: lol, x2: lol, x3: lol, x4: lol, x5: lol, x6: lol, x7: lol}
    b: &b {x0: *a, x1: *a, x2: *a, x3: *a, x4: *a, x5: *a, x6: *a, x7: *a}
    c: &c {x0: *b, x1: *b, x2: *b, x3: *b, x4: *b, x5: *b, x6: *b, x7: *b}
    d: &d {x0: *c, x1: *c, x2: *c, x3: *c, x4: *c, x5: *c, x6: *c, x7: *c}
    e: &e {x0: *d, x1: *d, x2: *d, x3: *d, x4: *d, x5: *d, x6: *d, x7: *d}
    f: &f {x0: *e, x1: *e, x2: *e, x3: *e, x4: *e, x5: *e, x6: *e, x7: *e}
    g: &g {x0: *f, x1: *f, x2: *f, x3: *f, x4: *f, x5: *f, x6: *f, x7: *f}
    h: &h {x0: *g, x1: *g, x2: *g, x3: *g, x4: *g, x5: *g, x6: *g, x7: *g}
    i: &i {x0: *h, x1: *h, x2: *h, x3: *h, x4: *h, x5: *h, x6: *h, x7: *h}
  checks:
    - name: c
      http: {url: "http://127.0.0.1:1/", headers: *i}
"""
MERGE_BOMB = """\
apiVersion: smokegate.io/v1
kind: Suite
metadata: {name: bomb}
spec:
  vars:
    a: &a {x0: [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]}
    b: &b {<<: *a, y0: *a, y1: *a, y2: *a, y3: *a, y4: *a, y5: *a, y6: *a, y7: *a}
    c: &c {<<: *b, z0: *b, z1: *b, z2: *b, z3: *b, z4: *b, z5: *b, z6: *b, z7: *b}
    d: &d {<<: *c, w0: *c, w1: *c, w2: *c, w3: *c, w4: *c, w5: *c, w6: *c, w7: *c}
    e: &e {<<: *d, v0: *d, v1: *d, v2: *d, v3: *d, v4: *d, v5: *d, v6: *d, v7: *d}
    f: &f {<<: *e, u0: *e, u1: *e, u2: *e, u3: *e, u4: *e, u5: *e, u6: *e, u7: *e}
    g: &g {<<: *f, t0: *f, t1: *f, t2: *f, t3: *f, t4: *f, t5: *f, t6: *f, t7: *f}
  checks: []
"""
BOMBS = {"lists": ALIAS_BOMB, "mappings": MAP_BOMB, "merge keys": MERGE_BOMB}


def _duplicate_key(text: str, draw: st.DrawFn) -> str:
    lines = text.splitlines(keepends=True)
    keyed = [i for i, line in enumerate(lines) if re.match(r"^\s*[A-Za-z_]\w*:", line)]
    if not keyed:
        return text + text
    i = draw(st.sampled_from(keyed))
    return "".join([*lines[: i + 1], lines[i], *lines[i + 1 :]])


@st.composite
def _text_mutation(draw: st.DrawFn, text: str) -> bytes:
    op = draw(
        st.sampled_from(
            ["none", "tabs", "dupkey", "truncate", "splice", "yamlnoise", "anchors"] * 60
            # Rare here (~1 in 400): each costs up to 100,000 alias values of pure-Python YAML
            # work; test_alias_bombs_* measures every shape in its own process.
            + ["bomb"]
        )
    )
    if op == "tabs":
        text = re.sub(r"^( +)", lambda m: "\t" * draw(st.integers(1, 2)), text, count=3, flags=re.M)
    elif op == "dupkey":
        text = _duplicate_key(text, draw)
    elif op == "truncate" and text:
        text = text[: draw(st.integers(0, len(text) - 1))]
    elif op == "bomb":
        text = draw(st.sampled_from(sorted(BOMBS.values())))
    elif op == "splice" and text:
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.text(max_size=20)) + text[at:]
    elif op == "yamlnoise":
        noise = draw(
            st.sampled_from(
                [
                    "\n---\n", "\n...\n", "%YAML 1.1\n---\n", "!!python/object:os.system x\n",
                    "&a ", "*nope ", "? [a]\n: b\n", "!!binary AAA=\n", "- \n", "{", "[", "'",
                    '"\\x', "key: !!int nope\n", "x: !!float 1e999\n", "<<: *zz\n", "|+\n",
                    "!custom {a: 1}\n", "\ufeff", "%TAG ! tag:x,\n",
                ]
            )
        )  # fmt: skip
        at = draw(st.integers(0, len(text)))
        text = text[:at] + noise + text[at:]
    elif op == "anchors":
        text = text.replace("spec:", "spec: &s", 1).replace("checks:", "checks: *s\n  x:", 1)
    raw = text.encode("utf-8", errors="surrogatepass")
    enc = draw(st.sampled_from(["utf8"] * 6 + ["latin1", "binary", "badbyte", "utf16", "empty"]))
    if enc == "latin1":
        raw = (text + "\n# caf\u00e9\n").encode("latin-1", errors="replace")
    elif enc == "binary":
        raw = draw(st.binary(min_size=1, max_size=300))
    elif enc == "badbyte" and raw:
        at = draw(st.integers(0, len(raw)))
        raw = (
            raw[:at]
            + draw(st.sampled_from([b"\xff", b"\xc3", b"\x00", b"\xed\xa0\x80"]))
            + raw[at:]
        )
    elif enc == "utf16":
        raw = text.encode("utf-16")
    elif enc == "empty":
        raw = draw(st.sampled_from([b"", b"\n", b"---\n", b"# only a comment\n", b"...\n", b"~\n"]))
    return raw


@st.composite
def suite_files(draw: st.DrawFn) -> bytes:
    """The bytes of one generated suite file."""
    index = draw(st.integers(0, len(SEEDS) - 1))
    if draw(st.integers(0, 3)) == 0:
        text = SEEDS[index]  # the seed's own text: comments, flow style, anchors as written
    else:
        data = copy.deepcopy(SEED_DATA[index])
        for _ in range(draw(st.integers(1, 4))):
            data = draw(_data_mutation(data))
        text = _dump(data, draw(st.sampled_from(["yaml", "yaml", "json"])))
    return draw(_text_mutation(text))
