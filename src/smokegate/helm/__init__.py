"""Helm's own records: the release Secrets Helm (and Flux helm-controller, which embeds Helm)
writes for every revision. See ``smokegate.helm.release``."""

from smokegate.helm.release import (
    ChartMetadata,
    HelmHook,
    HelmReleaseRecord,
    ReleaseDecodeError,
    ReleaseRef,
    decode_release,
    encode_release,
    fetch_release,
    release_ref,
    shorten_name,
)

__all__ = [
    "ChartMetadata",
    "HelmHook",
    "HelmReleaseRecord",
    "ReleaseDecodeError",
    "ReleaseRef",
    "decode_release",
    "encode_release",
    "fetch_release",
    "release_ref",
    "shorten_name",
]
