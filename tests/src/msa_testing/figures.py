"""Figures a test measured, shown at the end of the run (a "figures" section), not only with ``-s``.

    def test_x(figures: Figures) -> None:
        figures.add("login flood", "300 logins in 12.3 s; probes 100 % 200")

CI's log then carries what the fuzzing and flood tests measured, next to their verdicts.
"""

from __future__ import annotations

from typing import Any

import pytest

__all__ = ["Figures"]


class Figures:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, title: str, *lines: str) -> None:
        self.lines.append(f"{title}:")
        self.lines.extend(f"  {line}" for line in lines)


_FIGURES = Figures()


@pytest.fixture
def figures() -> Figures:
    return _FIGURES


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _FIGURES.lines:
        terminalreporter.section("figures")
        for line in _FIGURES.lines:
            terminalreporter.write_line(line)
