"""Roster validation (/work/shared/domain/roster.md): headers and rows in, typed rows and row errors out.

Pure: no file reading and no database. The caller hands over a table-like object (headers plus rows
numbered as the spreadsheet shows them, the header being row 1) and gets back every bad row at once,
so a bad file can be refused whole.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Generic, Protocol, TypeVar

from survey.periods import ROLES
from survey.phones import read_phones

__all__ = [
    "CADRE_COLUMNS",
    "CAUSES",
    "HEADER_ROW",
    "HOUSEHOLD_COLUMNS",
    "MAX_MEMBERS",
    "MAX_NAME_LENGTH",
    "ROLE_SYNONYMS",
    "STATUSES",
    "STATUS_SYNONYMS",
    "CadreRow",
    "Column",
    "HouseholdRow",
    "RosterError",
    "RosterResult",
    "RowError",
    "TableLike",
    "column_label",
    "header_key",
    "is_header",
    "known_headers",
    "split_villages",
    "validate_cadres",
    "validate_households",
]

HEADER_ROW = 1
MAX_MEMBERS = 20
MAX_NAME_LENGTH = 64  # the String(64) columns of storage.models
STATUSES: tuple[str, ...] = ("未脱贫", "已脱贫", "监测户")
# What rosters write for a status or a role, beside the canonical value: one table each, read by `_canonical`.
# The three kinds of 防止返贫监测对象 (since 2021) are all monitored households, 监测户, whatever they were before:
# 脱贫不稳定户 were lifted but may fall back, 边缘易致贫户 were never registered poor, 突发严重困难户 met a sudden
# hardship. None of them is 脱贫达标 in the household groups, which is what 已脱贫 would make them.
STATUS_SYNONYMS: dict[str, str] = {
    "脱贫不稳定户": "监测户",
    "边缘易致贫户": "监测户",
    "突发严重困难户": "监测户",
    "监测对象": "监测户",
    "防止返贫监测对象": "监测户",
    "未脱贫户": "未脱贫",
    "已脱贫户": "已脱贫",
    "脱贫户": "已脱贫",
}
ROLE_SYNONYMS: dict[str, str] = {
    "村支书": "村党支部书记",
    "支书": "村党支部书记",
    "村党组织书记": "村党支部书记",
    "村党支部书记兼主任": "村党支部书记",
    "驻村第一书记": "第一书记",
    "驻村工作队员": "驻村工作队",
    "工作队员": "驻村工作队",
    "驻村队员": "驻村工作队",
    "驻村干部": "驻村工作队",
    "驻村工作队队员": "驻村工作队",
    "包村干部": "乡镇包保干部",
    "包保干部": "乡镇包保干部",
    "乡镇包村干部": "乡镇包保干部",
    "市级领导": "市级包保领导",
    "市级包保干部": "市级包保领导",
    "帮扶人": "帮扶责任人",
    "帮扶干部": "帮扶责任人",
    "结对帮扶干部": "帮扶责任人",
    "结对帮扶责任人": "帮扶责任人",
    "乡镇书记": "乡镇党委书记",
    "乡党委书记": "乡镇党委书记",
    "镇党委书记": "乡镇党委书记",
    "扶贫专职干部": "扶贫专干",
    "督查中心": "督查指挥中心",
}
# main_cause of visit-script.md
CAUSES: tuple[str, ...] = (
    "因病",
    "因残",
    "因学",
    "因灾",
    "缺土地",
    "缺水",
    "缺技术",
    "缺劳力",
    "缺资金",
    "交通条件落后",
    "自身发展动力不足",
    "其他",
)
_VILLAGE_SEPARATORS = re.compile(r"[;；]")
_INTEGER = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


# --- errors ---


@dataclass(frozen=True, order=True)
class RowError:
    """One thing wrong: the spreadsheet row number, the column (its header as in the file), what is wrong."""

    row: int
    column: str
    message: str

    def line(self) -> str:
        return f"第 {self.row} 行 · {self.column}：{self.message}"


class RosterError(Exception):
    """A roster file refused whole: a list of row errors, or one message about the file itself."""

    def __init__(self, errors: Sequence[RowError] | str, *, sheet: str | None = None) -> None:
        self.sheet = sheet  # the workbook's sheet the rows are on, named when it has several
        if isinstance(errors, str):
            self.errors: list[RowError] = []
            self.message: str | None = errors
        else:
            self.errors = sorted(errors, key=lambda error: error.row)  # stable: column order kept
            self.message = None
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        """zh-CN lines for county staff: a summary line, then one line per error."""
        if self.message is not None:
            return [self.message]
        where = f"工作表“{self.sheet}”" if self.sheet else "文件"
        return [
            f"{where}有 {len(self.errors)} 处错误，未导入任何数据：",
            *(error.line() for error in self.errors),
        ]


# --- columns ---


@dataclass(frozen=True)
class Column:
    key: str  # the English header of roster.md
    label: str  # the Chinese header
    required: bool
    synonyms: tuple[str, ...] = ()  # other headers counties write for it (户主, 联系方式, 人口数, …)

    def names(self) -> set[str]:
        """Every header (compared by `header_key`) that names this column."""
        return {header_key(name) for name in (self.label, self.key, *self.synonyms)}


HOUSEHOLD_COLUMNS: tuple[Column, ...] = (
    Column("household_id", "户编号", True, ("户码", "农户编号")),
    Column("county", "县", True),
    Column("township", "乡镇", True),
    Column("village", "行政村", True),
    Column("hamlet", "屯", False),
    Column("head_name", "户主姓名", True, ("户主", "户主名")),
    Column("phone", "联系电话", False, ("联系方式", "户主电话", "手机号码")),
    Column("members", "家庭人口", True, ("人口数", "家庭人口数", "家庭人数", "人口")),
    Column("status", "脱贫状态", True),
    Column("cause", "主要致贫原因", False, ("致贫原因",)),
    Column("lat", "纬度", False),
    Column("lon", "经度", False),
    Column("helper_id", "帮扶责任人编号", False, ("帮扶人编号", "帮扶干部编号")),
)

CADRE_COLUMNS: tuple[Column, ...] = (
    Column("cadre_id", "干部编号", True),
    Column("name", "姓名", True),
    Column("phone", "手机", True, ("手机号码",)),
    Column("role", "角色", True),
    Column("township", "乡镇", True),
    Column("villages", "行政村", False),
)


def column_label(columns: Mapping[str, str] | None, key: str, spec: Sequence[Column]) -> str:
    """The header a column has in the file, or its Chinese header when the file has no such column."""
    if columns and key in columns:
        return columns[key]
    return next(column.label for column in spec if column.key == key)


# --- typed rows ---


@dataclass(frozen=True)
class HouseholdRow:
    row: int  # spreadsheet row number
    code: str  # 户编号
    county: str
    township: str
    village: str
    hamlet: str | None
    head_name: str
    phone: str | None  # E.164: the cell's first mobile; None without one (a landline only): polls skip it
    members: int
    status: str
    cause: str | None
    lat: float | None
    lon: float | None
    helper_code: str | None  # 帮扶责任人编号: a cadre's 干部编号


@dataclass(frozen=True)
class CadreRow:
    row: int
    code: str  # 干部编号
    name: str
    phone: str  # E.164
    role: str
    township: str
    villages: tuple[str, ...]  # empty for township-wide roles


@dataclass(frozen=True)
class RowRefs:
    """What only the database can check of a row, good or bad, so that every fault is named in one pass: its
    places (households: county, township, village; cadres: township and villages) and the cadre it names."""

    row: int
    code: str
    county: str
    township: str
    village: str = ""
    villages: tuple[str, ...] = ()
    helper_code: str | None = None


RowT = TypeVar("RowT", HouseholdRow, CadreRow)


@dataclass
class RosterResult(Generic[RowT]):
    """Good rows, every error, and the columns of the file that were ignored (each named once)."""

    rows: list[RowT] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)  # key -> header as it appears in the file
    refs: list[RowRefs] = field(default_factory=list)  # every data row's, the bad ones' too

    @property
    def ok(self) -> bool:
        return not self.errors


class TableLike(Protocol):
    """What validation needs of a table: its headers and its rows with their spreadsheet row numbers.

    A reader that searched for the header row may also give `header_row` (its number, else HEADER_ROW),
    `scanned` (how many rows it searched) and `seen` (the `header_key` of every cell in them)."""

    @property
    def headers(self) -> Sequence[str]: ...

    def numbered_rows(self) -> Iterable[tuple[int, Sequence[str]]]: ...


# --- headers ---


def header_key(text: str) -> str:
    """Headers compare without spaces, case or a required-marker "*": "Household ID" ~ "household_id"."""
    cleaned = unicodedata.normalize("NFKC", text).strip().strip("*").strip().lower()
    return re.sub(r"[\s\-]+", "_", cleaned)


def known_headers(cells: Sequence[str], spec: Sequence[Column]) -> set[str]:
    """The keys of the columns of `spec` that a row's cells name: how much the row looks like the header."""
    keys = {header_key(cell) for cell in cells if cell.strip()}
    return {column.key for column in spec if column.names() & keys}


def is_header(cells: Sequence[str], spec: Sequence[Column]) -> bool:
    """Whether a row names every required column of `spec`."""
    known = known_headers(cells, spec)
    return all(column.key in known for column in spec if column.required)


def _column_letter(index: int) -> str:
    letters = ""
    number = index + 1
    while number:
        number, rest = divmod(number - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


@dataclass
class _Header:
    index: dict[str, int]  # key -> cell index
    shown: dict[str, str]  # key -> header as in the file
    ignored: list[str]
    errors: list[RowError]


def _map_headers(
    headers: Sequence[str],
    spec: Sequence[Column],
    header_row: int = HEADER_ROW,
    scanned: int = 0,
    seen: frozenset[str] = frozenset(),
) -> _Header:
    names: dict[str, Column] = {}
    for column in spec:
        names.update(dict.fromkeys(column.names(), column))
    header = _Header(index={}, shown={}, ignored=[], errors=[])
    for position, raw in enumerate(headers):
        text = raw.strip()
        if not text:
            continue
        column = names.get(header_key(text))
        if column is None:
            if text not in header.ignored:
                header.ignored.append(text)
        elif column.key in header.index:
            first = header.index[column.key]
            message = f"第 {_column_letter(first)} 列和第 {_column_letter(position)} 列都是“{column.label}”，只能有一列"
            header.errors.append(RowError(header_row, text, message))
        else:
            header.index[column.key] = position
            header.shown[column.key] = text
    for column in spec:
        if column.required and column.key not in header.index:
            message = f"缺少必填列“{column.label}”（英文表头 {column.key}）"
            if scanned and not {header_key(column.label), header_key(column.key)} & seen:
                message += f"：前 {scanned} 行中都没有找到这一列"
            elif scanned:
                message += f"：它不在表头（第 {header_row} 行）中"
            header.errors.append(RowError(header_row, column.label, message))
    return header


# --- one row ---


class _Cells:
    """One row's cells by column key, collecting its errors."""

    def __init__(self, number: int, cells: Sequence[str], header: _Header, spec: Sequence[Column]) -> None:
        self.number = number
        self._cells = cells
        self._header = header
        self._spec = spec
        self.errors: list[RowError] = []

    def label(self, key: str) -> str:
        return column_label(self._header.shown, key, self._spec)

    def raw(self, key: str) -> str:
        index = self._header.index.get(key)
        if index is None or index >= len(self._cells):
            return ""
        return self._cells[index].strip()

    def fail(self, key: str, message: str) -> None:
        self.errors.append(RowError(self.number, self.label(key), message))

    def text(self, key: str, *, required: bool = False) -> str | None:
        value = self.raw(key)
        if not value:
            if required:
                self.fail(key, "必填，不能为空")
            return None
        if len(value) > MAX_NAME_LENGTH:
            self.fail(key, f"不能超过 {MAX_NAME_LENGTH} 个字，实际 {len(value)} 个字")
            return None
        return value

    def required(self, key: str) -> str:
        return self.text(key, required=True) or ""

    def choice(
        self,
        key: str,
        choices: Sequence[str],
        *,
        required: bool = False,
        synonyms: Mapping[str, str] | None = None,
    ) -> str | None:
        value = self.text(key, required=required)
        if value is not None and synonyms is not None:
            value = _canonical(value, choices, synonyms)
        if value is not None and value not in choices:
            self.fail(key, f"应为以下之一：{'、'.join(choices)}，实际为“{value}”")
            return None
        return value

    def members(self, key: str) -> int:
        value = self.text(key, required=True)
        if value is None:
            return 0
        digits = unicodedata.normalize("NFKC", value)
        if not _INTEGER.fullmatch(digits) or not 1 <= int(digits) <= MAX_MEMBERS:
            self.fail(key, f"应为 1–{MAX_MEMBERS} 的整数，实际为“{value}”")
            return 0
        return int(digits)

    def coordinate(self, key: str, limit: int) -> float | None:
        value = self.raw(key)
        if not value:
            return None
        number = _decimal(value)
        if number is None or not -limit <= number <= limit:
            self.fail(key, f"应为 −{limit} 到 {limit} 之间的小数（WGS-84），实际为“{value}”")
            return None
        return float(number)

    def phone(self, key: str, *, required: bool = False) -> str | None:
        value = self.text(key, required=required)
        if value is None:
            return None
        try:
            phones = read_phones(value)
        except ValueError as error:
            self.fail(key, f"{error}，实际为“{value}”")
            return None
        if phones.sms is None and required:
            self.fail(key, f"只有座机号码，这一列需要手机号码（用于短信），实际为“{value}”")
        return phones.sms  # a second number has nowhere to go; a landline-only household gets no SMS


def _canonical(value: str, choices: Sequence[str], synonyms: Mapping[str, str]) -> str:
    """The canonical value for what a roster wrote: full-width forms and inner spaces do not count."""
    cleaned = re.sub(r"\s+", "", unicodedata.normalize("NFKC", value))
    if cleaned in choices:
        return cleaned
    return synonyms.get(cleaned, value)


def _decimal(text: str) -> Decimal | None:
    cleaned = unicodedata.normalize("NFKC", text).replace("\u2212", "-")
    if not _DECIMAL.fullmatch(cleaned):
        return None
    try:
        return Decimal(cleaned)
    except InvalidOperation:
        return None


def split_villages(text: str) -> tuple[str, ...]:
    """行政村 of a cadre: names separated by ; or ；, blanks dropped, each name once."""
    names = (name.strip() for name in _VILLAGE_SEPARATORS.split(text))
    return tuple(dict.fromkeys(name for name in names if name))


def _household(cells: _Cells) -> HouseholdRow | None:
    code = cells.required("household_id")
    county = cells.required("county")
    township = cells.required("township")
    village = cells.required("village")
    hamlet = cells.text("hamlet")
    head_name = cells.required("head_name")
    phone = cells.phone("phone")
    members = cells.members("members")
    status = cells.choice("status", STATUSES, required=True, synonyms=STATUS_SYNONYMS) or ""
    cause = cells.choice("cause", CAUSES)
    lat = cells.coordinate("lat", 90)
    lon = cells.coordinate("lon", 180)
    helper_code = cells.text("helper_id")
    _both_or_neither(cells)
    if cells.errors:
        return None
    return HouseholdRow(
        row=cells.number,
        code=code,
        county=county,
        township=township,
        village=village,
        hamlet=hamlet,
        head_name=head_name,
        phone=phone,
        members=members,
        status=status,
        cause=cause,
        lat=lat,
        lon=lon,
        helper_code=helper_code,
    )


def _both_or_neither(cells: _Cells) -> None:
    has_lat, has_lon = bool(cells.raw("lat")), bool(cells.raw("lon"))
    if has_lat and not has_lon:
        cells.fail("lon", f"填了{cells.label('lat')}就必须同时填{cells.label('lon')}")
    elif has_lon and not has_lat:
        cells.fail("lat", f"填了{cells.label('lon')}就必须同时填{cells.label('lat')}")


def _cadre(cells: _Cells) -> CadreRow | None:
    code = cells.required("cadre_id")
    name = cells.required("name")
    phone = cells.phone("phone", required=True) or ""
    role = cells.choice("role", ROLES, required=True, synonyms=ROLE_SYNONYMS) or ""
    township = cells.required("township")
    villages = split_villages(cells.raw("villages"))
    for village in villages:
        if len(village) > MAX_NAME_LENGTH:
            cells.fail("villages", f"村名不能超过 {MAX_NAME_LENGTH} 个字：“{village[:20]}…”")
    if cells.errors:
        return None
    return CadreRow(
        row=cells.number, code=code, name=name, phone=phone, role=role, township=township, villages=villages
    )


# --- whole tables ---


def _validate(
    table: TableLike,
    spec: Sequence[Column],
    id_key: str,
    parse: Callable[[_Cells], RowT | None],
) -> RosterResult[RowT]:
    header = _map_headers(
        table.headers,
        spec,
        getattr(table, "header_row", HEADER_ROW),
        getattr(table, "scanned", 0),
        getattr(table, "seen", frozenset()),
    )
    result: RosterResult[RowT] = RosterResult(ignored_columns=header.ignored, columns=dict(header.shown))
    if header.errors:
        result.errors = header.errors
        return result
    first_row: dict[str, int] = {}
    for number, values in table.numbered_rows():
        cells = _Cells(number, values, header, spec)
        code = cells.raw(id_key)
        if code and code in first_row:
            cells.fail(id_key, f"{cells.label(id_key)}“{code}”与第 {first_row[code]} 行重复")
        elif code:
            first_row[code] = number
        row = parse(cells)
        result.errors.extend(cells.errors)
        if row is not None and not cells.errors:
            result.rows.append(row)
        result.refs.append(_refs(row, cells, id_key))
    return result


def refs_of(row: HouseholdRow | CadreRow | RowRefs) -> RowRefs:
    if isinstance(row, HouseholdRow):
        return RowRefs(row.row, row.code, row.county, row.township, row.village, helper_code=row.helper_code)
    if isinstance(row, CadreRow):
        return RowRefs(row.row, row.code, "", row.township, villages=row.villages)
    return row


def _refs(row: HouseholdRow | CadreRow | None, cells: _Cells, id_key: str) -> RowRefs:
    if row is not None:
        return refs_of(row)
    raw = {key: cells.raw(key) for key in ("county", "township", "village", "helper_id")}
    villages = split_villages(cells.raw("villages")) if id_key == "cadre_id" else ()
    helper = raw["helper_id"] or None if id_key == "household_id" else None
    return RowRefs(
        cells.number, cells.raw(id_key), raw["county"], raw["township"], raw["village"], villages, helper
    )


def validate_households(table: TableLike) -> RosterResult[HouseholdRow]:
    """Check a households roster; `rows` holds the good rows, `errors` every bad one."""
    return _validate(table, HOUSEHOLD_COLUMNS, "household_id", _household)


def validate_cadres(table: TableLike) -> RosterResult[CadreRow]:
    """Check a cadres roster; `rows` holds the good rows, `errors` every bad one."""
    return _validate(table, CADRE_COLUMNS, "cadre_id", _cadre)


# --- the roster's changes (report changes) ---

CHANGE_KINDS: tuple[str, ...] = ("added", "exited", "returned", "monitored", "left_monitoring")


def change_kind(before: str | None, after: str) -> str | None:
    """What a household's 脱贫状态 change means for the monthly change report: added (new to the roster),
    exited (未脱贫 → 已脱贫), returned to poverty (已脱贫 → 未脱贫), monitored (→ 监测户), left monitoring
    (监测户 → another); None for a change that is none of these."""
    if before is None:
        return "added"
    if before == "监测户" and after != "监测户":
        return "left_monitoring"
    if after == "监测户":
        return "monitored"
    if (before, after) == ("未脱贫", "已脱贫"):
        return "exited"
    if (before, after) == ("已脱贫", "未脱贫"):
        return "returned"
    return None
