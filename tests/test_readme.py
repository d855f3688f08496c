"""The README's API tour runs as written."""

import pathlib
import subprocess
import sys

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _api_tour() -> str:
    text = README.read_text()
    start = text.index("```python", text.index("## API tour")) + len("```python")
    return text[start:text.index("```", start)]


def test_readme_api_tour_runs(tmp_path):
    script = tmp_path / "tour.py"
    script.write_text(_api_tour())
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[:2] == ["True", "True"]


def test_readme_names_the_ci_commands():
    text = README.read_text()
    ci = (README.parent / ".ci" / "run").read_text()
    assert 'pip install ".[test,plot,progress]"' in text and "python -m pytest -q" in text
    assert 'pip install ".[test,plot,progress]"' in ci and "python -m pytest -q" in ci
