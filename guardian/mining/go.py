"""The Go LanguageSpec: funcs, methods qualified by their receiver type, structs, named closures.

`func (s *Server[T]) Start()` is the method `Server.Start` (pointer and type arguments dropped);
`type Server struct {...}` is a class; a func literal bound to one name (`handler := func...`,
`var hook = func...`) is a function, nested under the function that declares it. The `// ...`
block directly above a declaration is its docstring, as in `go doc`.
"""

from __future__ import annotations

import tree_sitter_go
from tree_sitter import Node

from guardian.mining.comments import comment_docstring
from guardian.mining.core import (
    LanguageSpec,
    default_name,
    header_signature,
    line_resync,
    node_text,
)

_QUERY = """
(function_declaration) @function
(method_declaration) @method
(type_spec name: (type_identifier) type: (struct_type)) @class
(short_var_declaration right: (expression_list (func_literal))) @function
(var_spec value: (expression_list (func_literal))) @function
"""


def _single(node: Node | None, kind: str) -> Node | None:
    if node is None:
        return None
    kids = node.named_children
    if len(kids) != 1 or kids[0].type != kind:
        return None
    return kids[0]


def _bound_name(node: Node) -> Node | None:
    if node.type == "short_var_declaration":
        if _single(node.child_by_field_name("right"), "func_literal") is None:
            return None
        return _single(node.child_by_field_name("left"), "identifier")
    names = node.children_by_field_name("name")
    value = _single(node.child_by_field_name("value"), "func_literal")
    return names[0] if len(names) == 1 and value is not None else None


def _name(node: Node, source: bytes) -> str | None:
    if node.type in ("short_var_declaration", "var_spec"):
        name = _bound_name(node)
        return node_text(name, source) if name is not None and not name.is_missing else None
    return default_name(node, source)


def _receiver_type(node: Node, source: bytes) -> str | None:
    """The receiver's base type name: `Server` for `(s *Server[T])`."""
    if node.type != "method_declaration":
        return None
    receiver = node.child_by_field_name("receiver")
    param = receiver.named_children[0] if receiver is not None and receiver.named_children else None
    typ = param.child_by_field_name("type") if param is not None else None
    while typ is not None and typ.type in ("pointer_type", "generic_type", "parenthesized_type"):
        typ = (
            typ.child_by_field_name("type")
            if typ.type == "generic_type"
            else (typ.named_children[0] if typ.named_children else None)
        )
    if typ is None or typ.type != "type_identifier":
        return None
    return node_text(typ, source)


def _outer(node: Node) -> Node:
    parent = node.parent
    if node.type in ("type_spec", "var_spec") and parent is not None:
        specs = [c for c in parent.named_children if c.type == node.type]
        if parent.type in ("type_declaration", "var_declaration") and len(specs) == 1:
            return parent
    return node


def _signature(node: Node, source: bytes) -> str:
    if node.type == "type_spec":
        typ = node.child_by_field_name("type")
        stop = typ.named_children[0].start_byte if typ and typ.named_children else node.end_byte
        return "type " + header_signature(node, source, stop=stop)
    if node.type in ("short_var_declaration", "var_spec"):
        value = node.child_by_field_name("right" if node.type != "var_spec" else "value")
        literal = _single(value, "func_literal")
        body = literal.child_by_field_name("body") if literal is not None else None
        stop = body.start_byte if body is not None else node.end_byte
        head = header_signature(node, source, stop=stop)
        return f"var {head}" if node.type == "var_spec" else head
    return header_signature(node, source)


SPEC = LanguageSpec(
    name="go",
    extensions=(".go",),
    grammar=tree_sitter_go.language,
    query=_QUERY,
    signature=_signature,
    docstring=comment_docstring,
    name_of=_name,
    outer=_outer,
    qualifier=_receiver_type,
    doc_comments=True,
    resync=line_resync(rb"^(?:func|type|var|const)\b"),
    test_globs=("*_test.go",),
)
