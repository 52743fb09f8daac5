"""The pre-merge layer: render and check a Flux GitOps repository before the merge.

``smokegate validate`` and ``smokegate diff`` are thin front ends (``smokegate.cli.premerge``)
over this package; nothing here prints, reads flags or imports the front end.

    repo.py       find Flux objects in a directory, build Kustomizations with `kubectl kustomize`
    kustomize.py  one Flux Kustomization -> its objects (wrapper kustomization, origins, postBuild)
    charts.py     HelmRelease -> chart (path in the repo, --chart-dir package, `helm pull`)
    strvals.py    Helm's --set parser (what helm-controller uses for valuesFrom targetPath)
    values.py     helm-controller's values merge (valuesFrom in order, then spec.values)
    render.py     `helm template` per HelmRelease, in parallel, with Flux's release naming
    schemas.py    offline JSON Schema validation: Kubernetes (kubernetes-validate's schemas),
                  bundled Flux CRDs, and CRDs found in the repo or its charts
    validate.py   the whole `validate` run -> a ValidationReport of located findings
    diff.py       two trees (git refs or directories) -> per-release/Kustomization changes
    redact.py     Secret data -> hash-marked placeholders; valuesFrom Secret values scrubbed
    suites.py     the repo's smokegate suites: lint, spec.release coverage
    reports.py    console / JUnit / Markdown / JSON renderings of both results
"""
