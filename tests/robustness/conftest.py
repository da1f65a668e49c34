"""Robustness tests: the fuzz run's figures go into the terminal summary, so CI logs show them
with or without `-s`."""

from __future__ import annotations

import pytest

FIGURES: list[str] = []


@pytest.fixture(scope="session")
def summary_lines() -> list[str]:
    """Lines to print in the terminal summary."""
    return FIGURES


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("tilecc fuzz")
        for line in FIGURES:
            terminalreporter.write_line(line)
