"""The README is true: its API tour runs as written, and its Install, Test and Development
sections show exactly the commands CI (``.ci/run``) runs."""

import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CI = ROOT / ".ci" / "run"


def _section(text: str, title: str) -> str:
    """The body of README section ``title`` (up to the next heading of the same or higher level)."""
    m = re.search(rf"^(#+) {re.escape(title)}\n", text, re.M)
    assert m, f"README has no section {title!r}"
    level = len(m.group(1))
    end = re.search(rf"^#{{1,{level}}} ", text[m.end():], re.M)
    return text[m.end():m.end() + end.start()] if end else text[m.end():]


def _code_lines(section: str) -> list[str]:
    """The lines of a section's fenced code blocks."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", section, re.S)
    return [line.strip() for b in blocks for line in b.splitlines() if line.strip()]


def _ci_commands() -> dict[str, list[str]]:
    """README section -> the commands ``.ci/run`` runs under a ``# README: <section>`` tag."""
    lines = CI.read_text().splitlines()
    out: dict[str, list[str]] = {}
    for tag, cmd in zip(lines, lines[1:], strict=False):
        m = re.match(r"# README: (\w+)", tag.strip())
        if m:
            cmd = re.sub(r"^step \S+ ", "", cmd.strip())  # the step wrapper's name
            out.setdefault(m.group(1), []).append(cmd)
    return out


def _api_tour() -> str:
    text = README.read_text()
    start = text.index("```python", text.index("## API tour")) + len("```python")
    return text[start:text.index("```", start)]


@pytest.mark.slow  # a fresh process loading most kernels: 232 s at load 11 on 2 cores
def test_readme_api_tour_runs(tmp_path):
    script = tmp_path / "tour.py"
    script.write_text(_api_tour())
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=600, cwd=tmp_path)  # cold Numba cache on a loaded machine
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[:2] == ["True", "True"]


def test_readme_names_the_ci_commands():
    text = README.read_text()
    ci = _ci_commands()
    assert set(ci) == {"Install", "Test", "Development"}, ci
    for title, commands in ci.items():
        shown = _code_lines(_section(text, title))
        # every command CI runs is shown in its section, and the section shows nothing else
        assert shown == commands, (title, shown, commands)
    assert ci["Install"] == ['python -m pip install ".[test,plot,progress,distributed,interop]"']
    assert "python -m pytest -q" in ci["Test"]


def test_version_is_written_once():
    """CITATION.cff and the changelog name the version that fastsoft/_version.py holds."""
    import fastsoft

    cff = (ROOT / "CITATION.cff").read_text()
    assert re.search(rf'^version: "{re.escape(fastsoft.__version__)}"$', cff, re.M)
    assert f"## {fastsoft.__version__}" in (ROOT / "CHANGELOG.md").read_text()
