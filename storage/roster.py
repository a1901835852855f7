"""Roster rows into the database: upserts by 户编号 / 干部编号, places created by name as needed.

Every check against the database (`check_households`, `check_cadres`) reads only; the imports run the
same checks first and raise `RosterError` before writing anything, so a file is imported whole or not
at all within the caller's transaction.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage import audit
from storage.models import Cadre, County, Household, Township, Village, utcnow
from survey.roster import (
    CADRE_COLUMNS,
    HOUSEHOLD_COLUMNS,
    CadreRow,
    HouseholdRow,
    RosterError,
    RowError,
    RowRefs,
    column_label,
    refs_of,
)

__all__ = ["ImportCounts", "check_cadres", "check_households", "import_cadres", "import_households"]

_CHUNK = 500  # values per IN (…), well under every backend's parameter limit
T = TypeVar("T")


@dataclass
class ImportCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    counties_created: int = 0
    townships_created: int = 0
    villages_created: int = 0
    new_places: list[str] = field(default_factory=list)  # "县/乡镇/行政村" of each place this import made


def _chunks(values: Iterable[T]) -> Iterator[list[T]]:
    items = list(dict.fromkeys(values))
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


# --- places ---


class _Places:
    """Counties, townships and villages by name; new ones are added to the session (ids after a flush)."""

    def __init__(self, session: AsyncSession, counts: ImportCounts | None = None) -> None:
        self._session = session
        self._counts = counts or ImportCounts()
        self.counties: dict[str, County] = {}
        self.townships: dict[tuple[str, str], Township] = {}  # (county, township)
        self.villages: dict[tuple[str, str, str], Village] = {}  # (county, township, village)

    @classmethod
    async def load(cls, session: AsyncSession, counts: ImportCounts | None = None) -> _Places:
        places = cls(session, counts)
        for county in await session.scalars(select(County)):
            places.counties[county.name] = county
        for township, county_name in await session.execute(
            select(Township, County.name).join(County, Township.county_id == County.id)
        ):
            places.townships[(county_name, township.name)] = township
        query = (
            select(Village, Township.name, County.name)
            .join(Township, Village.township_id == Township.id)
            .join(County, Township.county_id == County.id)
        )
        for village, township_name, county_name in await session.execute(query):
            places.villages[(county_name, township_name, village.name)] = village
        return places

    def counties_with_township(self, township: str) -> list[str]:
        return sorted(county for county, name in self.townships if name == township)

    def county(self, name: str) -> County:
        if name not in self.counties:
            self.counties[name] = County(name=name)
            self._session.add(self.counties[name])
            self._counts.counties_created += 1
            self._counts.new_places.append(name)
        return self.counties[name]

    def township(self, county: str, name: str) -> Township:
        key = (county, name)
        if key not in self.townships:
            self.townships[key] = Township(county=self.county(county), name=name)
            self._session.add(self.townships[key])
            self._counts.townships_created += 1
            self._counts.new_places.append("/".join(key))
        return self.townships[key]

    def village(self, county: str, township: str, name: str) -> Village:
        key = (county, township, name)
        if key not in self.villages:
            self.villages[key] = Village(township=self.township(county, township), name=name)
            self._session.add(self.villages[key])
            self._counts.villages_created += 1
            self._counts.new_places.append("/".join(key))
        return self.villages[key]

    def unknown(self, county: str, township: str, village: str | None) -> tuple[str, str, str] | None:
        """(column key, name, nearest known sibling or "") of the first place a roster row names that is not
        known where its parent already has places: a county beside other counties, a township in a county
        that has townships, a village in a township that has villages. None when all are known, or the new
        ones are the first of their parent (a county's first import makes its places freely)."""
        if county and county not in self.counties:
            return ("county", county, _nearest(county, self.counties)) if self.counties else None
        if not township:
            return None
        if (county, township) not in self.townships:
            siblings = [name for c, name in self.townships if c == county]
            return ("township", township, _nearest(township, siblings)) if siblings else None
        if village and (county, township, village) not in self.villages:
            siblings = [name for c, t, name in self.villages if (c, t) == (county, township)]
            return ("village", village, _nearest(village, siblings)) if siblings else None
        return None


def _nearest(name: str, known: Iterable[str]) -> str:
    found = difflib.get_close_matches(name, list(known), n=1, cutoff=0.5)
    return found[0] if found else ""


_PLACE_WORDS = {"county": "县", "township": "乡镇", "village": "行政村"}


def _unknown_place(kind: str, name: str, nearest: str) -> str:
    """A place not yet known: most often a typo, which would silently make a new place and move households."""
    hint = f"最接近的已有名称是“{nearest}”；" if nearest else ""
    return f"{_PLACE_WORDS[kind]}“{name}”尚未登记：{hint}若确是新地名，导入时加 --new-places"


def _place_errors(
    places: _Places,
    refs: Iterable[tuple[RowRefs, str | None]],
    label: Any,
) -> list[RowError]:
    """A row error for each unknown place (`refs`: each row with its county, once that is known)."""
    errors: list[RowError] = []
    for ref, county in refs:
        if not county:
            continue
        said: set[str] = set()  # a row's unknown township once, however many of its villages it names
        for village in [ref.village] if ref.village else list(ref.villages) or [None]:
            found = places.unknown(county, ref.township, village)
            if found is not None and found[1] not in said:
                kind, name, nearest = found
                said.add(name)
                errors.append(RowError(ref.row, label(kind), _unknown_place(kind, name, nearest)))
    return errors


# The way out of "cadres need the county, households need the cadres": cadres first, naming their county. Each
# message names the exact command, so that neither roster's advice sends the reader to the other's.
_CADRES_FIRST = "zoufang import cadres 文件 --county 县名"
_COUNTY_WAY_OUT = f"导入干部花名册时用 --county 县名 指定县，例如 {_CADRES_FIRST}"


def _cadre_county(places: _Places, township: str, county: str | None) -> tuple[str | None, str | None]:
    """The county a cadre's township belongs to, or (None, why it cannot be told)."""
    if county is not None:
        return county, None
    found = places.counties_with_township(township)
    if len(found) == 1:
        return found[0], None
    if len(found) > 1:
        return (
            None,
            f"乡镇“{township}”在多个县都有（{'、'.join(found)}），无法确定是哪一个：{_COUNTY_WAY_OUT}",
        )
    if len(places.counties) == 1:
        return next(iter(places.counties)), None
    if not places.counties:
        return None, f"乡镇“{township}”尚未登记，系统中还没有任何县：{_COUNTY_WAY_OUT}"
    return None, f"乡镇“{township}”尚未登记，系统中有多个县，无法确定它属于哪个县：{_COUNTY_WAY_OUT}"


# --- households ---


async def _cadre_ids(session: AsyncSession, codes: Iterable[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in _chunks(codes):
        rows = await session.execute(select(Cadre.code, Cadre.id).where(Cadre.code.in_(chunk)))
        found.update({code: cadre_id for code, cadre_id in rows})
    return found


async def _household_counties(session: AsyncSession, codes: Iterable[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for chunk in _chunks(codes):
        query = (
            select(Household.code, County.name)
            .join(Village, Household.village_id == Village.id)
            .join(Township, Village.township_id == Township.id)
            .join(County, Township.county_id == County.id)
            .where(Household.code.in_(chunk))
        )
        found.update({code: county for code, county in await session.execute(query)})
    return found


async def check_households(
    session: AsyncSession,
    rows: Sequence[HouseholdRow | RowRefs],
    columns: Mapping[str, str] | None = None,
    *,
    new_places: bool = False,
) -> list[RowError]:
    """Errors only the database can show: an unknown 帮扶责任人编号, a 户编号 already used in another county, and
    (unless `new_places`) a 县/乡镇/行政村 not yet known where its parent has places (see _Places.unknown).
    `rows` may be every row's RowRefs, the bad rows' too, so that one pass names every fault."""

    def label(key: str) -> str:
        return column_label(columns, key, HOUSEHOLD_COLUMNS)

    cadres = await _cadre_ids(session, (row.helper_code for row in rows if row.helper_code))
    counties = await _household_counties(session, (row.code for row in rows if row.code))
    errors: list[RowError] = []
    if not new_places:
        places = await _Places.load(session)
        errors += _place_errors(places, ((refs_of(row), row.county) for row in rows), label)
    for row in rows:
        other = counties.get(row.code)
        if other is not None and row.county and other != row.county:
            message = f"户编号“{row.code}”已被{other}的户使用（户编号在系统内不能重复）"
            errors.append(RowError(row.row, label("household_id"), message))
        if row.helper_code and row.helper_code not in cadres:
            message = f"干部编号“{row.helper_code}”在系统中不存在：请先导入干部花名册（{_CADRES_FIRST}）"
            errors.append(RowError(row.row, label("helper_id"), message))
    return errors


def _household_values(row: HouseholdRow, village: Village, helpers: Mapping[str, int]) -> dict[str, Any]:
    return {
        "village_id": village.id,
        "hamlet": row.hamlet,
        "head_name": row.head_name,
        "phone": row.phone,
        "members": row.members,
        "status": row.status,
        "cause": row.cause,
        "lat": row.lat,
        "lon": row.lon,
        "helper_id": helpers[row.helper_code] if row.helper_code else None,
    }


def _update(target: object, values: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Set the values that differ; those that did, as name → (before, after)."""
    changed = {}
    for name, value in values.items():
        before = getattr(target, name)
        if before != value:
            setattr(target, name, value)
            changed[name] = (before, value)
    return changed


def _audit_change(
    session: AsyncSession, now: datetime, action: str, subject: str, changed: Mapping[str, tuple[Any, Any]]
) -> None:
    audit.add(
        session,
        now,
        action,
        subject,
        actor=audit.operator(),
        before={name: old for name, (old, _) in changed.items()},
        after={name: new for name, (_, new) in changed.items()},
    )


def _audit_import(session: AsyncSession, now: datetime, kind: str, rows: int, counts: ImportCounts) -> None:
    after = {"rows": rows, **{k: v for k, v in vars(counts).items() if v}}
    audit.add(session, now, f"import.{kind}", kind, actor=audit.operator(), after=after)


# the household fields whose change the audit trail keeps (a move to another village, another 帮扶责任人, …)
_AUDITED_HOUSEHOLD = frozenset({"village_id", "helper_id", "head_name", "members", "status"})
_AUDITED_CADRE = frozenset({"role", "township_id", "name"})


async def import_households(
    session: AsyncSession,
    rows: Sequence[HouseholdRow],
    columns: Mapping[str, str] | None = None,
    *,
    new_places: bool = False,
) -> ImportCounts:
    """Upsert households by 户编号; raises RosterError (having written nothing) if a row fails a check."""
    errors = await check_households(session, rows, columns, new_places=new_places)
    if errors:
        raise RosterError(errors)
    counts, now = ImportCounts(), utcnow()
    places = await _Places.load(session, counts)
    villages = [places.village(row.county, row.township, row.village) for row in rows]
    await session.flush()
    helpers = await _cadre_ids(session, (row.helper_code for row in rows if row.helper_code))
    existing = await _households_by_code(session, (row.code for row in rows))
    # a household added to a county that already had some is a change of the month (report changes); a
    # county's first roster is where it starts, not news
    counties_before = await _counties_with_households(session)
    for row, village in zip(rows, villages, strict=True):
        values = _household_values(row, village, helpers)
        household = existing.get(row.code)
        if household is None:
            session.add(Household(code=row.code, **values))
            counts.created += 1
            if row.county in counties_before:
                after = {"status": row.status, "village_id": village.id, "members": row.members}
                _audit_change(
                    session,
                    now,
                    "household.create",
                    f"household:{row.code}",
                    {k: (None, v) for k, v in after.items()},
                )
        elif changed := _update(household, values):
            counts.updated += 1
            kept = {k: v for k, v in changed.items() if k in _AUDITED_HOUSEHOLD}
            if kept:
                _audit_change(session, now, "household.update", f"household:{row.code}", kept)
        else:
            counts.unchanged += 1
    _audit_import(session, now, "households", len(rows), counts)
    await session.flush()
    return counts


async def _counties_with_households(session: AsyncSession) -> set[str]:
    query = (
        select(County.name)
        .join(Township, Township.county_id == County.id)
        .join(Village, Village.township_id == Township.id)
        .where(select(Household.id).where(Household.village_id == Village.id).exists())
        .distinct()
    )
    return set((await session.execute(query)).scalars())


async def _households_by_code(session: AsyncSession, codes: Iterable[str]) -> dict[str, Household]:
    found: dict[str, Household] = {}
    for chunk in _chunks(codes):
        found.update(
            {h.code: h for h in await session.scalars(select(Household).where(Household.code.in_(chunk)))}
        )
    return found


# --- cadres ---


async def check_cadres(
    session: AsyncSession,
    rows: Sequence[CadreRow | RowRefs],
    columns: Mapping[str, str] | None = None,
    county: str | None = None,
    *,
    new_places: bool = False,
) -> list[RowError]:
    """Errors only the database can show: a 乡镇 whose county cannot be told, and (unless `new_places`) a
    county, 乡镇 or 行政村 not yet known where its parent has places."""

    def label(key: str) -> str:
        if key == "county":  # it comes from --county (or the database), not from a column of the file
            return "--county"
        return column_label(columns, "villages" if key == "village" else key, CADRE_COLUMNS)

    places = await _Places.load(session)
    errors: list[RowError] = []
    counties: list[tuple[RowRefs, str | None]] = []
    for row in rows:
        if not row.township:
            continue
        found, problem = _cadre_county(places, row.township, county)
        if problem is not None:
            errors.append(RowError(row.row, label("township"), problem))
        counties.append((refs_of(row), found))
    if not new_places:
        errors += _place_errors(places, counties, label)
    return errors


async def _cadres_by_code(session: AsyncSession, codes: Iterable[str]) -> dict[str, Cadre]:
    found: dict[str, Cadre] = {}
    for chunk in _chunks(codes):
        query = select(Cadre).options(selectinload(Cadre.villages)).where(Cadre.code.in_(chunk))
        found.update({cadre.code: cadre for cadre in await session.scalars(query)})
    return found


async def import_cadres(
    session: AsyncSession,
    rows: Sequence[CadreRow],
    columns: Mapping[str, str] | None = None,
    county: str | None = None,
    *,
    new_places: bool = False,
) -> ImportCounts:
    """Upsert cadres by 干部编号 with their villages (created in the cadre's township if new).

    A township not yet known goes to `county` if given, else to the only county in the database.
    Raises RosterError (having written nothing) if a row fails a check.
    """
    errors = await check_cadres(session, rows, columns, county, new_places=new_places)
    if errors:
        raise RosterError(errors)
    counts, now = ImportCounts(), utcnow()
    places = await _Places.load(session, counts)
    resolved: list[tuple[Township, list[Village]]] = []
    for row in rows:
        county_name, _ = _cadre_county(places, row.township, county)
        assert county_name is not None  # checked above
        township = places.township(county_name, row.township)
        villages = [places.village(county_name, row.township, name) for name in row.villages]
        resolved.append((township, villages))
    await session.flush()
    existing = await _cadres_by_code(session, (row.code for row in rows))
    for row, (township, villages) in zip(rows, resolved, strict=True):
        values = {"name": row.name, "phone": row.phone, "role": row.role, "township_id": township.id}
        cadre = existing.get(row.code)
        if cadre is None:
            session.add(Cadre(code=row.code, villages=villages, **values))
            counts.created += 1
            continue
        changed = _update(cadre, values)
        kept = {k: v for k, v in changed.items() if k in _AUDITED_CADRE}
        if kept:  # a role or township change moves what the cadre may see and must visit
            _audit_change(session, now, "cadre.update", f"cadre:{row.code}", kept)
        if {village.id for village in cadre.villages} != {village.id for village in villages}:
            cadre.villages = villages
            changed = {**changed, "villages": ((), ())}
        if changed:
            counts.updated += 1
        else:
            counts.unchanged += 1
    _audit_import(session, now, "cadres", len(rows), counts)
    await session.flush()
    return counts
