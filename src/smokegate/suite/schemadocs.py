"""Field docstrings as JSON Schema descriptions, read only when a schema is generated.

A suite model documents a field with the string under it (``timeout: Duration = 10.0`` then
``\"\"\"Per-attempt timeout.\"\"\"``). pydantic can pick those up itself
(``use_attribute_docstrings``), but it does so for every model class when the class is created:
it finds and parses the class's source, which every ``smokegate run`` paid at start-up for the
one command (``smokegate schema``) that shows them. ``DocumentedSchema`` adds them while the
schema is generated, as pydantic put them: a field's docstring is its description (over the one
its type brings, e.g. ``Duration``'s); a subclass's docstring wins over its base's.
tests/core/test_loader.py compares the result with pydantic's own extraction.
"""

from __future__ import annotations

import functools

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """``field name -> docstring`` for a model class and its bases (the class's own win)."""
    from pydantic._internal._docs_extraction import extract_docstrings_from_cls

    docs: dict[str, str] = {}
    for base in reversed(cls.__mro__):
        if isinstance(base, type) and issubclass(base, BaseModel) and base is not BaseModel:
            docs.update(extract_docstrings_from_cls(base, use_inspect=True))
    return docs


class DocumentedSchema(GenerateJsonSchema):
    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        out = super().model_schema(schema)
        cls = schema["cls"]
        properties = out.get("properties")
        if not isinstance(properties, dict) or not issubclass(cls, BaseModel):
            return out
        docs = field_docs(cls)
        for name, info in cls.model_fields.items():
            key = (info.alias or name) if self.by_alias else name
            prop = properties.get(key)
            if name in docs and isinstance(prop, dict):
                # (Over a description its type brings, e.g. `Duration`'s, as pydantic did.)
                prop["description"] = docs[name]
        return out
