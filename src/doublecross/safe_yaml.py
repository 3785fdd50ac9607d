"""YAML for configuration files, bounded: size and alias expansion are limited before any object is built.

``yaml.safe_load`` builds a "billion laughs" document (anchors of anchors, 1.6 KB) as shared
references, but anything that walks the result (validation, ``json.dumps``, comparison on resume)
expands it to ~10⁹ nodes and hangs. Here the document is first *composed* (nodes, aliases shared),
its expanded node count is computed with memoisation (linear in the document), and only a
document under ``max_nodes`` expanded nodes is constructed. Syntax errors become one-line
:class:`~doublecross.config.ConfigError` messages with the line and column.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_BYTES = 1 << 20  # 1 MiB: presets are a few KB
MAX_NODES = 100_000  # expanded scalars + collections


class YamlError(ValueError):
    """A YAML file is malformed, too large or expands too much (one line, names the source)."""


def _expanded_size(root: yaml.Node, source: str, max_nodes: int) -> int:
    memo: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in memo:
            return memo[key]
        if key in active:
            raise YamlError(f"{source}: recursive YAML alias at line {node.start_mark.line + 1}")
        active.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            for child in node.value:
                total += size(child)
                if total > max_nodes:
                    break
        elif isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                total += size(k) + size(v)
                if total > max_nodes:
                    break
        active.discard(key)
        memo[key] = total
        return total

    return size(root)


def load_yaml(text: str | bytes, source: str = "YAML", max_bytes: int = MAX_BYTES, max_nodes: int = MAX_NODES) -> Any:
    """Parse ``text`` safely (``SafeLoader``) within size and alias-expansion limits.

    Raises:
        YamlError: text over ``max_bytes``, a syntax error (with line/column), a recursive alias,
            or a document expanding to more than ``max_nodes`` nodes (an alias bomb).
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise YamlError(f"{source}: not a UTF-8 text file ({e.reason} at byte {e.start})") from None
    if len(text) > max_bytes:
        raise YamlError(f"{source}: {len(text)} bytes, more than the {max_bytes} allowed for a configuration file")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        n = _expanded_size(node, source, max_nodes)
        if n > max_nodes:
            raise YamlError(
                f"{source}: the document expands to more than {max_nodes} nodes through YAML aliases "
                "(an alias bomb?); refusing to load it"
            )
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise YamlError(f"{source}: invalid YAML{where}: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise YamlError(f"{source}: invalid YAML: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    finally:
        loader.dispose()


def load_yaml_file(path: str, max_bytes: int = MAX_BYTES, max_nodes: int = MAX_NODES) -> Any:
    """:func:`load_yaml` of a file, reading at most ``max_bytes + 1`` bytes of it."""
    with open(path, "rb") as fh:
        data = fh.read(max_bytes + 1)
    return load_yaml(data, source=path, max_bytes=max_bytes, max_nodes=max_nodes)
