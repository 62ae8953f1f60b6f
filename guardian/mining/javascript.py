"""The JavaScript LanguageSpec (.js .mjs .cjs .jsx); its helpers are shared with TypeScript.

Units: function and generator declarations, classes (declared or `const A = class {}`), class
methods, class fields holding functions, functions and arrows bound to a name (`const f = () =>
...`, `exports.f = function () {}`, `Foo.prototype.m = ...`) and anonymous default exports
(named `default`). Object-literal members and inline callbacks are not units. A unit's span
includes `export`, the whole `const ...;` statement when it binds only that function, and the
doc comment above it, whose text becomes the docstring. Nested functions are qualified by dots
(`outer.inner`), class members by their class (`Widget.render`).
"""

from __future__ import annotations

import tree_sitter_javascript
from tree_sitter import Node

from guardian.mining.comments import comment_docstring
from guardian.mining.core import LanguageSpec
from guardian.mining.syntax import header_signature, line_resync, node_text

FUNCTION_VALUES = "[(arrow_function) (function_expression) (generator_function)]"

BASE_QUERY = f"""
(function_declaration) @function
(generator_function_declaration) @function
(class_declaration) @class
(class_body (method_definition) @function)
(variable_declarator name: (identifier) value: {FUNCTION_VALUES}) @function
(variable_declarator name: (identifier) value: (class)) @class
(assignment_expression
  left: [(identifier) (member_expression)] right: {FUNCTION_VALUES}) @function
(export_statement value: {FUNCTION_VALUES} @function)
(export_statement value: (class) @class)
"""

_QUERY = BASE_QUERY + f"(class_body (field_definition value: {FUNCTION_VALUES}) @function)\n"

_DECLARATIONS = frozenset({"lexical_declaration", "variable_declaration"})
_ANONYMOUS = frozenset({"function_expression", "arrow_function", "generator_function", "class"})
_FIELDS = frozenset({"field_definition", "public_field_definition"})
_NO_QUALIFIER = frozenset({"exports", "module.exports", "this", "window", "globalThis"})
SKIP = frozenset({"decorator"})
RESYNC = line_resync(
    rb"^(?:export[ \t]+(?:default[ \t]+)?)?(?:declare[ \t]+)?(?:async[ \t]+)?"
    rb"(?:function|class|abstract[ \t]+class|const|let|var|namespace)\b"
)


def _field_name_node(node: Node) -> Node | None:
    t = node.type
    if t == "variable_declarator":
        return node.child_by_field_name("name")
    if t == "assignment_expression":
        left = node.child_by_field_name("left")
        if left is None or left.type == "identifier":
            return left
        return left.child_by_field_name("property")
    if t == "field_definition":
        return node.child_by_field_name("property")
    return node.child_by_field_name("name")


def name_of(node: Node, source: bytes) -> str | None:
    """The unit's name: declared name, bound variable, assigned property, or `default`."""
    if node.type in _ANONYMOUS and node.parent is not None:
        if node.parent.type == "export_statement":
            return "default"
    name = _field_name_node(node)
    if name is None or name.is_missing or name.has_error:
        return None
    text = node_text(name, source)
    if name.type == "string":
        text = text[1:-1]
    return text or None


def qualifier(node: Node, source: bytes) -> str | None:
    """For `Foo.bar = ...` and `Foo.prototype.bar = ...`, the owner `Foo`; else None."""
    if node.type != "assignment_expression":
        return None
    left = node.child_by_field_name("left")
    if left is None or left.type != "member_expression":
        return None
    owner = left.child_by_field_name("object")
    if owner is None:
        return None
    text = node_text(owner, source)
    if text.endswith(".prototype"):
        text = text[: -len(".prototype")]
    if text in _NO_QUALIFIER or not text.replace(".", "").replace("_", "").isalnum():
        return None
    return text


def outer(node: Node) -> Node:
    """The statement a unit's code spans: with `export`, and `const f = ...;` for one binding."""
    cur = node
    parent = node.parent
    if node.type == "variable_declarator":
        if parent is None or parent.type not in _DECLARATIONS:
            return node
        declarators = [c for c in parent.named_children if c.type == "variable_declarator"]
        if len(declarators) != 1:
            return node
        cur = parent
    elif node.type == "assignment_expression":
        if parent is None or parent.type != "expression_statement":
            return node
        cur = parent
    wrapper = cur.parent
    if wrapper is not None and wrapper.type == "export_statement":
        return wrapper
    return cur


def _function_body_start(value: Node) -> int:
    body = value.child_by_field_name("body")
    return body.start_byte if body is not None else value.end_byte


def signature(node: Node, source: bytes) -> str:
    """One-line header: `function f(a, b = 1)`, `const f = async (x: T): U =>`, `class A<T>`."""
    t = node.type
    if t == "variable_declarator":
        value = node.child_by_field_name("value")
        stop = _function_body_start(value) if value is not None else node.end_byte
        head = header_signature(node, source, stop=stop, skip=SKIP)
        decl = node.parent
        keyword = ""
        if decl is not None and decl.type in _DECLARATIONS and decl.children:
            keyword = node_text(decl.children[0], source)
        return f"{keyword} {head}".strip()
    if t in _FIELDS or t == "assignment_expression":
        value = node.child_by_field_name("right" if t == "assignment_expression" else "value")
        stop = _function_body_start(value) if value is not None else node.end_byte
        return header_signature(node, source, stop=stop, skip=SKIP)
    if t in _ANONYMOUS:
        return "export default " + header_signature(node, source, skip=SKIP)
    return header_signature(node, source, skip=SKIP)


SPEC = LanguageSpec(
    name="javascript",
    extensions=(".js", ".mjs", ".cjs", ".jsx"),
    grammar=tree_sitter_javascript.language,
    query=_QUERY,
    signature=signature,
    docstring=comment_docstring,
    name_of=name_of,
    outer=outer,
    qualifier=qualifier,
    doc_comments=True,
    resync=RESYNC,
    test_globs=("*.test.*", "*.spec.*", "*_test.*"),
)
