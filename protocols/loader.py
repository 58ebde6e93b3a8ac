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
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data: Any = yaml.safe_load(text)
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
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ProtocolError(str(path), [Problem("", None, f"cannot read file: {exc.strerror}")]) from exc
    return parse_protocol(text, str(path))
