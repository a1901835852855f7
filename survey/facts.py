"""Derived household facts: counted income, per-capita net, unmet needs, group and warnings.

The rules are those of "Derived household facts" in visit-script.md. Everything here is a pure
function of one visit's answers, the county's lines and, where a rule compares visits, the
previous visit's figures, so the same answers always give the same facts.

Facts read answers by *role*, not by question name: the script tags the questions that feed a fact
(`"role": "income"` on a question; `bind::zoufang:role` in XLSForm), and `FactRoles` maps each role to
the questions carrying it. A fact whose roles the script lacks is not collected (未采集): it is None and
named in `HouseholdFacts.uncollected`, never computed as 0 from answers that were never asked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

__all__ = [
    "BUILTIN_ROLES",
    "DEFAULT_ROLES",
    "FACT_LABELS",
    "FACT_LABELS_EN",
    "FACT_ROLES",
    "GROUPS",
    "GROUP_LABELS",
    "GROUP_LABELS_EN",
    "ROLES",
    "UNMET_ITEMS",
    "UNMET_LABELS",
    "UNMET_LABELS_EN",
    "WARNINGS",
    "WARNING_LABELS",
    "WARNING_LABELS_EN",
    "FactRoles",
    "HouseholdFacts",
    "Lines",
    "RoleSpec",
    "counted_income",
    "derive",
    "facts_missing",
    "household_group",
    "per_capita_net",
    "unmet_items",
    "warnings",
]

CENT = Decimal("0.01")
INCOME_DROP_FLOOR = Decimal("0.7")  # below 70% of the previous income is "down more than 30%"

SAFETY_NET_SUPPORT: frozenset[str] = frozenset({"低保", "特困供养(五保)"})


@dataclass(frozen=True)
class RoleSpec:
    """What a role may be put on: the question types, and whether several questions may carry it."""

    types: tuple[str, ...]
    many: bool
    label: str
    label_en: str


_MONEY = ("integer", "decimal")
_TALK = ("yes_no", "confirm")
# Every role a derived fact or a report reads, with the types it takes. Several questions may carry a
# summed role (income sources, spending); the others are one answer each.
ROLES: dict[str, RoleSpec] = {
    "members": RoleSpec(("integer",), False, "家庭人口", "household members"),
    "income": RoleSpec(_MONEY, True, "收入（每项来源）", "income (each source)"),
    "income_guaranteed": RoleSpec(_MONEY, True, "保底收益", "guaranteed income"),
    "expense_production": RoleSpec(_MONEY, True, "生产经营支出", "production spending"),
    "expense_medical": RoleSpec(_MONEY, True, "医疗支出", "medical spending"),
    "support": RoleSpec(("several_of", "one_of"), False, "享受的保障（低保、特困供养）", "support received"),
    "food_secure": RoleSpec(("yes_no",), False, "不愁吃（是=达标）", "food secure (yes = met)"),
    "clothing_secure": RoleSpec(("yes_no",), False, "不愁穿（是=达标）", "clothing secure (yes = met)"),
    "dropout": RoleSpec(("yes_no",), False, "义务教育辍学（是=未达标）", "a child dropped out (yes = unmet)"),
    "medical_insured": RoleSpec(
        ("yes_no",), False, "参加基本医保（是=达标）", "medically insured (yes = met)"
    ),
    "housing_safe": RoleSpec(("yes_no",), False, "住房安全（是=达标）", "safe housing (yes = met)"),
    "water_safe": RoleSpec(("yes_no",), False, "饮水安全（是=达标）", "safe drinking water (yes = met)"),
    "policy_known": RoleSpec(("yes_no",), False, "政策知晓", "knows the support policies"),
    # 一册两表 (the household's handbook and its income and medical forms) seen up to date: report handbook
    "handbook_current": RoleSpec(
        ("yes_no",), False, "扶贫手册齐全并更新", "support handbook present and up to date"
    ),
    "income_sheet_current": RoleSpec(("yes_no",), False, "家庭收入情况一览表相符", "income sheet matches"),
    "medical_sheet_current": RoleSpec(
        ("yes_no",), False, "家庭治疗用药情况一览表相符", "medical sheet matches"
    ),
    # 四讲 given (report talks). Scripts before 2026.2 asked them as `confirm` (done only): a confirmation
    # is stored as a yes, so those scripts still tag them.
    "talk_party": RoleSpec(_TALK, False, "讲党恩", "talked about the party's care"),
    "talk_policy": RoleSpec(_TALK, False, "讲政策", "explained the policies"),
    "talk_hope": RoleSpec(_TALK, False, "讲希望", "talked about hope"),
    "talk_aspiration": RoleSpec(_TALK, False, "讲励志", "talked about aspiration"),
    "pension_insured": RoleSpec(("yes_no",), False, "参加养老保险（是=达标）", "pension insured (yes = met)"),
    "satisfaction": RoleSpec(("one_of",), False, "群众满意度（满意/基本满意/不满意）", "satisfaction"),
}

# The built-in script's question of each role: the names a script without any role tag is read by.
BUILTIN_ROLES: dict[str, tuple[str, ...]] = {
    "members": ("members",),
    "income": ("income_wages", "income_business", "income_property", "income_transfer"),
    "income_guaranteed": ("income_guaranteed",),
    "expense_production": ("expense_production",),
    "expense_medical": ("expense_medical",),
    "support": ("support",),
    "food_secure": ("food_secure",),
    "clothing_secure": ("clothing_secure",),
    "dropout": ("dropout",),
    "medical_insured": ("medical_insured",),
    "housing_safe": ("housing_safe",),
    "water_safe": ("water_safe",),
    "policy_known": ("policy_known",),
    "handbook_current": ("handbook_current",),
    "income_sheet_current": ("income_sheet_current",),
    "medical_sheet_current": ("medical_sheet_current",),
    "talk_party": ("talk_party",),
    "talk_policy": ("talk_policy",),
    "talk_hope": ("talk_hope",),
    "talk_aspiration": ("talk_aspiration",),
    "pension_insured": ("pension_insured",),
    "satisfaction": ("satisfaction",),
}


@dataclass(frozen=True)
class FactRoles:
    """Role → the script's questions carrying it (in script order); `fallback`: read by the built-in names
    because the script tags no role at all."""

    fields: Mapping[str, tuple[str, ...]]
    fallback: bool = False

    def of(self, role: str) -> tuple[str, ...]:
        return self.fields.get(role, ())

    def has(self, *roles: str) -> bool:
        return all(self.fields.get(r) for r in roles)

    def first(self, role: str) -> str | None:
        names = self.fields.get(role, ())
        return names[0] if names else None


DEFAULT_ROLES = FactRoles(BUILTIN_ROLES)

# (code, the role of its question, the answer that means "unmet"), in the fixed reporting order.
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

# The roles each fact needs; a fact whose roles are not all in the script is not collected (未采集).
_PER_CAPITA_ROLES = ("income", "expense_production", "members")
_UNMET_ROLES = tuple(field for _, field, _ in _UNMET_RULES)
FACT_ROLES: dict[str, tuple[str, ...]] = {
    "counted_income": ("income",),
    "per_capita_net": _PER_CAPITA_ROLES,
    **{code: (field,) for code, field, _ in _UNMET_RULES},
    "group": ("support", *_PER_CAPITA_ROLES, *_UNMET_ROLES),
    "below_monitoring_line": _PER_CAPITA_ROLES,
    "unmet_needs": _UNMET_ROLES,
    "medical_burden": ("income", "expense_medical"),
    "income_drop": ("income",),
    "awareness": ("policy_known",),
    "satisfaction": ("satisfaction",),
}
FACT_LABELS: dict[str, str] = {
    "counted_income": "家庭收入",
    "per_capita_net": "人均纯收入",
    **UNMET_LABELS,
    "group": "四类人群分组",
    **{code: f"返贫预警：{label}" for code, label in WARNING_LABELS.items()},
    "awareness": "政策知晓率",
    "satisfaction": "走访记录的满意度",
}
FACT_LABELS_EN: dict[str, str] = {
    "counted_income": "household income",
    "per_capita_net": "per-capita net income",
    **UNMET_LABELS_EN,
    "group": "household group",
    **{code: f"warning: {label}" for code, label in WARNING_LABELS_EN.items()},
    "awareness": "policy awareness",
    "satisfaction": "satisfaction recorded in visits",
}


def facts_missing(roles: FactRoles) -> dict[str, tuple[str, ...]]:
    """Fact code → the roles it needs that the script lacks, for every fact that will not be computed."""
    missing = {fact: tuple(r for r in needs if not roles.of(r)) for fact, needs in FACT_ROLES.items()}
    return {fact: lacking for fact, lacking in missing.items() if lacking}


@dataclass(frozen=True)
class Lines:
    """A county's lines; the defaults are the seeds' (income line 3600, monitoring line 5000)."""

    income_line: Decimal = Decimal(3600)  # 收入线, per person per year
    monitoring_line: Decimal = Decimal(5000)  # 监测线
    count_guaranteed: bool = False  # whether income_guaranteed (保底收益) counts as income


@dataclass(frozen=True)
class HouseholdFacts:
    """Everything derived from one visit; kept so the next visit can compare against it.

    A figure the script did not collect is None, and its code is in `uncollected` (with each unmet item,
    the group and each warning that could not be judged), so it is reported as 未采集, never as 0.
    """

    counted_income: Decimal | None
    per_capita_net: Decimal | None
    unmet: tuple[str, ...]
    group: str | None
    warnings: tuple[str, ...]
    uncollected: tuple[str, ...] = ()


def _amount(answers: Mapping[str, object], field: str) -> Decimal:
    """A money answer as Decimal; a skipped field is 0, since skipped means nothing to report."""
    value = answers.get(field)
    if value is None:
        return Decimal(0)
    # bool is an int subclass: a yes/no answer in a money field is a wiring bug, not 0 or 1 yuan.
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise TypeError(f"{field} must be an amount of yuan, got {value!r}")
    return Decimal(str(value)) if isinstance(value, float) else Decimal(value)


def _sum(answers: Mapping[str, object], fields: Iterable[str]) -> Decimal:
    return sum((_amount(answers, f) for f in fields), Decimal(0))


def _members(answers: Mapping[str, object], roles: FactRoles) -> int | None:
    """Household size, or None when it cannot divide (missing, zero or not a number)."""
    field = roles.first("members")
    value = answers.get(field) if field else None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value


def counted_income(
    answers: Mapping[str, object], lines: Lines, roles: FactRoles = DEFAULT_ROLES
) -> Decimal | None:
    """Sum of the income answers that count; 保底收益 only when the county says it counts.

    None (未采集) when the script has no income question at all."""
    if not roles.has("income"):
        return None
    fields = [*roles.of("income"), *(roles.of("income_guaranteed") if lines.count_guaranteed else ())]
    return _sum(answers, fields)


def per_capita_net(
    answers: Mapping[str, object], lines: Lines, roles: FactRoles = DEFAULT_ROLES
) -> Decimal | None:
    """(counted income − production spending) / members, to the fen; None without a household size, or
    when the script lacks income, production spending or members (未采集).

    The rounded figure is the one compared with the lines, so what the cadre sees decides.
    """
    income = counted_income(answers, lines, roles)
    members = _members(answers, roles)
    if income is None or members is None or not roles.has(*_PER_CAPITA_ROLES):
        return None
    net = income - _sum(answers, roles.of("expense_production"))
    return (net / members).quantize(CENT, rounding=ROUND_HALF_UP)


def unmet_items(answers: Mapping[str, object], roles: FactRoles = DEFAULT_ROLES) -> list[str]:
    """Unmet 两不愁三保障 + water items in fixed order; only an explicit answer counts."""
    return [
        code
        for code, role, unmet in _UNMET_RULES
        if (field := roles.first(role)) is not None and answers.get(field) is unmet
    ]


def _uncollected_items(roles: FactRoles) -> list[str]:
    return [code for code, role, _ in _UNMET_RULES if not roles.has(role)]


def _support(answers: Mapping[str, object], roles: FactRoles) -> set[str] | None:
    """The 帮扶 support options chosen (None: not collected); a lone string is one option, not characters."""
    field = roles.first("support")
    if field is None:
        return None
    value = answers.get(field)
    if isinstance(value, str):
        return {value}
    if isinstance(value, Iterable):
        return {str(item) for item in value}
    return set()


def _group(
    support: set[str] | None,
    per_capita: Decimal | None,
    unmet: list[str],
    lines: Lines,
    roster_status: str,
    previous_per_capita: Decimal | None,
    roles: FactRoles,
) -> str | None:
    """First match wins; None (未采集) as soon as a rule that could have matched cannot be judged."""
    if support is None:
        return None  # 政策兜底 comes first: without the support question no group is certain
    if support & SAFETY_NET_SUPPORT:
        return "safety_net"
    if unmet or (per_capita is not None and per_capita < lines.income_line):
        return "key_support"
    if not roles.has(*_PER_CAPITA_ROLES) or _uncollected_items(roles):
        return None  # it might be 重点帮扶: an income or an item not collected is not "met"
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
    roles: FactRoles = DEFAULT_ROLES,
) -> str | None:
    """四类人群 code, first match wins (safety_net, key_support, lifted, consolidate); None when the
    script lacks a question the deciding rule needs (未采集).

    Without a household size the income test cannot run: such a household is key_support only
    through an unmet item, and never lifted.
    """
    return _group(
        _support(answers, roles),
        per_capita_net(answers, lines, roles),
        unmet_items(answers, roles),
        lines,
        roster_status,
        previous_per_capita,
        roles,
    )


def _warnings(
    answers: Mapping[str, object],
    lines: Lines,
    previous_counted_income: Decimal | None,
    roles: FactRoles,
) -> tuple[list[str], list[str]]:
    """(warnings found, warnings that could not be judged for want of a question)."""
    income = counted_income(answers, lines, roles)
    per_capita = per_capita_net(answers, lines, roles)
    found: list[str] = []
    unjudged: list[str] = []
    if not roles.has(*_PER_CAPITA_ROLES):
        unjudged.append("below_monitoring_line")
    elif per_capita is not None and per_capita < lines.monitoring_line:
        found.append("below_monitoring_line")
    if unmet_items(answers, roles):
        found.append("unmet_needs")
    elif _uncollected_items(roles):
        unjudged.append("unmet_needs")
    if income is None or not roles.has("expense_medical"):
        unjudged.append("medical_burden")
    # Compared as 2 × medical > income so no rounding of "half" can move the boundary.
    elif 2 * _sum(answers, roles.of("expense_medical")) > income:
        found.append("medical_burden")
    if income is None:
        unjudged.append("income_drop")
    elif (
        previous_counted_income is not None
        and previous_counted_income > 0
        and income < INCOME_DROP_FLOOR * previous_counted_income
    ):
        found.append("income_drop")
    return found, unjudged


def warnings(
    answers: Mapping[str, object],
    lines: Lines,
    previous_counted_income: Decimal | None,
    roles: FactRoles = DEFAULT_ROLES,
) -> list[str]:
    """返贫预警 codes in fixed order; each threshold is strict, so landing on it is no warning.

    A warning whose questions the script lacks is not raised (it is 未采集, see derive)."""
    return _warnings(answers, lines, previous_counted_income, roles)[0]


def derive(
    answers: Mapping[str, object],
    lines: Lines,
    roster_status: str,
    previous: HouseholdFacts | None,
    roles: FactRoles = DEFAULT_ROLES,
) -> HouseholdFacts:
    """All facts of one visit; `previous` is the facts of the household's previous submitted visit, `roles`
    the script's (Script.roles)."""
    income = counted_income(answers, lines, roles)
    per_capita = per_capita_net(answers, lines, roles)
    unmet = unmet_items(answers, roles)
    group = _group(
        _support(answers, roles),
        per_capita,
        unmet,
        lines,
        roster_status,
        previous.per_capita_net if previous else None,
        roles,
    )
    found, unjudged = _warnings(answers, lines, previous.counted_income if previous else None, roles)
    uncollected = [
        *(["counted_income"] if income is None else []),
        *([] if roles.has(*_PER_CAPITA_ROLES) else ["per_capita_net"]),
        *_uncollected_items(roles),
        *(["group"] if group is None else []),
        *unjudged,
    ]
    return HouseholdFacts(
        counted_income=income,
        per_capita_net=per_capita,
        unmet=tuple(unmet),
        group=group,
        warnings=tuple(found),
        uncollected=tuple(uncollected),
    )
