"""Read a protocol YAML file and explain every mistake by field path and line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from protocols.schema import Loc, Protocol, semantic_problems


@dataclass(frozen=True)
class Problem:
    """One mistake in a protocol file."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "file"
        return f"{where}: {self.path or '(top level)'}: {self.message}"


class ProtocolError(ValueError):
    """A protocol file that cannot be used, with every problem found."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(f"  {p}" for p in problems))


MAX_BYTES = 1 << 20
"""A collection plan is a few kilobytes; a megabyte is generous and keeps a hostile file cheap to refuse."""
MAX_NODES = 100_000
"""Nodes after aliases are expanded: anchors are fine, a "billion laughs" file is refused before it grows."""


def expanded_size(node: yaml.Node) -> int:
    """How many nodes the document has once every alias is followed (memoised: linear in the file)."""
    sizes: dict[int, int] = {}

    def size(n: yaml.Node) -> int:
        if id(n) in sizes:
            return sizes[id(n)]
        sizes[id(n)] = MAX_NODES + 1  # a cycle counts as unbounded
        if isinstance(n, yaml.MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in n.value)
        elif isinstance(n, yaml.SequenceNode):
            total = 1 + sum(size(item) for item in n.value)
        else:
            total = 1
        sizes[id(n)] = min(total, MAX_NODES + 1)
        return sizes[id(n)]

    return size(node)


def _line_map(node: yaml.Node, loc: Loc = ()) -> dict[Loc, int]:
    """Field path -> 1-based line of every node of a composed YAML document."""
    lines: dict[Loc, int] = {loc: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = loc + (key.value,)
            lines[child] = key.start_mark.line + 1
            for sub, line in _line_map(value, child).items():
                lines.setdefault(sub, line)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines.update(_line_map(item, loc + (i,)))
    return lines


def _nearest_line(lines: dict[Loc, int], loc: Loc) -> int | None:
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in lines:
            return lines[loc[:cut]]
    return None


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_protocol(text: str, source: str = "<protocol>") -> Protocol:
    """Validate protocol YAML text; raise `ProtocolError` listing every problem."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise ProtocolError(source, [Problem("", None, f"file is larger than {MAX_BYTES // 1024} KiB; a protocol is a few KiB")])
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None and expanded_size(node) > MAX_NODES:
            raise ProtocolError(source, [Problem("", 1, f"aliases expand to more than {MAX_NODES:,} nodes; "
                                                        "refused (nested anchors that multiply, a 'billion laughs' file?)")])
        data: Any = yaml.safe_load(text)
    except RecursionError:
        raise ProtocolError(source, [Problem("", None, "nested too deeply to be a protocol")]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ProtocolError(source, [Problem("", line, f"not valid YAML: {getattr(exc, 'problem', exc)}")]) from exc
    if node is None or not isinstance(data, dict):
        raise ProtocolError(source, [Problem("", 1, "a protocol must be a YAML mapping (id, version, ...)")])
    lines = _line_map(node)
    try:
        protocol = Protocol.model_validate(data)
    except ValidationError as exc:
        problems = [
            Problem(_dotted(tuple(err["loc"])), _nearest_line(lines, tuple(err["loc"])), _message(err))
            for err in exc.errors()
        ]
        raise ProtocolError(source, problems) from None
    found = semantic_problems(protocol)
    if found:
        raise ProtocolError(source, [Problem(_dotted(loc), _nearest_line(lines, loc), msg) for loc, msg in found])
    return protocol


def _message(err: dict[str, Any]) -> str:
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        return "unknown field (check its spelling and indentation)"
    if err["type"] == "missing":
        return "required field is missing"
    return msg


def load_protocol(path: Path) -> Protocol:
    """Read and validate a protocol file."""
    try:
        with Path(path).open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise ProtocolError(str(path), [Problem("", None, f"file is larger than {MAX_BYTES // 1024} KiB; a protocol is a few KiB")])
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(str(path), [Problem("", None, f"not UTF-8 text (byte {exc.start})")]) from exc
    except OSError as exc:
        raise ProtocolError(str(path), [Problem("", None, f"cannot read file: {exc.strerror}")]) from exc
    return parse_protocol(text, str(path))
