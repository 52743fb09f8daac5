"""Functional tests of the shop API, run by the suite's `pytest` check. smokegate hands the
suite's vars over as SMOKEGATE_* environment variables."""

import json
import os
import urllib.request

BASE = os.environ.get("SMOKEGATE_BASE_URL", "http://127.0.0.1:8080")


def get(path: str) -> tuple[int, dict]:
    with urllib.request.urlopen(BASE + path, timeout=10) as resp:
        return resp.status, json.loads(resp.read())


def test_healthz_reports_ok() -> None:
    assert get("/healthz") == (200, {"status": "ok"})


def test_version_is_the_expected_release() -> None:
    _, body = get("/version")
    assert body["version"] == os.environ.get("SMOKEGATE_VERSION", body["version"])


def test_items_have_ids_and_names() -> None:
    _, body = get("/api/items")
    assert body["items"], "no items"
    assert all({"id", "name"} <= set(item) for item in body["items"])


def test_items_total_matches_the_list() -> None:
    _, body = get("/api/items")
    assert body["total"] == len(body["items"])
