from pathlib import Path

import pytest
from typer.testing import CliRunner

import yaml

from protocols.loader import ProtocolError, expanded_size, load_protocol, parse_protocol
from tests.conftest import EN_PROTOCOL, PROTOCOLS
from turnscribe import app


@pytest.mark.parametrize("path", sorted(PROTOCOLS.glob("*.yaml")), ids=lambda p: p.name)
def test_example_protocols_are_valid(path: Path) -> None:
    protocol = load_protocol(path)
    assert protocol.demographics and protocol.consent.form_versions
    assert protocol.cell_targets(), "each example sets crossed-cell targets"


def test_english_example_expresses_the_plan() -> None:
    protocol = load_protocol(EN_PROTOCOL)
    assert protocol.session.speakers_per_session == 2
    assert protocol.allowed_values()["noise_condition"] == ["quiet", "noisy"]
    cells = protocol.cell_targets()
    assert len(cells) == 4 * 2 * 6
    assert cells[("60+", "male", "caribbean")].hours == 4
    assert cells[("18-29", "female", "scottish")].hours == 6.25


def _problems(text: str) -> list[str]:
    with pytest.raises(ProtocolError) as info:
        parse_protocol(text, "plan.yaml")
    return [str(p) for p in info.value.problems]


def test_every_schema_mistake_is_reported_with_path_and_line() -> None:
    text = EN_PROTOCOL.read_text()
    text = text.replace("values: [female, male]", "values: [female, male, male]")
    text = text.replace("  min_sample_rate: 16000", "  min_sample_rate: -5")
    text = text.replace("        quiet: {hours: 150}", "        quiet: {hourz: 150}")
    lines = text.splitlines()
    problems = _problems(text)
    assert len(problems) == 3
    by_path = {p.split(": ")[1]: p for p in problems}
    dup_line = next(i for i, l in enumerate(lines, 1) if "[female, male, male]" in l)
    assert f"line {dup_line}" in by_path["demographics[1].values"]
    assert "listed twice" in by_path["demographics[1].values"]
    rate_line = next(i for i, l in enumerate(lines, 1) if "min_sample_rate: -5" in l)
    assert f"line {rate_line}" in by_path["quality_gates.min_sample_rate"]
    assert "unknown field" in by_path["targets.marginals[0].values.quiet.hourz"]


def test_unknown_dimension_and_value_in_targets_point_at_their_lines() -> None:
    text = EN_PROTOCOL.read_text().replace("accent: caribbean}", "accent: martian}")
    text = text.replace("    - dimension: device", "    - dimension: devise")
    problems = _problems(text)
    assert any("targets.marginals[1].dimension" in p and "unknown dimension 'devise'" in p for p in problems)
    override = [p for p in problems if "overrides[0].cell.accent" in p]
    assert override and "'martian' is not a value of 'accent'" in override[0]
    line = next(i for i, l in enumerate(text.splitlines(), 1) if "martian" in l)
    assert f"line {line}" in override[0]


def test_broken_yaml_and_non_mapping() -> None:
    assert "line 2" in _problems("id: x\nversion: 1: 2\n")[0]
    assert "must be a YAML mapping" in _problems("- just\n- a list\n")[0]
    assert any("required field is missing" in p for p in _problems("id: x\nversion: 1\n"))


def test_validate_cli_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["protocol", "validate", *map(str, PROTOCOLS.glob("*.yaml"))])
    assert ok.exit_code == 0, ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(EN_PROTOCOL.read_text().replace("version: 1", "version: zero"))
    result = runner.invoke(app, ["protocol", "validate", str(bad)])
    assert result.exit_code == 1
    assert "version" in result.output and "bad.yaml:4" in result.output


def _billion_laughs(levels: int = 12) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + f"\nid: *a{levels - 1}\n"


def test_alias_bomb_is_refused_quickly_and_small_anchors_still_work(tmp_path: Path) -> None:
    import time

    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(_billion_laughs())  # 10^12 strings once expanded
    started = time.perf_counter()
    with pytest.raises(ProtocolError) as info:
        load_protocol(bomb)
    assert time.perf_counter() - started < 1.0
    assert "aliases expand to more than" in str(info.value)
    # an ordinary anchor is counted once per use, not refused: mapping + 2 keys + 2 sequences of 2 = 9 nodes
    assert expanded_size(yaml.compose("a: &x [1, 2]\nb: *x\n")) == 9


def test_oversized_and_deeply_nested_files_are_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * (2 << 20) + b"\n")
    with pytest.raises(ProtocolError, match="larger than 1024 KiB"):
        load_protocol(big)
    deep = tmp_path / "deep.yaml"
    deep.write_text("id: " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ProtocolError):
        load_protocol(deep)


def test_control_characters_in_user_text_are_shown_escaped(tmp_path: Path) -> None:
    hostile = tmp_path / "plan\x1b[2J\x1b]0;pwned\x07.yaml"
    hostile.write_text("id: [\n")
    result = CliRunner().invoke(app, ["protocol", "validate", str(hostile)])
    assert result.exit_code == 1
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "plan\\x1b[2J\\x1b]0;pwned\\x07.yaml" in result.output.replace("\n", "")
