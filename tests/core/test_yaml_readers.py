"""The fast YAML reader (``suite.yamlc``, libyaml) against the reference (``suite.yamlrt``,
ruamel round-trip): same data, same value and key positions, same errors, on the same texts.

Each text is read by both readers directly; ``_fast`` also asserts that the fast reader took
the text itself (did not hand it back to ruamel), so the comparison is not vacuous.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest

from smokegate.api import plan_run
from smokegate.core.errors import SuiteError
from smokegate.suite import yamlc, yamlpos, yamlrt
from smokegate.suite.yamldoc import YamlSyntaxError

REPO = Path(__file__).resolve().parents[2]

MANY_FIELDS = """\
apiVersion: smokegate.io/v1
kind: Suite
metadata:
  name: shop
  labels: {team: shop, tier: "1"}
spec:
  defaults:
    timeout: 5s
    retry: {attempts: 3, interval: 1s}
  vars:
    base: http://127.0.0.1:9
    port: 8080
  checks:
    - name: healthz
      tags: [smoke, api]
      http:
        url: "${base}/healthz"
        method: GETT
        expectt:
          status: 2000
        headers:
          X-Flag: on
          X-Other: yes
    - name: flow
      http: {url: "${base}/x", expect: {status: 200, json: {"$.a": [1, 2, {b: c}]}}}
      retry: {attempts: many, intervall: 1s}
    - name: empty-values
      description:
      tcp:
        host:
        port: ${port}

    - &base
      name: anchored
      exec: {command: ["true"]}
      retry: {attempts: 2, interval: 1s}
    - <<: *base
      name: merged
      timeout: 1s
    - name: block
      description: |
        several
        lines
      exec:
        command: >-
          folded
          text
        expect: {exitCode: 0, stdout: 'single ''quoted'''}
    - {name: all-flow, exec: {command: [a, b]}, tags: [x], timeout: 0o10}
"""

FLOW = (
    "{apiVersion: smokegate.io/v1, kind: Suite, metadata: {name: f}, spec: {checks: [\n"
    '  {name: a, http: {url: "http://x", expect: {status: 200,}}}, {name: b, unknownn: 1}]}}\n'
)

MULTI = """\
# two suites in one file
---
apiVersion: smokegate.io/v1
kind: Suite
metadata: {name: one}
spec: {checks: [{name: a, exec: {command: ["true"]}, timeoutt: 1s}]}
...
---
apiVersion: smokegate.io/v1
kind: Suite
metadata:
  name: two
spec:
  checks:
    - name: b
      exec: {command: ["true"], expectt: {}}
---
"""

EDGE_CASES = [
    MANY_FIELDS,
    FLOW,
    MULTI,
    "\ufeff" + MANY_FIELDS,  # a UTF-8 byte-order mark
    MANY_FIELDS.replace("\n", "\r\n"),  # Windows line ends
    "a:\nb:\n  c:\n  d:\n\ne: [x: , y]\nf: {g: , h}\n",  # empty values, block and flow
    "k: &a {x: 1}\nl: *a\nm: [*a, *a]\nn:\n  <<: [*a, {y: 2, x: 3}]\n  z: 0\n",  # aliases, merges
    "q: 'it''s'\nr: \"\\u00e9\\n\"\ns: plain multi\n  line\nt: é😀 unicode\nu: |2\n   indented\n",
    "- 1\n- -2\n- 0x1F\n- 0o17\n- 010\n- 1_000\n- 1e3\n- .5\n- -.inf\n- .NaN\n- ~\n- null\n- True",
    "- on\n- off\n- yes\n- no\n- y\n- n\n- ON\n- Yes\n- true\n- FALSE\n- 1:30\n- 0b101",
    "1: int key\n2.5: float key\nnull: null key\nfalse: bool key\n",
    "just a scalar\n",
    "[top, level, list]\n",
]


def _norm(value: Any) -> Any:
    """Data with its types (``1`` and ``True`` differ), NaN made comparable."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, dict):
        # Keys: ruamel keeps its str/float subclasses there (equal, same hash): compare bases.
        return [(_base(k), k, _norm(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_norm(v) for v in value]
    if type(value).__module__.startswith("ruamel"):  # TaggedScalar & co. compare by identity
        return (type(value).__name__, repr(value))
    return (type(value).__name__, value)


def _base(key: Any) -> str:
    return next(t.__name__ for t in (bool, int, float, str) if isinstance(key, t))


def _read(reader: Any, text: str) -> Any:
    try:
        docs = reader.load_documents(text, "suite.yaml")
    except YamlSyntaxError as exc:
        return ("error", [str(p) for p in exc.problems])
    return [(_norm(d.data), d.positions, d.key_positions) for d in docs]


def _fast(text: str) -> Any:
    return _read(yamlc, text)  # raises Unsupported if the fast reader handed the text back


@pytest.mark.parametrize("text", EDGE_CASES, ids=range(len(EDGE_CASES)))
def test_fast_reader_gives_the_reference_data_and_positions(text: str) -> None:
    fast = _fast(text)
    assert fast == _read(yamlrt, text)
    assert fast and fast[0][1]  # positions were recorded


def test_many_problems_are_reported_at_the_same_positions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole way through (parse, validate, compile): the same problems at the same
    file:line:col, whichever reader read the suite."""
    suite = tmp_path / "suite.yaml"
    suite.write_text(MANY_FIELDS + FLOW.replace("{apiVersion", "\n---\n{apiVersion"))

    def problems() -> list[str]:
        with pytest.raises(SuiteError) as err:
            plan_run([str(suite)], lint=True)
        return [str(p) for p in err.value.problems]

    fast = problems()

    def handed_back(text: str, file: str) -> Any:
        raise yamlc.Unsupported

    monkeypatch.setattr(yamlc, "load_documents", handed_back)
    reference = problems()
    assert fast == reference
    assert len(fast) >= 6  # the misspellings, bad values, unknown fields are all there
    assert f"{suite}:19:9: unknown field 'expectt'" in "\n".join(fast)


def test_every_yaml_file_of_the_repository_reads_the_same() -> None:
    files = [
        p
        for top in ("examples", "deploy", "tests", "src", "docs", "ci")
        for p in (REPO / top).rglob("*.y*ml")
        if p.is_file()
    ]
    assert len(files) > 20
    fast_count = 0
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert _read(yamlpos, text) == _read(yamlrt, text), path
        try:
            yamlc.load_documents(text, "x")
            fast_count += 1
        except (yamlc.Unsupported, YamlSyntaxError):
            pass
    assert fast_count > len(files) // 2  # most of them really took the fast path


def test_broken_texts_give_ruamels_errors_word_for_word() -> None:
    """Mutated suites (characters deleted, inserted, moved): whatever the result - data or a
    YAML error - it is the reference reader's, positions included."""
    rnd = random.Random(13)
    alphabet = [" ", "\n", ":", "-", "{", "}", "[", "]", ",", "#", "&a ", "*a", '"', "'"]
    alphabet += ["? ", "<<: ", "|", ">", "~", "!", "on", "1e3", "\r\n", "é", "\t", "%"]
    bases = [MANY_FIELDS, FLOW, MULTI]
    errors = 0
    for _ in range(150):
        text = rnd.choice(bases)
        for _ in range(rnd.randint(1, 3)):
            i = rnd.randrange(len(text) + 1)
            if rnd.random() < 0.5:
                text = text[:i] + text[i + 1 :]
            else:
                text = text[:i] + rnd.choice(alphabet) + text[i:]
        reference = _read(yamlrt, text)
        errors += reference[0] == "error"
        assert _read(yamlpos, text) == reference, text
    assert errors > 10  # the mutations did break some texts


def test_yaml_1_2_meaning_not_pyyaml_1_1() -> None:
    """`on`/`yes`/`no` stay strings, `010` is ten, `1e3` a number: what ruamel (YAML 1.2) always
    made of them, not what PyYAML's YAML 1.1 resolver would (True, 8, '1e3')."""
    doc = yamlpos.load_documents(
        "a: on\nb: yes\nc: no\nd: off\ne: y\nf: 010\ng: 1e3\nh: 0o10\ni: true\nj: 1:30\n", "f"
    )[0]
    assert doc.data == {
        "a": "on",
        "b": "yes",
        "c": "no",
        "d": "off",
        "e": "y",
        "f": 10,
        "g": 1000.0,
        "h": 8,
        "i": True,
        "j": "1:30",
    }


def test_a_header_written_on_keeps_its_text(tmp_path: Path) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text(
        "apiVersion: smokegate.io/v1\nkind: Suite\nmetadata: {name: s}\nspec:\n  checks:\n"
        "    - name: h\n      http:\n        url: http://127.0.0.1:9/\n"
        "        headers: {X-Feature: on, X-Debug: no}\n"
    )
    [check] = plan_run([str(suite)]).checks
    assert check.spec.headers == {"X-Feature": "on", "X-Debug": "no"}


def test_anchored_boolean_stays_a_boolean() -> None:
    """Regression: ruamel keeps an anchored `true` as ScalarBoolean, an int subclass, which the
    old conversion turned into 1."""
    text = "a: &t true\nb: *t\nc: &f false\n"
    for reader in (yamlc, yamlrt):
        data = reader.load_documents(text, "f")[0].data
        assert data == {"a": True, "b": True, "c": False}
        assert all(type(v) is bool for v in data.values())


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\n\tb: 2\n",  # a tab: ruamel refuses it where libyaml would not
        "kind: Ro\tle\n",
        "%YAML 1.1\n---\na: on\n",  # a directive changes the meaning
        "a: !!str 1\n",  # explicit tags
        "a: 2024-01-01\n",  # timestamps
        "a: 1\na: 2\n",  # duplicate keys
        "a: [unclosed\nb: 1\n",  # YAML errors
        "a: \u2028b\n",  # a YAML 1.1 line break
    ],
)
def test_what_the_fast_reader_hands_back(text: str) -> None:
    with pytest.raises(yamlc.Unsupported):
        yamlc.load_documents(text, "f")
    assert _read(yamlpos, text) == _read(yamlrt, text)


def test_tab_and_duplicate_key_errors_are_ruamels() -> None:
    assert _read(yamlpos, "kind: Ro\tle\n") == (
        "error",
        [
            "suite.yaml:1:9: YAML: while scanning for the next token found character '\\t' "
            "that cannot start any token"
        ],
    )
    assert _read(yamlpos, "a: 1\nb: 2\na: 3\n") == (
        "error",
        ['suite.yaml:3:1: YAML: duplicate key "a"'],
    )


def test_non_utf8_file_is_a_located_error_not_a_traceback(tmp_path: Path) -> None:
    suite = tmp_path / "latin1.yaml"
    text = "apiVersion: smokegate.io/v1\nkind: Suite\nmetadata: {name: é}\n"
    suite.write_bytes(text.encode("latin-1"))
    with pytest.raises(SuiteError) as err:
        plan_run([str(suite)])
    # At the first byte that is not UTF-8: line 3, column 18 (the é).
    assert f"{suite}:3:18: not UTF-8 text (byte 0xe9)" in str(err.value)


def test_fast_reader_refuses_an_alias_bomb_at_the_same_position() -> None:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 9):
        lines.append(f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * 9)}]")
    text = "\n".join(lines) + "\n"
    fast = _read(yamlc, text)
    assert fast == _read(yamlrt, text)
    assert fast[0] == "error" and "aliases expand to more than 100,000 values" in fast[1][0]
