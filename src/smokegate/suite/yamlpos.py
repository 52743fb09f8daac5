"""YAML loading that remembers where every value came from (``file:line:col`` errors).

``load_documents`` reads with the fast reader (``suite.yamlc``: libyaml, YAML 1.2 meaning) and
hands the texts it leaves alone - YAML errors, duplicate keys, explicit tags, directives - to the
reference reader (``suite.yamlrt``: ruamel.yaml round-trip), so their messages and positions are
ruamel's as before. Both give the same ``Document`` (``suite.yamldoc``), re-exported here.
"""

from __future__ import annotations

from smokegate.suite import yamlc, yamlrt
from smokegate.suite.yamldoc import (
    MAX_ALIAS_VALUES,
    MAX_NESTING,
    Document,
    Path,
    YamlSyntaxError,
    paused_gc,
    too_deep_in_text,
    walk,
)

__all__ = [
    "MAX_ALIAS_VALUES",
    "MAX_NESTING",
    "Document",
    "Path",
    "YamlSyntaxError",
    "load_documents",
    "walk",
]


def load_documents(text: str, file: str) -> list[Document]:
    """Parse every YAML document in ``text``. Raises ``YamlSyntaxError`` with a position."""
    with paused_gc():
        try:
            return yamlc.load_documents(text, file)
        except yamlc.Unsupported:
            pass
        # ruamel is quadratic in flow depth: a text that may nest too deep is checked first
        # with libyaml's event stream (cheap next to ruamel).
        if text.count("[") + text.count("{") > MAX_NESTING:
            error = too_deep_in_text(text, file)
            if error is not None:
                raise error
        return yamlrt.load_documents(text, file)
