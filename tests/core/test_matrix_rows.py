"""Matrix rows built from a template compiled once (``suite.matrixrow``) are the checks the
full per-row expansion builds, and a bad value in one row is reported exactly as before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from smokegate.api import plan_run
from smokegate.core.errors import SuiteError
from smokegate.suite import matrixrow

MATRIX = """\
apiVersion: smokegate.io/v1
kind: Suite
metadata: {name: m}
spec:
  vars: {host: "127.0.0.1", token: abc}
  defaults: {timeout: 3s, retry: {attempts: 2}}
  checks:
    - name: page
      matrix: {i: {range: [0, 5]}, path: [a, "b c"]}
      tags: [smoke, "t-${i}"]
      retry: {interval: 1s}
      http:
        url: "http://${host}:8080/${path}?i=${i}"
        method: GET
        headers: {X-Row: "r-${i}", Authorization: "Bearer ${token}"}
        query: {fixed: "1"}
        expect:
          status: 200
          json: {"$.i": "${i}", "$.ok": true}
    - name: port-${p}
      matrix: {p: [80, 8080]}
      tcp: {host: "${host}", port: "${p}"}
    - name: plain
      needs: [page]
      exec: {command: ["true"]}
"""


def _full_way(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(matrixrow.RowTemplate, "usable", staticmethod(lambda entry, kind: False))


def _plan(suite: Path) -> list[Any]:
    return [
        (
            c.id,
            c.name,
            c.kind,
            c.spec.model_dump(),
            sorted(c.spec.model_fields_set),
            c.tags,
            c.needs,
            c.timeout,
            c.retry.model_dump(),
            c.source,
            c.skip,
        )
        for c in plan_run([str(suite)]).checks
    ]


def test_rows_from_the_template_equal_the_full_expansion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = tmp_path / "m.yaml"
    suite.write_text(MATRIX)
    expansions: list[int] = []
    real = matrixrow.RowTemplate.expand

    def counting(self: matrixrow.RowTemplate, scope: Any, path: Any) -> Any:
        expansions.append(1)
        return real(self, scope, path)

    monkeypatch.setattr(matrixrow.RowTemplate, "expand", counting)
    fast = _plan(suite)
    assert len(expansions) == 9 + 1  # every row but each entry's first came from a template
    assert len(fast) == 10 + 2 + 1
    assert fast[3][1] == "page[i=1,path=b c]"
    assert fast[3][3]["headers"] == {"X-Row": "r-1", "Authorization": "Bearer abc"}
    assert fast[3][3]["url"] == "http://127.0.0.1:8080/b c?i=1"
    _full_way(monkeypatch)
    assert _plan(suite) == fast


@pytest.mark.parametrize(
    ("block", "where", "message"),
    [
        # a bad URL in row 2 (and 3): each row's own value
        ('http:\n        url: "http://${v}"\n', "9:14", "url must be http:// or https://"),
        ('tcp:\n        host: x\n        port: "${v}"\n', "10:15", "port: Input should be"),
    ],
)
def test_a_bad_row_is_reported_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: str, where: str, message: str
) -> None:
    suite = tmp_path / "bad.yaml"
    suite.write_text(
        "apiVersion: smokegate.io/v1\nkind: Suite\nmetadata: {name: b}\nspec:\n  checks:\n"
        '    - name: row\n      matrix: {v: ["80", "bad host", "x y"]}\n'
        f"      {block}"
    )

    def problems() -> list[str]:
        with pytest.raises(SuiteError) as err:
            plan_run([str(suite)])
        return [str(p) for p in err.value.problems]

    fast = problems()
    _full_way(monkeypatch)
    assert fast == problems()
    assert len(fast) == 1  # the first bad row stops the entry, as before
    assert fast[0].startswith(f"{suite}:{where}: ") and message in fast[0]
