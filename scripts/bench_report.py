"""Assemble docs/benchmarks.md from the sections the benchmark scripts wrote.

Usage: python scripts/bench_report.py [--dir docs/benchmarks] [--out docs/benchmarks.md]

Each ``scripts/bench_<part>.py`` writes ``<part>.md`` (a section starting with ``## ``),
``<part>.json`` and ``<part>.png`` into the directory. This script puts the sections in a fixed
order under one page, and gathers every ``target: ... — measured: ... — met/missed`` line into a
summary table at the top, so the page shows at a glance which targets this run met.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORDER = ("embedding", "embedding_gpu", "upload_search", "index", "api")
TARGET_RE = re.compile(
    r"^\s*[-*]?\s*target:\s*(?P<target>.+?)\s+[—-]+\s+measured:\s*(?P<measured>.+?)"
    r"\s+[—-]+\s+(?P<verdict>.+?)\s*$",
    re.IGNORECASE,
)


def write_section(out: Path, part: str, result: dict, plot, markdown: str) -> None:
    """A benchmark script's output: <part>.json (raw figures), <part>.png (``plot(path)``) and
    <part>.md (the section this script assembles) in ``out``."""
    (out / f"{part}.json").write_text(json.dumps(result, indent=2, default=str))
    plot(out / f"{part}.png")
    (out / f"{part}.md").write_text(markdown)
    print(f"Wrote {out}/{part}.json, {part}.png, {part}.md")


def sections(directory: Path) -> list[tuple[str, str]]:
    """(part, markdown) for each section present, known parts first in ORDER."""
    found = {path.stem: path.read_text(encoding="utf-8") for path in directory.glob("*.md")}
    ordered = [part for part in ORDER if part in found]
    ordered += sorted(part for part in found if part not in ORDER)
    return [(part, found[part]) for part in ordered]


def targets(markdown: str) -> list[tuple[str, str, str]]:
    """The (target, measured, verdict) lines of one section."""
    rows = []
    for line in markdown.splitlines():
        match = TARGET_RE.match(line)
        if match:
            rows.append((match["target"], match["measured"], match["verdict"]))
    return rows


def machine(directory: Path) -> str:
    """One line about the machine, from the section JSONs that record it; where sections ran on
    different machines (re-runs of some of them), which ran where."""
    found: dict[str, dict] = {}
    for path in sorted(directory.glob("*.json")):
        try:
            info = json.loads(path.read_text(encoding="utf-8")).get("machine")
        except (ValueError, AttributeError):
            continue
        if isinstance(info, dict):
            found[path.stem] = info
    if not found:
        return platform.platform()
    first = next(iter(found.values()))
    line = ", ".join(f"{key} {value}" for key, value in first.items())
    kinds = {info.get("cpu") or info.get("gpu") for info in found.values()}
    if len(kinds) == 1:
        return line
    where = "; ".join(
        f"{name}: {info.get('cpu') or info.get('gpu')}, {str(info.get('date', '?'))[:16]}"
        for name, info in found.items()
    )
    return f"{line}. The sections ran on different machines ({where})"


def relink(markdown: str, directory: Path, out: Path) -> str:
    """Point the sections' relative image links at the directory, seen from the page."""
    prefix = directory.resolve().relative_to(out.parent.resolve()).as_posix()
    return re.sub(r"!\[([^\]]*)\]\((?!https?:|/)([^)]+)\)", rf"![\1]({prefix}/\2)", markdown)


def main() -> None:
    """Write the page."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=ROOT / "docs" / "benchmarks")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    parts = sections(args.dir)
    if not parts:
        raise SystemExit(f"no sections in {args.dir}: run `make bench` first")
    lines = [
        "# Benchmarks",
        "",
        "Every section on this page is one run of its script in `scripts/` (`make bench` runs them",
        "all, one after the other), each measuring its baseline in the same run; the sections were",
        "assembled by `scripts/bench_report.py`. Each section names its machine load at start.",
        f"Assembled {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Machine: {machine(args.dir)}.",
        "",
        "## Targets",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
    ]
    for _, markdown in parts:
        for target, measured, verdict in targets(markdown):
            lines.append(f"| {target} | {measured} | {verdict} |")
    lines.append("")
    for _, markdown in parts:
        lines += [relink(markdown, args.dir, args.out).rstrip(), ""]
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {args.out} ({len(parts)} sections)")


if __name__ == "__main__":
    main()
