"""The Flux event parser and HMAC verification (no server needed)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from smokegate.core.secrets import Secret
from smokegate.server.hooks import HookError, parse_event, read_body, sign, verify_signature
from tests.server.support import flux_event, signature


@pytest.mark.parametrize("prefixed", [False, True])
def test_both_metadata_shapes_give_the_revision(prefixed: bool) -> None:
    event = parse_event(flux_event(revision="6.6.2", prefixed=prefixed))
    assert (event.kind, event.release, event.reason, event.revision) == (
        "HelmRelease",
        "apps/podinfo",
        "UpgradeSucceeded",
        "6.6.2",
    )


def test_signature_is_checked_over_the_raw_body() -> None:
    body = flux_event()
    keys = [Secret("old-key"), Secret("flux-hmac-secret")]  # rotation: any key may match
    verify_signature(body, signature(body), keys)
    assert sign(body, "flux-hmac-secret") == signature(body)
    for algo in ("sha224", "sha384", "sha512"):  # Flux's documented verifier accepts these
        digest = hmac.new(b"old-key", body, getattr(hashlib, algo)).hexdigest()
        verify_signature(body, f"{algo}={digest}", keys)
    bad = [
        (None, "missing X-Signature"),
        ("", "missing X-Signature"),
        ("sha256=" + "0" * 64, "does not match"),
        ("md5=abc", "must be"),
        ("nonsense", "must be"),
        (signature(body + b" "), "does not match"),  # re-serialised JSON is another body
    ]
    for header, why in bad:
        with pytest.raises(HookError, match=why) as info:
            verify_signature(body, header, keys)
        assert info.value.status == 401
        assert "flux-hmac-secret" not in info.value.message


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"{", "not JSON"),
        (b"[]", "JSON object"),
        (b'{"reason": "x"}', "involvedObject"),
        (b'{"involvedObject": {"kind": "HelmRelease", "name": "x"}}', "namespace"),
        (
            b'{"involvedObject": {"kind": "H", "namespace": "a", "name": "b"}, "metadata": 1}',
            "metadata",
        ),
    ],
)
def test_malformed_events_are_400(body: bytes, why: str) -> None:
    with pytest.raises(HookError, match=why) as info:
        parse_event(body)
    assert info.value.status == 400


async def test_body_limit_checks_the_declared_length_then_the_stream() -> None:
    async def chunks(*parts: bytes):  # type: ignore[no-untyped-def]
        for p in parts:
            yield p

    assert await read_body(chunks(b"ab", b"cd"), None, 10) == b"abcd"
    with pytest.raises(HookError) as info:
        await read_body(chunks(b"x"), "11", 10)
    assert info.value.status == 413
    with pytest.raises(HookError) as info:
        await read_body(chunks(b"123456", b"789012"), None, 10)  # chunked, no length
    assert info.value.status == 413
