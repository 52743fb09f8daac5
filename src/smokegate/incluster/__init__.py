"""Run suites inside the cluster as a Job (``smokegate run --in-cluster``): checks then see the
namespace's DNS, its NetworkPolicies and the service-mesh sidecar, as Helm tests do.

Entry points for front ends: ``incluster.api`` (``prepare``, ``execute``, ``run_in_cluster``).
``manifests`` builds the Job and the ConfigMap, ``bundle`` the suite files, ``follow`` follows
the pod and cleans up, ``podstate`` reads the pod's status. docs/in-cluster.md for users.
"""
