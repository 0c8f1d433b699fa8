"""The bench's numbers, as Markdown tables: figures per kind, ratios, scaling, CPU.

Ratios come from one invocation on one machine: each kind against the reference
(``langgraph dev``'s first row), and each ``ours-postgres-xN`` against ``-x1``, which is
how the cost grows with processes. Measuring is ``bench_load.py`` and ``bench_cpu.py``.
"""

from __future__ import annotations

import os
import statistics

from bench_cpu import Cpu
from bench_load import Result

Row = dict[str, float]
NO_RATIO = {"errors"}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def figures(result: Result) -> Row:
    runs = result.runs
    first, total = [r.first_event for r in runs], [r.total for r in runs]
    return {
        "runs done/s": len(runs) / result.wall,
        "launches/s": len(runs) / result.launch_window,
        "first event p50": statistics.median(first),
        "first event p99": _pct(first, 0.99),
        "run p50": statistics.median(total),
        "run p99": _pct(total, 0.99),
        "errors": float(result.error_count),
    }


def _cell(key: str, value: float) -> str:
    if key == "errors":
        return f"{value:.0f}"
    return f"{value:.1f}" if key.endswith("/s") else f"{value * 1000:.0f} ms"


def table(rows: dict[str, Row | str], reference: str | None) -> str:
    """One row per kind, each figure with its ratio to *reference*'s."""
    keys = list(next((r for r in rows.values() if isinstance(r, dict)), {}))
    lines = ["| server | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(keys)]
    base = rows.get(reference) if reference else None
    for name, row in rows.items():
        if isinstance(row, str):
            lines.append(f"| {name} | " + " | ".join([row] + [""] * (len(keys) - 1)) + " |")
            continue
        cells = []
        for key in keys:
            cell = _cell(key, row[key])
            if isinstance(base, dict) and name != reference and key not in NO_RATIO:
                cell += f" ({row[key] / base[key]:.2f}×)"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def scaling(rows: dict[str, Row | str]) -> str:
    """``ours-postgres-xN`` against ``-x1``: >1 is more for rates, longer for times."""
    base = rows.get("ours-postgres-x1")
    scaled = [n for n in rows if n.startswith("ours-postgres-x") and n != "ours-postgres-x1"]
    if not isinstance(base, dict) or not scaled:
        return ""
    keys = [k for k in base if k not in NO_RATIO]
    lines = ["| ratio | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(keys)]
    for name in scaled:
        row = rows[name]
        if isinstance(row, dict):
            ratios = [f"{row[k] / base[k]:.2f}" for k in keys]
            label = f"{name.rpartition('-')[2]}/x1"
            lines.append(f"| {label} | " + " | ".join(ratios) + " |")
    return "\n".join(lines)


def cpu_table(cpus: dict[str, tuple[Cpu, int]]) -> str:
    """Per kind: CPU per run by whom, and each one's share of the machine's capacity."""
    cores = os.cpu_count() or 1
    parts = ("servers", "postgres", "postgres_shared", "clients", "samplers", "other")
    heads = ["server procs", "PG (bench db)", "PG shared", "clients", "py-spy", "other procs"]
    lines = [
        "| server | counted wall | "
        + " | ".join(f"{h} ms/run (share)" for h in heads)
        + " | idle | per server process |",
        "|---|---:|" + "---:|" * len(heads) + "---:|---|",
    ]
    for name, (cpu, runs) in cpus.items():
        capacity = cpu.wall * cores
        cells = [f"{cpu.wall:.1f} s"]
        for part in parts:
            used = getattr(cpu, part)
            cells.append(f"{used / max(runs, 1) * 1000:.1f} ({used / capacity:.0%})")
        cells.append(f"{max(0.0, capacity - cpu.machine) / capacity:.0%}")
        cells.append(", ".join(f"{s:.1f} s" for s in cpu.per_server))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
