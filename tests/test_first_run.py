"""The README's first run, walked as written (issue 16): a county's own workbooks — a title row above the header,
an instructions sheet before the data, the county named on the command line — through `zoufang init`, both
imports and a console visit, then a report; every command in a real process, on the README's default database,
and no traceback in any output."""

from __future__ import annotations

import csv
import random
import re
from pathlib import Path

from openpyxl import Workbook

from bot.demo import write_roster
from tests.cli_support import clean_env, zoufang_process
from tests.test_console import ANSWERS, picker, typed

README = Path(__file__).parents[1] / "README.md"


def first_run_commands() -> list[list[str]]:
    """The commands of the README's block after "A first run on a county's own files"."""
    text = README.read_text(encoding="utf-8")
    block = re.search(r"A first run on a county's own files:\n+```sh\n(.*?)```", text, re.S)
    assert block, "the README's first-run block is gone"
    return [line.split() for line in block.group(1).splitlines() if line.strip()]


def county_workbook(path: Path, rows: list[list[str]], county: str, title: str) -> None:
    """How a county office keeps it: instructions first, then the data sheet with a title and a date line."""
    book = Workbook()
    book.active.title = "填表说明"
    book.active.append(["请按表头填写，户编号不能重复；本表由县扶贫办统一下发。"])
    sheet = book.create_sheet("花名册")
    sheet.append([title])
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(rows[0]))
    sheet.append(["填报单位：" + county + "扶贫开发办公室", "", "", "填报日期：2026年11月"])
    for row in rows:
        sheet.append([cell.replace("示范县", county) for cell in row])
    book.save(path)


def test_the_readme_first_run_works_on_a_countys_own_workbooks(tmp_path: Path):
    commands = first_run_commands()
    assert [c[:3] for c in commands[:3]] == [
        ["zoufang", "init"],
        ["zoufang", "import", "cadres"],
        ["zoufang", "import", "households"],
    ]
    county = commands[1][commands[1].index("--county") + 1]
    write_roster(tmp_path, random.Random(11))
    for name, source, title in (
        (commands[1][3], "cadres.csv", "干部名册"),
        (commands[2][3], "households.csv", "建档立卡贫困户花名册"),
    ):
        with (tmp_path / source).open(encoding="utf-8-sig", newline="") as f:
            county_workbook(tmp_path / name, list(csv.reader(f)), county, county + title)
    env = clean_env(tmp_path)
    del env["ZOUFANG_DB_URL"]  # the README's default: zoufang.db in the working directory
    outputs = []

    def run(args: list[str], given: str | None = None) -> str:
        done = zoufang_process(tmp_path, *args[1:], input=given, env=env)
        outputs.append(done.stdout + done.stderr)
        assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    for args in commands[:3]:
        run(args)
    console = commands[3]
    assert console[:2] == ["zoufang", "console"]
    listed = picker(run(console))  # no input: the household list, then the end of input keeps nothing
    chosen = listed[0][0]
    visit = run(console, typed([chosen, *ANSWERS]))
    assert "走访已提交" in visit
    cadre = console[console.index("--cadre") + 1]
    coverage = run(["zoufang", "report", "coverage", "--format", "csv"])
    [line] = [
        row for row in csv.DictReader(coverage.lstrip("\ufeff").splitlines()) if row["干部编号"] == cadre
    ]
    assert line["已走访户"] == "1" and chosen not in line["未走访户"]  # the visit counts for the cadre
    run(["zoufang", "report", "satisfaction"])
    assert (tmp_path / "zoufang.db").exists()
    for output in outputs:
        assert "Traceback" not in output and "Error" not in output, output
