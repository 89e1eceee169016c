"""Type checks: mypy --strict on the package and on every docs example, and
mypy.stubtest of the extension's stub against the compiled module."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
# Methods @toplevel adds at run time; type checkers see a plain dataclass.
KEY_METHODS = re.compile(r'has no attribute "(to_path|from_str|from_path|field_sep|depth)"')

pytest.importorskip("mypy", reason="mypy is in the test extras")


def _mypy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


def test_package_is_strictly_typed():
    result = _mypy()
    assert result.returncode == 0, result.stdout + result.stderr


def test_docs_examples_are_strictly_typed(tmp_path):
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        blocks = BLOCK.findall(page.read_text())
        if blocks:
            (tmp_path / f"doc_{page.stem.lower()}.py").write_text("\n".join(blocks))
    # pandas' stubs type some calls (DataFrame.assign...) as Any: returning
    # such a value is no fault of the example.
    result = _mypy("--strict", "--no-warn-return-any", str(tmp_path))
    errors = [
        line
        for line in result.stdout.splitlines()
        if ": error:" in line and not KEY_METHODS.search(line)
    ]
    assert not errors, "\n".join(errors)


def test_stub_matches_the_extension():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy.stubtest",
            "--mypy-config-file",
            "pyproject.toml",
            "oups._oups",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
