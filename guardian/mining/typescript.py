"""The TypeScript LanguageSpecs: `.ts`/`.mts`/`.cts` and `.tsx`, on the JavaScript rules.

On top of JavaScript: abstract classes, class fields holding functions with access modifiers
and types, member decorators (siblings of the member in the grammar, absorbed into its span)
and namespaces, which qualify the names inside them (`Geometry.area`) without being units.
Overload signatures, interface members and abstract methods have no body and are not units.
"""

from __future__ import annotations

import tree_sitter_typescript
from tree_sitter import Node

from guardian.mining import javascript as js
from guardian.mining.comments import comment_docstring
from guardian.mining.core import LanguageSpec, default_name

_QUERY = (
    js.BASE_QUERY
    + f"""
(abstract_class_declaration) @class
(class_body (public_field_definition value: {js.FUNCTION_VALUES}) @function)
(internal_module) @scope
"""
)


def _name(node: Node, source: bytes) -> str | None:
    if node.type == "internal_module":
        return default_name(node, source)
    return js.name_of(node, source)


def _spec(extensions: tuple[str, ...], grammar: object) -> LanguageSpec:
    return LanguageSpec(
        name="typescript",
        extensions=extensions,
        grammar=grammar,  # type: ignore[arg-type]
        query=_QUERY,
        signature=js.signature,
        docstring=comment_docstring,
        name_of=_name,
        outer=js.outer,
        qualifier=js.qualifier,
        leading_types=frozenset({"decorator"}),
        doc_comments=True,
        resync=js.RESYNC,
        test_globs=("*.test.*", "*.spec.*", "*_test.*"),
    )


SPEC = _spec((".ts", ".mts", ".cts"), tree_sitter_typescript.language_typescript)
TSX_SPEC = _spec((".tsx",), tree_sitter_typescript.language_tsx)
