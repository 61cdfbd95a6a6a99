"""The table printed at the end of a run, and bench/results.json."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.timing import Figure

RESULTS = Path(__file__).resolve().parent / "results.json"


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    name: str
    a: str
    b: str
    ratio: str
    target: str
    verdict: str


def figure_row(figure: Figure) -> Row:
    """A figure as a table row, medians in its unit."""
    verdict = {True: "pass", False: "FAIL", None: "-"}[figure.passed]
    target = f"<= {figure.target:.2f}" if figure.target is not None else "none"
    return Row(
        figure.key,
        f"{figure.a_median:.2f} {figure.unit}",
        f"{figure.b_median:.2f} {figure.unit}",
        f"{figure.ratio:.3f}",
        target,
        verdict,
    )


def count_row(name: str, count: int, target: int) -> Row:
    """A count against its target, as a table row."""
    return Row(
        name, str(count), "", "", f"<= {target}", "pass" if count <= target else "FAIL"
    )


def pending_row(name: str, why: str) -> Row:
    """A figure that cannot be measured yet."""
    return Row(name, "", "", "", "", why)


def table(rows: list[Row]) -> str:
    """Render rows as a markdown table (readable on a terminal too)."""
    header = Row("figure", "A median", "B median", "A / B", "target", "result")
    cells = [
        [row.name, row.a, row.b, row.ratio, row.target, row.verdict]
        for row in [header, *rows]
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header.__dict__))]
    lines = [
        "| "
        + " | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        + " |"
        for line in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (width + 2) for width in widths) + "|")
    return "\n".join(lines)


def versions() -> dict[str, str]:
    """Versions of what the figures depend on."""
    packages = {
        "boto3": "boto3",
        "botocore": "botocore",
        "powertools": "aws-lambda-powertools",
        "pydantic": "pydantic",
        "moto": "moto",
    }
    found = {"python": platform.python_version()}
    for name, distribution in packages.items():
        try:
            found[name] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            found[name] = "absent"
    return found


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "load_average_at_end": list(os.getloadavg()),
    }


def write_results(results: dict[str, Any], path: Path = RESULTS) -> None:
    """Write results.json, keys sorted so runs diff well."""
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
