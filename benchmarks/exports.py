"""Benchmark: `zoufang export visits` on a county-sized SQLite database (issue 13: 200,000 visits ≤ 60 s, flat
memory).

    python benchmarks/exports.py [--visits V] [--households H] [--db PATH] [--reuse] [--json PATH] [--keep]

1. Builds the database with benchmarks/reports.py's generator (places, cadres of every role, households,
   V submitted visits over the year, a few polls and problems), then the visits' `answers` rows, which that
   generator leaves out: one INSERT … SELECT of a template visit (every question of the built-in script, as
   storage.visits.answer_rows types them: two several-of answers, numbers varied by visit) over all visits,
   every 4th visit with a problem (a repeat item), every 20th with a second one. ~37 rows a visit.
2. Times `zoufang export visits` as a subprocess, each of wide/long × csv/xlsx, to a file: wall time, CPU,
   and the peak resident memory of the process (`os.wait4`'s ru_maxrss), with the rows it wrote.
3. The yardstick, in the same run and on the same file: the sqlite3 shell dumping the answers table joined to
   its visits to CSV (`sqlite3 -csv`), the least any export of those rows can cost; and the load average.
4. Prints the figures and merges them into benchmarks/results/latest.json under parts["exports-sqlite"]
   (--json PATH for another file); every other key of the file is kept.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

# run as `python benchmarks/exports.py`: the folder is on sys.path
from harness import BenchError, child_env, machine, zoufang_command
from reports import TIMEZONE, County, build_database, fresh_database

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "latest.json"
PART = "exports-sqlite"
AIM_SECONDS = 60.0
CASES = (("wide", "csv"), ("wide", "xlsx"), ("long", "csv"), ("long", "xlsx"))

# One visit's answers (the built-in script; storage.visits.answer_rows makes the rows): what every visit gets
TEMPLATE = {
    "members": 4,
    "labour_members": 2,
    "main_cause": "因病",
    "support": ["低保", "残疾人补贴"],
    "food_secure": True,
    "clothing_secure": True,
    "school_children": 1,
    "dropout": False,
    "medical_insured": True,
    "chronic_illness": True,
    "family_doctor": True,
    "pension_insured": True,
    "income_wages": 10800,
    "income_business": 3600,
    "income_property": 0,
    "income_guaranteed": 0,
    "income_transfer": 3600,
    "expense_production": 0,
    "expense_medical": 1300,
    "expense_education": 1200,
    "satisfaction": "满意",
    "policy_known": True,
    "opinion": "希望村里的路灯早点修好",
    "talk_party": True,
    "talk_policy": True,
    "policies_explained": ["教育资助", "就业扶贫"],
    "talk_hope": True,
    "talk_aspiration": True,
    "housing_safe": True,
    "water_safe": True,
    "handbook_current": True,
    "income_sheet_current": True,
    "medical_sheet_current": True,
    "location": {"lat": 45.3, "lon": 122.8},
    "problems": [
        {"category": "医疗", "description": "慢性病报销手续不清楚", "resolved_on_site": False},
        {"category": "饮水", "description": "冬季冻管", "resolved_on_site": True, "resolution": "已协调维修"},
    ],
}


def template_rows() -> list[tuple[Any, ...]]:
    """(field, item, seq, value_int, value_real, value_bool, value_text, every): `every` n-th visit has it."""
    from storage.visits import answer_rows
    from survey.script import load_script

    rows = []
    for row in answer_rows(load_script(), 0, TEMPLATE):
        every = {-1: 1, 0: 4, 1: 20}[row["item"]]
        values = (row["value_int"], row["value_real"], row["value_bool"], row["value_text"])
        rows.append((row["field"], row["item"], row["seq"], *values, every))
    return rows


ANSWERS_FROM_TEMPLATE = """
INSERT INTO answers (visit_id, field, item, seq, value_int, value_real, value_bool, value_text)
SELECT v.id, t.field, t.item, t.seq,
       CASE WHEN t.value_int IS NULL THEN NULL WHEN t.value_int > 10 THEN t.value_int + (v.id % 997) * 10
            ELSE t.value_int + v.id % 3 END,
       t.value_real, t.value_bool, t.value_text
FROM visits v JOIN bench_answer_template t ON v.id % t.every = 0
WHERE v.id >= ? AND v.id < ?
ORDER BY v.id, t.rowid
"""


def add_answers(path: Path, visits: int, chunk: int = 20_000) -> float:
    """The visits' answers rows, straight in SQL (the Python generator would take minutes for 7 million)."""
    import sqlite3

    started = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA cache_size=-262144")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute(
            "CREATE TEMP TABLE bench_answer_template (field TEXT, item INTEGER, seq INTEGER, value_int INTEGER, "
            "value_real REAL, value_bool INTEGER, value_text TEXT, every INTEGER)"
        )
        conn.executemany("INSERT INTO bench_answer_template VALUES (?, ?, ?, ?, ?, ?, ?, ?)", template_rows())
        for first in range(1, visits + 1, chunk):
            conn.execute("BEGIN")
            conn.execute(ANSWERS_FROM_TEMPLATE, (first, first + chunk))
            conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return time.perf_counter() - started


def build_args(args: argparse.Namespace) -> argparse.Namespace:
    """What benchmarks/reports.py's build_database reads."""
    return argparse.Namespace(
        seed=args.seed,
        villages=args.villages,
        townships=args.townships,
        helpers=5,
        households=args.households,
        visits=args.visits,
        quarter_share=0.3,
        polls=args.polls,
        problems=args.problems,
        chunk=10_000,
        analyze=False,
        no_vacuum=True,
    )


async def build(path: Path, args: argparse.Namespace) -> dict[str, float]:
    from storage.db import sqlite_url

    now = datetime.now(UTC).replace(microsecond=0)
    county = County(now=now, tz=ZoneInfo(TIMEZONE), townships=args.townships)
    db = await fresh_database(sqlite_url(path))
    try:
        made = await build_database(db, build_args(args), county)
    finally:
        await db.close()
    seconds = dict(made.seconds)
    seconds["answers"] = add_answers(path, args.visits)
    return seconds


def counts(path: Path) -> dict[str, int]:
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("households", "visits", "answers", "polls", "problems")
        }
    finally:
        conn.close()


# The peak RSS a process reports (ru_maxrss) starts from its parent's at exec, so a small launcher starts the
# measured command and reports its child's rusage: the benchmark's own memory stays out of the figure.
LAUNCHER = """
import json, os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    json.dump({"cpu_s": usage.ru_utime + usage.ru_stime, "maxrss_kb": usage.ru_maxrss}, out)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def timed(command: list[str], env: dict[str, str], folder: Path, stdout: Any = None) -> dict[str, Any]:
    """Run a command to its end: wall seconds, CPU seconds and peak RSS of that process (ru_maxrss)."""
    usage_file = folder / "usage.json"
    launcher = [sys.executable, "-c", LAUNCHER, str(usage_file), *command]
    started = time.perf_counter()
    done = subprocess.run(
        launcher, env=env, cwd=folder, stdout=stdout or subprocess.PIPE, stderr=subprocess.PIPE
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip()[:300]
        raise BenchError(f"{' '.join(command[1:8])} failed ({done.returncode}): {err}")
    usage = json.loads(usage_file.read_text())
    return {
        "elapsed_s": round(elapsed, 2),
        "cpu_s": round(usage["cpu_s"], 2),
        "peak_rss_mb": round(usage["maxrss_kb"] / 1024, 1),
        "load_1m": round(os.getloadavg()[0], 2),
        "stdout": (done.stdout or b"").decode(errors="replace").strip(),
    }


def yardstick(path: Path, folder: Path) -> dict[str, Any]:
    """sqlite3 -csv of the submitted visits' answers (joined to their visits, by visit id) into a file."""
    shell = shutil.which("sqlite3")
    if shell is None:
        raise BenchError("the sqlite3 shell is not on PATH (apt-get install sqlite3): it is the yardstick")
    sql = (
        "SELECT a.visit_id, a.field, a.item, a.seq, a.value_int, a.value_real, a.value_bool, a.value_text "
        "FROM answers a JOIN visits v ON v.id = a.visit_id WHERE v.status = 'submitted' "
        "ORDER BY a.visit_id, a.field, a.item, a.seq"
    )
    target = folder / "yardstick.csv"
    with target.open("wb") as out:
        figures = timed([shell, "-csv", str(path), sql], dict(os.environ), folder, stdout=out)
    figures["bytes"] = target.stat().st_size
    target.unlink()
    return figures


def export_case(path: Path, folder: Path, layout: str, fmt: str) -> dict[str, Any]:
    from storage.db import sqlite_url

    target = folder / f"visits-{layout}.{fmt}"
    command = [
        zoufang_command(),
        "export",
        "visits",
        "--layout",
        layout,
        "--format",
        fmt,
        "--output",
        str(target),
    ]
    figures = timed(command, child_env(ZOUFANG_DB_URL=sqlite_url(path)), folder)
    figures["bytes"] = target.stat().st_size
    target.unlink()
    return figures


def merge_json(path: Path, figures: dict[str, Any]) -> None:
    """Our figures under parts[PART]; every other key of the file stays as it was."""
    data: dict[str, Any] = {}
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
    data.setdefault("parts", {})[PART] = {
        "what": f"zoufang export visits, SQLite ({figures['rows']['visits']:,} visits)",
        "script": "exports.py",
        "quick": False,
        "command": "python benchmarks/exports.py",
        "figures": figures,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def run_in(args: argparse.Namespace, folder: Path) -> int:
    path = args.db or folder / "zoufang.db"
    build_s: dict[str, float] | None = None
    if not args.reuse:
        print(f"building {args.visits:,} visits with their answers in {path} …", flush=True)
        build_s = asyncio.run(build(path, args))
    rows = counts(path)
    print("  rows: " + ", ".join(f"{t} {n:,}" for t, n in rows.items()), flush=True)
    if build_s:
        print("  build: " + ", ".join(f"{t} {s:.1f} s" for t, s in build_s.items()), flush=True)
    stick = yardstick(path, folder)
    print(f"  yardstick (sqlite3 -csv of the answers): {stick['elapsed_s']:.1f} s", flush=True)
    cases: dict[str, dict[str, Any]] = {}
    for layout, fmt in CASES:
        if args.only and args.only not in f"{layout} {fmt}":
            continue
        figures = export_case(path, folder, layout, fmt)
        figures["visits_per_s"] = round(rows["visits"] / figures["elapsed_s"])
        figures["vs_yardstick"] = round(figures["elapsed_s"] / stick["elapsed_s"], 2)
        figures["aim_met"] = figures["elapsed_s"] <= AIM_SECONDS
        cases[f"{layout} {fmt}"] = figures
        print(f"  {layout} {fmt}: {figures['elapsed_s']:.1f} s, {figures['peak_rss_mb']:.0f} MB", flush=True)
    print()
    print(f"zoufang export visits, SQLite: {rows['visits']:,} visits, {rows['answers']:,} answer rows")
    print(
        f"{'case':<10} {'time':>8} {'CPU':>8} {'visits/s':>9} {'peak RSS':>9} {'file':>9} {'× yardstick':>12} load"
    )
    for name, f in cases.items():
        print(
            f"{name:<10} {f['elapsed_s']:>6.1f} s {f['cpu_s']:>6.1f} s {f['visits_per_s']:>9,} "
            f"{f['peak_rss_mb']:>6.0f} MB {f['bytes'] / 1e6:>6.0f} MB {f['vs_yardstick']:>12.2f} {f['load_1m']}"
        )
    print(
        f"yardstick: sqlite3 -csv of the {rows['answers']:,} answer rows {stick['elapsed_s']:.1f} s "
        f"({stick['peak_rss_mb']:.0f} MB peak, {stick['bytes'] / 1e6:.0f} MB); aim ≤ {AIM_SECONDS:.0f} s per export"
    )
    figures = {
        "benchmark": "exports",
        "backend": "sqlite",
        "rows": rows,
        "build_s": None if build_s is None else {t: round(s, 2) for t, s in build_s.items()},
        "aim_s": AIM_SECONDS,
        "yardstick": {"what": "sqlite3 -csv: the answers joined to their visits, by visit id", **stick},
        "cases": cases,
        "machine": machine(),
    }
    if not args.no_json:
        merge_json(args.json, figures)
        print(f"merged into {args.json} (parts.{PART})")
    return 0 if all(f["aim_met"] for f in cases.values()) else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--visits", type=int, default=200_000, help="submitted visits (default 200000)")
    parser.add_argument("--households", type=int, default=100_000, help="households (default 100000)")
    parser.add_argument("--townships", type=int, default=10, help="townships (default 10)")
    parser.add_argument("--villages", type=int, default=200, help="villages (default 200)")
    parser.add_argument("--polls", type=int, default=10_000, help="SMS polls (default 10000)")
    parser.add_argument("--problems", type=int, default=5_000, help="problems (default 5000)")
    parser.add_argument("--seed", type=int, default=2026, help="random seed (default 2026)")
    parser.add_argument("--db", type=Path, help="SQLite file to (re)build (default: in the temp folder)")
    parser.add_argument("--reuse", action="store_true", help="time the exports on --db as it is")
    parser.add_argument("--only", help="time only the cases containing this (e.g. 'wide', 'csv')")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="the results file to merge into")
    parser.add_argument("--no-json", action="store_true", help="print the figures only")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (the database)")
    args = parser.parse_args(argv)
    if args.reuse and not args.db:
        parser.error("--reuse needs --db")
    if args.villages < args.townships or args.households < args.villages:
        parser.error("need townships ≤ villages ≤ households")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))
    try:
        if args.keep:
            folder = Path(tempfile.mkdtemp(prefix="zoufang-bench-exports-"))
            print(f"keeping the run's files in {folder}")
            return run_in(args, folder)
        with tempfile.TemporaryDirectory(prefix="zoufang-bench-exports-") as tmp:
            return run_in(args, Path(tmp))
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
