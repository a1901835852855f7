"""`zoufang report changes` (每月变化): a later roster import adds a household and changes 脱贫状态; the report
counts them by village (and lists them with --list) from the audit trail the import wrote; the county's first
import is not news."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

from bot.demo import write_roster
from tests.cli_support import clean_env, ok, zoufang


@pytest.fixture
def county(tmp_path: Path) -> Path:
    write_roster(tmp_path, random.Random(7))
    ok(zoufang(tmp_path, "init"))
    ok(zoufang(tmp_path, "import", "cadres", "cadres.csv", "--county", "示范县"))
    ok(zoufang(tmp_path, "import", "households", "households.csv"))
    return tmp_path


def changed_roster(folder: Path) -> Path:
    """DEMO0001 已脱贫 → 未脱贫 (返贫), DEMO0002 监测户 → 已脱贫 (解除监测), DEMO0003 → 监测户, one new household,
    DEMO0004's 户主 renamed (not a status change)."""
    with (folder / "households.csv").open(encoding="utf-8-sig", newline="") as f:
        table = list(csv.reader(f))
    status, head = table[0].index("脱贫状态"), table[0].index("户主姓名")
    rows = {row[0]: row for row in table[1:]}
    rows["DEMO0001"][status] = "未脱贫"
    rows["DEMO0002"][status] = "已脱贫"
    rows["DEMO0003"][status] = "边缘易致贫户"  # a 监测对象 category: 监测户
    rows["DEMO0004"][head] = "刘春花"
    new = list(rows["DEMO0001"])
    new[0], new[head], new[status] = "DEMO9001", "新户主", "未脱贫"
    table.append(new)
    path = folder / "households-12.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        csv.writer(f).writerows(table)
    return path


def test_a_later_import_shows_its_additions_and_status_changes_by_village(county: Path):
    env = clean_env(county)
    first = ok(zoufang(county, "report", "changes", env=env)).stdout
    assert "没有记录新增户或脱贫状态变化" in first  # the first import is where the county starts
    ok(zoufang(county, "import", "households", changed_roster(county).name, env=env))
    text = ok(zoufang(county, "report", "changes", "--format", "csv", env=env)).stdout.lstrip("\ufeff")
    table = list(csv.reader(text.splitlines()))
    header = table[0]
    assert header[:2] == ["乡镇", "行政村"] and header[2:7] == [
        "新增户",
        "脱贫",
        "返贫",
        "纳入监测",
        "解除监测",
    ]
    xinhua = next(row for row in table if row[1] == "新华村")
    assert xinhua[:7] == ["东风镇", "新华村", "1", "0", "1", "1", "1"]
    total = next(row for row in table if row[0] == "合计")
    assert total[2:7] == ["1", "0", "1", "1", "1"]
    assert "死亡、销户：花名册没有这类状态，未采集" in text  # said, under the table


def test_the_list_names_each_change_and_an_empty_month_says_so(county: Path):
    env = clean_env(county)
    ok(zoufang(county, "import", "households", changed_roster(county).name, env=env))
    listed = ok(zoufang(county, "report", "changes", "--list", "--format", "csv", env=env)).stdout
    lines = [line for line in listed.splitlines() if "DEMO" in line]
    assert len(lines) == 4  # the renamed 户主 is no status change
    assert any("DEMO0001" in line and "返贫" in line and "已脱贫,未脱贫" in line for line in lines)
    assert any("DEMO9001" in line and "新增户" in line for line in lines)
    past = ok(zoufang(county, "report", "changes", "--month", "2020-01", env=env)).stdout
    assert "2020-01 花名册导入没有记录新增户或脱贫状态变化" in past
    bad = zoufang(county, "report", "changes", "--month", "2026-13", env=env)
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0
