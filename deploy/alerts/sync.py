#!/usr/bin/env python3
"""Write the copies of smokegate.rules.yaml (the one source of smokegate's alerts):

* deploy/alerts/prometheusrule.yaml, a Prometheus Operator PrometheusRule with the same groups;
* deploy/chart/smokegate/files/smokegate.rules.yaml, which the chart's PrometheusRule renders
  (Helm cannot read files outside the chart).

Run it after editing smokegate.rules.yaml; tests/chart/test_alerts.py fails while a copy differs.
Text in, text out (no YAML round trip), so the copies keep the comments and the layout.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "smokegate.rules.yaml"
CHART_COPY = HERE.parent / "chart" / "smokegate" / "files" / "smokegate.rules.yaml"
OPERATOR_COPY = HERE / "prometheusrule.yaml"

HEADER = """\
# smokegate's alerts as a Prometheus Operator PrometheusRule, for clusters without the chart
# (the chart has metrics.prometheusRule.enabled). Generated from smokegate.rules.yaml by
# `python3 deploy/alerts/sync.py`: edit that file, not this one.
#   kubectl apply -n monitoring -f deploy/alerts/prometheusrule.yaml
# Your Prometheus selects rules by label (ruleSelector): add the label it expects.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: smokegate
  labels:
    app.kubernetes.io/name: smokegate
spec:
"""


def rules_body(text: str) -> str:
    """From `groups:` on (the leading comments describe the file itself)."""
    start = text.index("\ngroups:") + 1
    return text[start:]


def operator_rule(text: str) -> str:
    body = rules_body(text)
    return HEADER + "".join(f"  {line}" if line.strip() else line for line in body.splitlines(True))


def main() -> int:
    text = SOURCE.read_text(encoding="utf-8")
    CHART_COPY.parent.mkdir(parents=True, exist_ok=True)
    CHART_COPY.write_text(text, encoding="utf-8")
    OPERATOR_COPY.write_text(operator_rule(text), encoding="utf-8")
    print(f"wrote {CHART_COPY.relative_to(HERE.parents[1])} and {OPERATOR_COPY.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
