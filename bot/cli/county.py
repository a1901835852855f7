"""`zoufang county list|set`: per-county values in the database; the settings are only their defaults."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import click

from bot.cli.base import (
    Failure,
    main,
    run,
    settings,
    with_db,
)

# --- county: per-county values in the database; the settings are only their defaults ------------------------

# option word → County attribute
COUNTY_VALUES = {
    "income-line": "income_line",
    "monitoring-line": "monitoring_line",
    "count-guaranteed": "count_guaranteed",
}


def _yuan(value: Decimal) -> str:
    return f"{value:.0f}" if value == value.to_integral_value() else f"{value:.2f}"


def _county_line(county: Any, defaults: Any) -> str:
    """One county on one line; a value the county does not set shows the setting's, marked （默认）."""
    parts = []
    for label, name in (("收入线", "income_line"), ("监测线", "monitoring_line")):
        own = getattr(county, name)
        value = _yuan(getattr(defaults, name) if own is None else own)
        parts.append(f"{label} {value} 元{'（默认）' if own is None else ''}")
    own = county.count_guaranteed
    counts = defaults.count_guaranteed if own is None else own
    parts.append(f"保底收益计入收入 {'是' if counts else '否'}{'（默认）' if own is None else ''}")
    return f"{county.name}：{'，'.join(parts)}"


def _amount(option: str, raw: str) -> Decimal:
    text = raw.strip().replace(",", "").removesuffix("元").strip()
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0 or value >= 10**10:
        raise Failure(f"{option} {raw!r}：请给出不小于 0 的金额（元），例如 4000")
    return value.quantize(Decimal("0.01")) + 0  # + 0 turns -0 into 0


def _unknown_county(name: str, known: list[str]) -> Failure:
    if not known:
        return Failure(
            f"没有名为 {name} 的县：数据库中还没有县（先运行 zoufang import cadres FILE --county 县）"
        )
    return Failure(f"没有名为 {name} 的县；已有的县：{'、'.join(known)}")


@main.group()
def county() -> None:
    """Per-county values: 收入线, 监测线, whether 保底收益 counts (unset values follow the settings)."""


@county.command(name="list")
def county_list() -> None:
    """List the counties with their income line, monitoring line and whether 保底收益 counts."""
    from storage.counties import all_counties

    conf = settings()

    async def go() -> list[Any]:
        async with with_db(conf.db_url) as db, db.session() as s:
            return await all_counties(s)

    counties = run(go())
    if not counties:
        click.echo("还没有县：先运行 zoufang import cadres FILE --county 县")
        return
    for one in counties:
        click.echo(_county_line(one, conf.lines))


@county.command(name="set")
@click.argument("name")
@click.option("--income-line", metavar="YUAN", help="收入线 (yuan per person per year)")
@click.option("--monitoring-line", metavar="YUAN", help="监测线 (yuan per person per year)")
@click.option(
    "--count-guaranteed/--no-count-guaranteed", default=None, help="whether 保底收益 counts as income"
)
@click.option(
    "--default",
    "defaults",
    multiple=True,
    metavar="income-line|monitoring-line|count-guaranteed",
    help="follow the setting again (ZOUFANG_INCOME_LINE, …); may be repeated",
)
def county_set(
    name: str,
    income_line: str | None,
    monitoring_line: str | None,
    count_guaranteed: bool | None,
    defaults: tuple[str, ...],
) -> None:
    """Set a county's own values in place; --default X makes X follow the setting again."""
    values: dict[str, Decimal | bool | None] = {}
    if income_line is not None:
        values["income_line"] = _amount("--income-line", income_line)
    if monitoring_line is not None:
        values["monitoring_line"] = _amount("--monitoring-line", monitoring_line)
    if count_guaranteed is not None:
        values["count_guaranteed"] = count_guaranteed
    for word in defaults:
        if word not in COUNTY_VALUES:
            raise Failure(f"--default {word!r}：请用 {'、'.join(COUNTY_VALUES)} 之一")
        if COUNTY_VALUES[word] in values and values[COUNTY_VALUES[word]] is not None:
            raise Failure(f"--{word} 与 --default {word} 不能同时给出")
        values[COUNTY_VALUES[word]] = None
    if not values:
        raise Failure(
            "请至少给出一个选项：--income-line、--monitoring-line、--count-guaranteed/--no-count-guaranteed 或 --default"
        )
    from storage.counties import all_counties, county_by_name, update_county

    conf = settings()

    async def go() -> Any:
        async with with_db(conf.db_url) as db, db.session() as s:
            found = await county_by_name(s, name)
            if found is None:
                raise _unknown_county(name, [c.name for c in await all_counties(s)])
            return await update_county(s, found, values)

    click.echo(_county_line(run(go()), conf.lines))
