"""``parse_url`` parses a URL's origin once per origin (a 10,000-row matrix hits one origin
with 10,000 queries): the result, and every error, is what the full parse gives."""

from __future__ import annotations

import pytest

from smokegate.httpclient import _url
from smokegate.httpclient._errors import InvalidURL

URLS = [
    "http://a/",
    "http://a",
    "http://a?x=1",
    "http://a/p?x=1#f",
    "http://a#f",
    "HTTP://A:80/x",
    "https://u:p@h:8443/p?q",
    "http://[::1]:8080/x?y",
    "http://h/é?ü=1",
    "http://h/p?",
    "http://h/p#a?b",
    "http://h//x",
    "http://h/a/../b?%20",
    "http://bücher.de/x?i=1",
    "http://h?x#y?z",
    # errors: the message names the whole URL, not its origin
    "http://h:99999/x",
    "http://h:x/",
    "ftp://h/",
    "http:///x",
    "http://h/ x",
    "http://h@/x",
]


def _fields(parse: object, url: str) -> tuple[object, ...]:
    try:
        t = parse(url)  # type: ignore[operator]
    except InvalidURL as exc:
        return ("error", str(exc))
    return (t.url, t.scheme, t.host, t.port, t.target, t.host_header, t.authorization, t.is_tls)


@pytest.mark.parametrize("url", URLS)
def test_origin_cache_parses_like_the_full_parse(url: str) -> None:
    _url._origins.clear()
    assert _fields(_url._parse_via_origin, url) == _fields(_url._parse, url)
    # And again with the origin cached.
    assert _fields(_url._parse_via_origin, url) == _fields(_url._parse, url)


def test_one_origin_is_parsed_once_for_many_queries() -> None:
    _url._origins.clear()
    targets = [_url.parse_url(f"http://127.0.0.1:8080/json?i={i}") for i in range(50)]
    assert list(_url._origins) == ["http://127.0.0.1:8080"]
    assert [t.target for t in targets[:2]] == ["/json?i=0", "/json?i=1"]
    assert {t.host_header for t in targets} == {"127.0.0.1:8080"}
