"""Child results through the in-cluster Job runner: a ``junit`` check whose command needs no
file outside the suite runs in the pod (here: the real ``smokegate`` of this checkout, run by
the test's stand-in kubelet, incluster_kubelet.py), and its test cases come back in the report
the pod prints, into every local report."""

from __future__ import annotations

import junitparser
from incluster_support import Cluster

SUITE = """\
apiVersion: smokegate.io/v1
kind: Suite
metadata: {name: unit}
spec:
  checks:
    - name: tests
      junit:
        command: |
          cat > $SMOKEGATE_RESULTS_DIR/junit.xml <<EOF
          <testsuite name="u"><testcase classname="pod" name="ok"/>
          <testcase classname="pod" name="bad"><failure message="ran in $MY_POD"/></testcase>
          </testsuite>
          EOF
        env: {MY_POD: "the pod"}
"""


def test_cases_come_back_from_the_pod(cluster: Cluster) -> None:
    cluster.suite(SUITE, "unit.yaml")
    junit_path = cluster.tmp_path / "junit.xml"
    r = cluster.run(
        "unit.yaml", "--service-account", "smokegate", "--report", f"junit={junit_path}", code=1
    )
    cases = r.results["unit/tests"]["cases"]
    assert [(c["name"], c["status"]) for c in cases] == [("ok", "passed"), ("bad", "failed")]
    assert cases[1]["message"] == "ran in the pod"
    assert "pod.bad" in r.out  # the pod's console lists the failing case
    (suite,) = junitparser.JUnitXml.fromfile(str(junit_path))
    assert [c.name for c in suite] == ["tests", "tests/pod.ok", "tests/pod.bad"]
