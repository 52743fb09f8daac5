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
    Document,
    Path,
    YamlSyntaxError,
    paused_gc,
    walk,
)

__all__ = [
    "MAX_ALIAS_VALUES",
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
            return yamlrt.load_documents(text, file)
