"""``-k CHECK/CASE``: the engine's selection narrows a suite-running check to some of its test
cases (plain planned checks, no I/O)."""

from __future__ import annotations

from smokegate.core.cases import Case
from smokegate.core.selection import Selection
from smokegate.engine.select import select
from smokegate.suite.loader import PlannedCheck
from smokegate.suite.model import RetryPolicy


def planned(name: str, suite: str = "shop", needs: tuple[str, ...] = ()) -> PlannedCheck:
    return PlannedCheck(
        f"{suite}/{name}", name, suite, "pytest", None, (), needs, 5.0, RetryPolicy(), ""
    )


CHECKS = [
    planned("healthz"),
    planned("functional", needs=("shop/healthz",)),
    planned("api/v2"),  # a name with a slash
]


def picked(*patterns: str) -> dict[str, tuple[str, ...]]:
    return {c.id: c.cases for c in select(CHECKS, Selection(patterns)).checks}


def test_check_slash_case_narrows_that_check_only() -> None:
    assert picked("functional/test_login*") == {
        "shop/healthz": (),  # pulled in by `needs`, whole
        "shop/functional": ("test_login*",),
    }
    assert picked("shop/functional/*.test_cart.*") == {
        "shop/healthz": (),
        "shop/functional": ("*.test_cart.*",),
    }
    assert picked("func*/a", "functional/b")["shop/functional"] == ("a", "b")


def test_a_whole_check_is_never_read_as_a_case() -> None:
    assert picked("shop/functional") == {"shop/healthz": (), "shop/functional": ()}
    assert picked("api/v2") == {"shop/api/v2": ()}  # the name, not check `api` case `v2`
    assert picked("api/v2/test_x") == {"shop/api/v2": ("test_x",)}
    # Named whole by one pattern and narrowed by another: whole wins.
    assert picked("functional", "functional/test_x") == {
        "shop/healthz": (),
        "shop/functional": (),
    }
    assert picked("nothing/here") == {}
    assert picked("functional/") == {}  # an empty case pattern selects nothing


def test_bang_check_slash_case_runs_the_check_without_those_cases() -> None:
    assert picked("!functional/*slow*") == {
        "shop/healthz": (),
        "shop/functional": ("!*slow*",),
        "shop/api/v2": (),
    }
    assert picked("functional/test_a*", "!functional/test_ab")["shop/functional"] == (
        "test_a*",
        "!test_ab",
    )
    assert picked("!shop/functional") == {"shop/healthz": (), "shop/api/v2": ()}


def test_cases_match_name_or_classname_dot_name() -> None:
    case = Case("test_login", "tests.test_auth")
    assert case.matches("test_login") and case.matches("tests.test_auth.test_login")
    assert case.matches("*auth*") and case.matches("test_log*")
    assert not case.matches("test_logout")
