"""Suite files: ``yamlpos`` (YAML with line/column on every node), ``model`` (pydantic models,
one per check kind, assembled from the registry), ``parse`` (files -> ``RawSuite``),
``interpolate`` (``${var}``, ``${env:…}``, ``${secret:…}``, redaction), ``loader`` (compile:
vars, matrices, reused blocks, ``needs`` -> ``Suite`` and ``PlannedCheck``)."""
