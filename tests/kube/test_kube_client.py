"""``KubeClient``'s list, delete, log and replace against the real apiserver: plain dicts in and
out, label selectors as mappings or pairs, and every failure a ``KubeError`` naming the object
and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures_flux import kubeconfig_fixture  # noqa: F401
from kubeenv import KubeEnv
from lightkube import operators

from smokegate.kube.client import BUILTIN, POD, KubeClient, KubeError, KubeOptions

CONFIGMAP = BUILTIN["configmap"]
NAMESPACE = BUILTIN["namespace"]


def _client(kubeconfig: str, ns: str) -> KubeClient:
    return KubeClient.from_options(KubeOptions(kubeconfig=kubeconfig, namespace=ns))


async def test_list_delete_replace_and_log(
    kube_env: KubeEnv, kube_namespace: str, kubeconfig: str, tmp_path: Path
) -> None:
    ns = kube_namespace
    for name, labels in (("a", "app=web,tier=x"), ("b", "app=web"), ("c", "app=db")):
        kube_env.kubectl("create", "configmap", name, "-n", ns, "--from-literal=k=v")
        kube_env.kubectl("label", "configmap", name, "-n", ns, *labels.split(","))
    client = _client(kubeconfig, ns)
    try:
        names = lambda items: sorted(i["metadata"]["name"] for i in items)  # noqa: E731
        assert names(await client.list(CONFIGMAP)) == ["a", "b", "c"]  # the default namespace
        assert names(await client.list(CONFIGMAP, ns, {"app": "web"})) == ["a", "b"]
        pairs = [("app", "web"), ("tier", operators.exists())]
        assert names(await client.list(CONFIGMAP, ns, pairs)) == ["a"]
        assert names(await client.list(CONFIGMAP, ns, {"app": operators.in_(["db"])})) == ["c"]
        kube_env.kubectl("label", "namespace", ns, f"smokegate-test={ns}")
        found = await client.list(NAMESPACE, labels={"smokegate-test": ns})
        assert names(found) == [ns]  # cluster-scoped: no namespace in the request
        assert isinstance(found[0]["metadata"], dict)

        # replace: optimistic concurrency through metadata.resourceVersion
        cm = await client.get(CONFIGMAP, "a", ns)
        stale = dict(cm, data={"k": "stale"})
        cm["data"] = {"k": "new"}
        updated = await client.replace(CONFIGMAP, cm)
        assert updated["data"] == {"k": "new"}
        with pytest.raises(KubeError) as conflict:
            await client.replace(CONFIGMAP, stale)
        assert conflict.value.code == 409
        assert str(conflict.value).startswith(f"updating configmap {ns}/a: ")
        assert (await client.get(CONFIGMAP, "a", ns))["data"] == {"k": "new"}

        # delete: True once, then False (already gone)
        assert await client.delete(CONFIGMAP, "b", ns, grace_period=0) is True
        assert await client.delete(CONFIGMAP, "b", ns) is False
        assert names(await client.list(CONFIGMAP, ns)) == ["a", "c"]

        # log: no such pod (no kubelet runs here, so no pod ever has a log)
        with pytest.raises(KubeError) as missing:
            await client.log("nope", ns, "main", tail_lines=10)
        assert missing.value.not_found
        assert str(missing.value) == f"log of pod {ns}/nope container main: not found"
    finally:
        await client.close()


async def test_verbs_name_the_object_when_forbidden(
    kube_env: KubeEnv, kube_namespace: str, tmp_path: Path
) -> None:
    from fixtures_flux import write_kubeconfig_for_token

    ns = kube_namespace
    kube_env.kubectl("create", "serviceaccount", "nobody", "-n", ns)
    token = kube_env.kubectl("create", "token", "nobody", "-n", ns).stdout.strip()
    config = write_kubeconfig_for_token(kube_env, tmp_path / "nobody.kubeconfig", token, ns)
    client = _client(str(config), ns)
    try:
        with pytest.raises(KubeError) as listing:
            await client.list(CONFIGMAP, ns, {"app": "web"})
        assert listing.value.forbidden
        text = str(listing.value)
        assert text.startswith(f"listing configmaps in namespace {ns}: forbidden: ")
        assert 'cannot list resource "configmaps"' in text
        with pytest.raises(KubeError, match=rf"^deleting configmap {ns}/a: forbidden: "):
            await client.delete(CONFIGMAP, "a", ns)
        with pytest.raises(KubeError, match=rf"^log of pod {ns}/p container c: forbidden: "):
            await client.log("p", ns, "c")
        body = {"metadata": {"name": "a", "namespace": ns}, "data": {}}
        with pytest.raises(KubeError, match=rf"^updating configmap {ns}/a: forbidden: "):
            await client.replace(CONFIGMAP, body)
        with pytest.raises(KubeError, match=r"^listing pods in namespace .*: forbidden"):
            await client.list(POD, ns)
    finally:
        await client.close()
