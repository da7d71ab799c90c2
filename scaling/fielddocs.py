"""The documentation comments of a dataclass's fields, read from its source.

A field is documented by the ``#:`` comment lines right above it (Sphinx's convention)::

    #: Groups of the bottleneck's 3x3 conv (ResNeXt's C).
    cardinality: int = 1

``field_docs(ArchSpec)`` gives ``{"cardinality": "Groups of the bottleneck's 3x3 conv (ResNeXt's C).", ...}``;
the command line's help for every ArchSpec flag is taken from it, so a field's meaning is written
once. Reads the source file with ``ast``: imports nothing, and costs about a millisecond.
"""
from __future__ import annotations

import ast
import functools
import sys
from pathlib import Path


def field_docs(cls: type) -> dict[str, str]:
    """{field name: its ``#:`` documentation, joined into one line} for ``cls`` and its bases
    (a subclass's comment wins); fields without a comment are left out."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        module = sys.modules.get(klass.__module__)
        path = getattr(module, "__file__", None)
        if path and path.endswith(".py"):
            docs.update(_class_docs(path, klass.__qualname__))
    return docs


@functools.lru_cache(maxsize=None)
def _class_docs(path: str, qualname: str) -> dict[str, str]:
    """The ``#:`` comments above each annotated assignment in the body of class ``qualname``."""
    text = Path(path).read_text(encoding="utf-8")
    lines = text.splitlines()
    node = _find_class(ast.parse(text), qualname.split("."))
    if node is None:
        return {}
    out = {}
    for stmt in node.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            comment = []
            i = stmt.lineno - 2  # the line above, 0-based
            while i >= 0 and lines[i].strip().startswith("#:"):
                comment.insert(0, lines[i].strip()[2:].strip())
                i -= 1
            if comment:
                out[stmt.target.id] = " ".join(comment)
    return out


def _find_class(tree: ast.AST, names: list[str]) -> ast.ClassDef | None:
    body = tree.body
    node = None
    for name in names:
        node = next((n for n in body if isinstance(n, ast.ClassDef) and n.name == name), None)
        if node is None:
            return None
        body = node.body
    return node
