"""$ref inside one schema, resolved the way its validators resolve it.

A reference is read against the nearest enclosing ``$id`` (the base URI) and looked up
in this schema's own documents only: the registry has nothing else and no way to fetch,
so a remote reference is never read. The schema checks (core/schema.py) refuse a
reference that leads outside or to nothing; the report (core/report.py) follows the
ones that lead somewhere, with the same lookups.

The schema must be a valid JSON Schema (check_schema has passed): ``referencing`` reads
it as one and fails with arbitrary errors on other shapes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urldefrag, urljoin

from referencing import Registry
from referencing.jsonschema import DRAFT202012


class LocalRefs:
    """The documents of one schema (the root and every nested ``$id``) and lookups in them."""

    def __init__(self, schema: dict[str, Any]) -> None:
        root_id = schema.get("$id")
        self.root_uri: str = urldefrag(root_id).url if isinstance(root_id, str) else ""
        self.registry = Registry().with_resource(self.root_uri, DRAFT202012.create_resource(schema)).crawl()
        self.documents: set[str] = {self.root_uri, *self.registry}

    def base_inside(self, node: dict[str, Any], base: str) -> str:
        """The base URI for what ``node`` holds: its own ``$id`` read against ``base``
        (which makes that URI one of this schema's documents), else ``base``."""
        node_id = node.get("$id")
        if not isinstance(node_id, str) or node_id.startswith("#"):
            return base
        inner: str = urldefrag(urljoin(base, node_id)).url
        self.documents.add(inner)
        return inner

    def target(self, ref: str, base: str) -> str:
        """The absolute URI ``ref`` names, read against ``base``."""
        return urljoin(base, ref)

    def is_local(self, ref: str, base: str) -> bool:
        """Whether ``ref`` points into this schema's own documents."""
        return urldefrag(self.target(ref, base)).url in self.documents

    def lookup(self, ref: str, base: str) -> tuple[Any, str]:
        """What ``ref`` points at, and the URI of the document it is in (the base URI
        there, unless the target has an $id: see base_inside). Raises referencing's
        Unresolvable when it points at nothing, or outside this schema."""
        resolved = self.registry.resolver(base_uri=base).lookup(ref)
        return resolved.contents, urldefrag(self.target(ref, base)).url
