"""`zoufang county list|set`: per-county values in the database; the settings are only their defaults."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import click

from bot.cli.base import (
    Failure,
    main,
    phrase,
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
    values: dict[str, Any] = {}
    for name in ("income_line", "monitoring_line", "count_guaranteed"):
        own = getattr(county, name)
        values[name] = getattr(defaults, name) if own is None else own
        values[name + "_default"] = own is None
    return phrase(
        "county_line",
        name=county.name,
        income=_yuan(values["income_line"]),
        income_default=values["income_line_default"],
        monitoring=_yuan(values["monitoring_line"]),
        monitoring_default=values["monitoring_line_default"],
        counts=values["count_guaranteed"],
        counts_default=values["count_guaranteed_default"],
    )


def _amount(option: str, raw: str) -> Decimal:
    text = raw.strip().replace(",", "").removesuffix("元").strip()
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0 or value >= 10**10:
        raise Failure(phrase("bad_amount", option=option, given=repr(raw)))
    return value.quantize(Decimal("0.01")) + 0  # + 0 turns -0 into 0


def _unknown_county(name: str, known: list[str]) -> Failure:
    if not known:
        return Failure(phrase("no_county_yet", name=name))
    return Failure(phrase("no_county", name=name, known=known))


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
        click.echo(phrase("no_counties"))
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
            raise Failure(phrase("bad_default", given=repr(word), words=list(COUNTY_VALUES)))
        if COUNTY_VALUES[word] in values and values[COUNTY_VALUES[word]] is not None:
            raise Failure(phrase("value_and_default", word=word))
        values[COUNTY_VALUES[word]] = None
    if not values:
        raise Failure(phrase("no_county_option"))
    from storage.counties import all_counties, county_by_name, update_county

    conf = settings()

    async def go() -> Any:
        async with with_db(conf.db_url) as db, db.session() as s:
            found = await county_by_name(s, name)
            if found is None:
                raise _unknown_county(name, [c.name for c in await all_counties(s)])
            return await update_county(s, found, values)

    click.echo(_county_line(run(go()), conf.lines))
