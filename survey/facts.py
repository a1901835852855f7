"""Derived household facts: counted income, per-capita net, unmet needs, group and warnings.

The rules are those of "Derived household facts" in visit-script.md. Everything here is a pure
function of one visit's answers, the county's lines and, where a rule compares visits, the
previous visit's figures, so the same answers always give the same facts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

__all__ = [
    "GROUPS",
    "GROUP_LABELS",
    "GROUP_LABELS_EN",
    "INCOME_FIELDS",
    "UNMET_ITEMS",
    "UNMET_LABELS",
    "UNMET_LABELS_EN",
    "WARNINGS",
    "WARNING_LABELS",
    "WARNING_LABELS_EN",
    "HouseholdFacts",
    "Lines",
    "counted_income",
    "derive",
    "household_group",
    "per_capita_net",
    "unmet_items",
    "warnings",
]

CENT = Decimal("0.01")
INCOME_DROP_FLOOR = Decimal("0.7")  # below 70% of the previous income is "down more than 30%"

# Income fields in script order; income_guaranteed counts only when Lines.count_guaranteed is set.
INCOME_FIELDS: tuple[str, ...] = (
    "income_wages",
    "income_business",
    "income_property",
    "income_guaranteed",
    "income_transfer",
)
SAFETY_NET_SUPPORT: frozenset[str] = frozenset({"低保", "特困供养(五保)"})

# (code, answer field, the answer that means "unmet"), in the fixed reporting order.
_UNMET_RULES: tuple[tuple[str, str, bool], ...] = (
    ("food", "food_secure", False),
    ("clothing", "clothing_secure", False),
    ("dropout", "dropout", True),
    ("medical_insurance", "medical_insured", False),
    ("housing", "housing_safe", False),
    ("water", "water_safe", False),
)
UNMET_ITEMS: tuple[str, ...] = tuple(code for code, _, _ in _UNMET_RULES)
UNMET_LABELS: dict[str, str] = {
    "food": "吃",
    "clothing": "穿",
    "dropout": "义务教育(辍学)",
    "medical_insurance": "基本医疗(医保)",
    "housing": "住房安全",
    "water": "饮水安全",
}
UNMET_LABELS_EN: dict[str, str] = {
    "food": "food",
    "clothing": "clothing",
    "dropout": "compulsory education (dropout)",
    "medical_insurance": "basic medical care (insurance)",
    "housing": "safe housing",
    "water": "safe drinking water",
}

GROUPS: tuple[str, ...] = ("safety_net", "key_support", "lifted", "consolidate")
GROUP_LABELS: dict[str, str] = {
    "safety_net": "政策兜底",
    "key_support": "重点帮扶",
    "lifted": "脱贫达标",
    "consolidate": "巩固提升",
}
GROUP_LABELS_EN: dict[str, str] = {
    "safety_net": "policy safety net",
    "key_support": "key support",
    "lifted": "lifted out of poverty",
    "consolidate": "consolidate and improve",
}

WARNINGS: tuple[str, ...] = ("below_monitoring_line", "unmet_needs", "medical_burden", "income_drop")
WARNING_LABELS: dict[str, str] = {
    "below_monitoring_line": "低于监测线",
    "unmet_needs": "两不愁三保障或饮水未达标",
    "medical_burden": "支出型（医疗支出超收入一半）",
    "income_drop": "收入较上次下降超30%",
}
WARNING_LABELS_EN: dict[str, str] = {
    "below_monitoring_line": "below the monitoring line",
    "unmet_needs": "basic needs or drinking water not met",
    "medical_burden": "spending-driven (medical spending over half of income)",
    "income_drop": "income down more than 30% since the previous visit",
}

LIFTED_STATUS = "已脱贫"


@dataclass(frozen=True)
class Lines:
    """A county's lines; the defaults are the seeds' (income line 3600, monitoring line 5000)."""

    income_line: Decimal = Decimal(3600)  # 收入线, per person per year
    monitoring_line: Decimal = Decimal(5000)  # 监测线
    count_guaranteed: bool = False  # whether income_guaranteed (保底收益) counts as income


@dataclass(frozen=True)
class HouseholdFacts:
    """Everything derived from one visit; kept so the next visit can compare against it."""

    counted_income: Decimal
    per_capita_net: Decimal | None
    unmet: tuple[str, ...]
    group: str
    warnings: tuple[str, ...]


def _amount(answers: Mapping[str, object], field: str) -> Decimal:
    """A money answer as Decimal; a skipped field is 0, since skipped means nothing to report."""
    value = answers.get(field)
    if value is None:
        return Decimal(0)
    # bool is an int subclass: a yes/no answer in a money field is a wiring bug, not 0 or 1 yuan.
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise TypeError(f"{field} must be an integer amount of yuan, got {value!r}")
    return Decimal(value)


def _members(answers: Mapping[str, object]) -> int | None:
    """Household size, or None when it cannot divide (missing, zero or not a number)."""
    value = answers.get("members")
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value


def counted_income(answers: Mapping[str, object], lines: Lines) -> Decimal:
    """Sum of the income fields that count; 保底收益 only when the county says it counts."""
    fields = [f for f in INCOME_FIELDS if f != "income_guaranteed" or lines.count_guaranteed]
    return sum((_amount(answers, f) for f in fields), Decimal(0))


def per_capita_net(answers: Mapping[str, object], lines: Lines) -> Decimal | None:
    """(counted income − production spending) / members, to the fen; None without a household size.

    The rounded figure is the one compared with the lines, so what the cadre sees decides.
    """
    members = _members(answers)
    if members is None:
        return None
    net = counted_income(answers, lines) - _amount(answers, "expense_production")
    return (net / members).quantize(CENT, rounding=ROUND_HALF_UP)


def unmet_items(answers: Mapping[str, object]) -> list[str]:
    """Unmet 两不愁三保障 + water items in fixed order; only an explicit answer counts."""
    return [code for code, field, unmet in _UNMET_RULES if answers.get(field) is unmet]


def _support(answers: Mapping[str, object]) -> set[str]:
    """The 帮扶 support options chosen; a lone string is taken as one option, not as characters."""
    value = answers.get("support")
    if isinstance(value, str):
        return {value}
    if isinstance(value, Iterable):
        return {str(item) for item in value}
    return set()


def _group(
    support: set[str],
    per_capita: Decimal | None,
    unmet: list[str],
    lines: Lines,
    roster_status: str,
    previous_per_capita: Decimal | None,
) -> str:
    if support & SAFETY_NET_SUPPORT:
        return "safety_net"
    if unmet or (per_capita is not None and per_capita < lines.income_line):
        return "key_support"
    if (
        roster_status == LIFTED_STATUS
        and per_capita is not None
        and previous_per_capita is not None
        and per_capita >= lines.income_line
        and previous_per_capita >= lines.income_line
    ):
        return "lifted"
    return "consolidate"


def household_group(
    answers: Mapping[str, object],
    lines: Lines,
    roster_status: str,
    previous_per_capita: Decimal | None,
) -> str:
    """四类人群 code, first match wins (safety_net, key_support, lifted, consolidate).

    Without a household size the income test cannot run: such a household is key_support only
    through an unmet item, and never lifted.
    """
    return _group(
        _support(answers),
        per_capita_net(answers, lines),
        unmet_items(answers),
        lines,
        roster_status,
        previous_per_capita,
    )


def warnings(
    answers: Mapping[str, object],
    lines: Lines,
    previous_counted_income: Decimal | None,
) -> list[str]:
    """返贫预警 codes in fixed order; each threshold is strict, so landing on it is no warning."""
    income = counted_income(answers, lines)
    per_capita = per_capita_net(answers, lines)
    found: list[str] = []
    if per_capita is not None and per_capita < lines.monitoring_line:
        found.append("below_monitoring_line")
    if unmet_items(answers):
        found.append("unmet_needs")
    # Compared as 2 × medical > income so no rounding of "half" can move the boundary.
    if 2 * _amount(answers, "expense_medical") > income:
        found.append("medical_burden")
    if (
        previous_counted_income is not None
        and previous_counted_income > 0
        and income < INCOME_DROP_FLOOR * previous_counted_income
    ):
        found.append("income_drop")
    return found


def derive(
    answers: Mapping[str, object],
    lines: Lines,
    roster_status: str,
    previous: HouseholdFacts | None,
) -> HouseholdFacts:
    """All facts of one visit; `previous` is the facts of the household's previous submitted visit."""
    per_capita = per_capita_net(answers, lines)
    unmet = unmet_items(answers)
    group = _group(
        _support(answers),
        per_capita,
        unmet,
        lines,
        roster_status,
        previous.per_capita_net if previous else None,
    )
    return HouseholdFacts(
        counted_income=counted_income(answers, lines),
        per_capita_net=per_capita,
        unmet=tuple(unmet),
        group=group,
        warnings=tuple(warnings(answers, lines, previous.counted_income if previous else None)),
    )
