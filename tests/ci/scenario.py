"""The scenario the CI templates' tests share: a suite for podinfo that tests a real nginx (its
/json and /headers locations, tests/servers/nginx.py), the HelmRelease itself and a Secret.

With the defaults every check passes; ``--var expectedVersion=9.9.9`` fails `version`, and
``--var probePattern=^wrong$`` fails `api-key-echo`, whose message must then redact the Secret.
"""

from __future__ import annotations

SUITE = """\
apiVersion: smokegate.io/v1
kind: Suite
metadata:
  name: podinfo-smoke
spec:
  vars:
    base: http://127.0.0.1:1
    expectedVersion: "1.2.3"
    probePattern: "^tok-[0-9a-f]{24}$"
  checks:
    - name: status-json
      http:
        url: "${base}/json"
        expect:
          status: 200
          json: {"$.status": ok}

    - name: release-ready
      kube:
        ready: {kind: HelmRelease, name: "${release.name}"}

    - name: version
      http:
        url: "${base}/json"
        expect:
          json: {"$.version": "${expectedVersion}"}

    - name: api-key-echo
      http:
        url: "${base}/headers"
        headers: {X-Custom: "${secret:api/token}"}
        expect:
          json: {"$.x_custom": {regex: "${probePattern}"}}
"""


def line_of(text: str, needle: str) -> int:
    (number,) = [i for i, line in enumerate(text.splitlines(), 1) if line.strip() == needle]
    return number
