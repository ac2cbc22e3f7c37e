"""Prints the fault table (fault_graph.ROWS) after the fault tests ran."""

from __future__ import annotations

from fault_graph import ROWS

HEADER = (
    "| fault | beyond position or speed limits, NaN | time to hold (s) | time to recover (s) | status "
    "| peak speed / limit, before -> from the fault |"
)


def pytest_terminal_summary(terminalreporter) -> None:
    if not ROWS:
        return
    write = terminalreporter.write_line
    write("")
    write(HEADER)
    write("|---|---|---|---|---|---|")
    for r in ROWS:
        hold = "-" if r["hold_s"] is None else f"{r['hold_s']:.2f}"
        speeds = f"{r['peak_speed_before']:.2f} -> {r['peak_speed_after']:.2f}"
        write(f"| {r['fault']} | {r['beyond_limits']} | {hold} | {r['recover_s']:.2f} | {r['status']} | {speeds} |")
