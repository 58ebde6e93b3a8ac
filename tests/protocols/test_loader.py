from pathlib import Path

import pytest
from typer.testing import CliRunner

from protocols.loader import ProtocolError, load_protocol, parse_protocol
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
