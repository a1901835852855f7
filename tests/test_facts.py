from decimal import Decimal

import pytest

from survey.facts import (
    DEFAULT_ROLES,
    GROUP_LABELS,
    GROUP_LABELS_EN,
    GROUPS,
    UNMET_ITEMS,
    UNMET_LABELS,
    UNMET_LABELS_EN,
    WARNING_LABELS,
    WARNING_LABELS_EN,
    WARNINGS,
    FactRoles,
    HouseholdFacts,
    Lines,
    counted_income,
    derive,
    facts_missing,
    household_group,
    per_capita_net,
    unmet_items,
    warnings,
)

LINES = Lines()
MET = {
    "food_secure": True,
    "clothing_secure": True,
    "dropout": False,
    "medical_insured": True,
    "housing_safe": True,
    "water_safe": True,
}


def household(per_capita_wages: str | int, members: int = 1, **extra: object) -> dict[str, object]:
    """A household whose only income is wages of members × per_capita_wages, all needs met."""
    wages = Decimal(per_capita_wages) * members
    assert wages == wages.to_integral_value()
    return {"members": members, "income_wages": int(wages), **MET, **extra}


# --- counted income and per capita ---


def test_counted_income_sums_fields_and_missing_is_zero() -> None:
    answers = {"income_wages": 1000, "income_business": 200, "income_transfer": 30}
    assert counted_income(answers, LINES) == Decimal(1230)
    assert counted_income({}, LINES) == Decimal(0)


def test_guaranteed_income_counts_only_when_set() -> None:
    answers = {"income_wages": 1000, "income_guaranteed": 500, "income_property": 7}
    assert counted_income(answers, Lines()) == Decimal(1007)
    assert counted_income(answers, Lines(count_guaranteed=True)) == Decimal(1507)


def test_per_capita_subtracts_production_spending_only() -> None:
    answers = {
        "members": 4,
        "income_wages": 20000,
        "expense_production": 4000,
        "expense_medical": 3000,
        "expense_education": 1000,
    }
    assert per_capita_net(answers, LINES) == Decimal("4000.00")


def test_per_capita_rounds_half_up_to_two_places() -> None:
    assert per_capita_net({"members": 3, "income_wages": 10000}, LINES) == Decimal("3333.33")
    assert per_capita_net({"members": 3, "income_wages": 20000}, LINES) == Decimal("6666.67")
    # 0.125 → 0.13 under ROUND_HALF_UP (banker's rounding would give 0.12)
    assert per_capita_net({"members": 8, "income_wages": 1}, LINES) == Decimal("0.13")


def test_per_capita_may_be_negative() -> None:
    answers = {"members": 2, "income_wages": 1000, "expense_production": 3000}
    assert per_capita_net(answers, LINES) == Decimal("-1000.00")


@pytest.mark.parametrize("members", [None, 0])
def test_per_capita_none_without_members(members: int | None) -> None:
    answers: dict[str, object] = {"income_wages": 10000}
    if members is not None:
        answers["members"] = members
    assert per_capita_net(answers, LINES) is None


def test_money_field_rejects_non_integers() -> None:
    with pytest.raises(TypeError, match="income_wages"):
        counted_income({"income_wages": True}, LINES)
    with pytest.raises(TypeError, match="income_wages"):
        counted_income({"income_wages": "1000"}, LINES)


# --- unmet items ---


def test_unmet_items_fixed_order_and_only_explicit_answers() -> None:
    answers = {
        "water_safe": False,
        "dropout": True,
        "food_secure": False,
        "housing_safe": False,
        "medical_insured": False,
        "clothing_secure": False,
    }
    assert unmet_items(answers) == list(UNMET_ITEMS)
    assert unmet_items({}) == []
    assert unmet_items(MET) == []
    assert unmet_items({"housing_safe": False, "food_secure": True}) == ["housing"]


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("food_secure", False, "food"),
        ("clothing_secure", False, "clothing"),
        ("dropout", True, "dropout"),
        ("medical_insured", False, "medical_insurance"),
        ("housing_safe", False, "housing"),
        ("water_safe", False, "water"),
    ],
)
def test_each_unmet_item(field: str, value: bool, code: str) -> None:
    assert unmet_items({**MET, field: value}) == [code]


# --- groups ---


def test_group_boundary_at_income_line() -> None:
    assert household_group(household(3600), LINES, "未脱贫", None) == "consolidate"
    assert household_group(household("3599.99", members=100), LINES, "未脱贫", None) == "key_support"


def test_group_boundary_uses_rounded_per_capita() -> None:
    # 10799.99 / 3 = 3599.996… → 3600.00, at the line
    answers = {"members": 3, "income_wages": 10800, "expense_production": Decimal("0.01"), **MET}
    assert per_capita_net(answers, LINES) == Decimal("3600.00")
    assert household_group(answers, LINES, "未脱贫", None) == "consolidate"


def test_group_follows_the_county_income_line() -> None:
    answers = household(3500)
    assert household_group(answers, LINES, "未脱贫", None) == "key_support"
    assert household_group(answers, Lines(income_line=Decimal(3442)), "未脱贫", None) == "consolidate"


def test_unmet_item_makes_key_support_even_with_high_income() -> None:
    answers = household(50000, water_safe=False)
    assert household_group(answers, LINES, "已脱贫", Decimal(50000)) == "key_support"


@pytest.mark.parametrize("support", [["低保"], ["特困供养(五保)"], ["残疾人补贴", "低保"]])
def test_safety_net_beats_everything(support: list[str]) -> None:
    poor_and_unmet = {"members": 3, "income_wages": 0, "food_secure": False, "support": support}
    assert household_group(poor_and_unmet, LINES, "未脱贫", None) == "safety_net"
    rich_lifted = household(50000, support=support)
    assert household_group(rich_lifted, LINES, "已脱贫", Decimal(50000)) == "safety_net"


def test_other_support_is_not_safety_net() -> None:
    answers = household(1000, support=["残疾人补贴"])
    assert household_group(answers, LINES, "未脱贫", None) == "key_support"
    answers = household(5000, support=["无"])
    assert household_group(answers, LINES, "未脱贫", None) == "consolidate"


def test_lifted_needs_previous_visit_at_or_above_line() -> None:
    answers = household(3600)
    assert household_group(answers, LINES, "已脱贫", None) == "consolidate"
    assert household_group(answers, LINES, "已脱贫", Decimal("3599.99")) == "consolidate"
    assert household_group(answers, LINES, "已脱贫", Decimal(3600)) == "lifted"


def test_lifted_needs_roster_status() -> None:
    answers = household(8000)
    assert household_group(answers, LINES, "未脱贫", Decimal(8000)) == "consolidate"
    assert household_group(answers, LINES, "已脱贫", Decimal(8000)) == "lifted"


def test_missing_members_is_not_key_support_nor_lifted() -> None:
    answers = {"income_wages": 100, **MET}
    assert household_group(answers, LINES, "已脱贫", Decimal(8000)) == "consolidate"
    assert household_group({**answers, "food_secure": False}, LINES, "已脱贫", None) == "key_support"


def test_count_guaranteed_changes_the_group() -> None:
    answers = {"members": 1, "income_wages": 3000, "income_guaranteed": 600, **MET}
    assert household_group(answers, Lines(), "未脱贫", None) == "key_support"
    assert household_group(answers, Lines(count_guaranteed=True), "未脱贫", None) == "consolidate"


# --- warnings ---


def test_monitoring_line_boundary() -> None:
    assert "below_monitoring_line" not in warnings(household(5000), LINES, None)
    assert "below_monitoring_line" in warnings(household("4999.99", members=100), LINES, None)


def test_no_monitoring_warning_without_members() -> None:
    assert warnings({"income_wages": 100, **MET}, LINES, None) == []


def test_unmet_needs_warning() -> None:
    assert warnings(household(9000, dropout=True), LINES, None) == ["unmet_needs"]


def test_medical_burden_boundary() -> None:
    assert "medical_burden" not in warnings(household(9000, expense_medical=4500), LINES, None)
    assert "medical_burden" in warnings(household(9000, expense_medical=4501), LINES, None)
    # odd income: half is 4500.5, so 4500 is under and 4501 is over
    assert "medical_burden" not in warnings(household(9001, expense_medical=4500), LINES, None)
    assert "medical_burden" in warnings(household(9001, expense_medical=4501), LINES, None)


def test_medical_burden_with_no_income() -> None:
    assert "medical_burden" in warnings({"members": 1, "expense_medical": 1}, LINES, None)
    assert "medical_burden" not in warnings({"members": 1, "expense_medical": 0}, LINES, None)
    assert "medical_burden" not in warnings({"members": 1}, LINES, None)


def test_medical_burden_measured_against_counted_income() -> None:
    answers = {**household(6000), "income_guaranteed": 4000, "expense_medical": 4000}
    assert "medical_burden" in warnings(answers, Lines(), None)
    assert "medical_burden" not in warnings(answers, Lines(count_guaranteed=True), None)


def test_income_drop_boundary() -> None:
    assert "income_drop" not in warnings(household(7000), LINES, Decimal(10000))
    assert "income_drop" in warnings(household(6999), LINES, Decimal(10000))
    assert "income_drop" not in warnings(household(6999), LINES, None)
    assert "income_drop" not in warnings(household(0), LINES, Decimal(0))


def test_count_guaranteed_changes_income_drop() -> None:
    answers = {**household(6000), "income_guaranteed": 2000}
    assert "income_drop" in warnings(answers, Lines(), Decimal(10000))
    assert "income_drop" not in warnings(answers, Lines(count_guaranteed=True), Decimal(10000))


def test_warnings_in_fixed_order() -> None:
    answers = {"members": 1, "income_wages": 1000, "expense_medical": 600, "water_safe": False}
    assert warnings(answers, LINES, Decimal(5000)) == list(WARNINGS)


# --- derive and labels ---


def test_derive_uses_previous_facts() -> None:
    first = derive(household(9000), LINES, "已脱贫", None)
    assert first == HouseholdFacts(
        counted_income=Decimal(9000),
        per_capita_net=Decimal("9000.00"),
        unmet=(),
        group="consolidate",
        warnings=(),
    )
    second = derive(household(4000, expense_medical=2500), LINES, "已脱贫", first)
    assert second.group == "lifted"
    assert second.warnings == ("below_monitoring_line", "medical_burden", "income_drop")


def test_derive_without_members() -> None:
    facts = derive({"income_wages": 100, "housing_safe": False}, LINES, "未脱贫", None)
    assert facts.per_capita_net is None
    assert facts.unmet == ("housing",)
    assert facts.group == "key_support"
    assert facts.warnings == ("unmet_needs",)


@pytest.mark.parametrize(
    ("codes", "labels"),
    [
        (GROUPS, GROUP_LABELS),
        (GROUPS, GROUP_LABELS_EN),
        (WARNINGS, WARNING_LABELS),
        (WARNINGS, WARNING_LABELS_EN),
        (UNMET_ITEMS, UNMET_LABELS),
        (UNMET_ITEMS, UNMET_LABELS_EN),
    ],
)
def test_every_code_has_a_label(codes: tuple[str, ...], labels: dict[str, str]) -> None:
    assert tuple(labels) == codes
    assert all(labels.values())


def test_chinese_labels() -> None:
    assert GROUP_LABELS["safety_net"] == "政策兜底"
    assert GROUP_LABELS["lifted"] == "脱贫达标"
    assert WARNING_LABELS["below_monitoring_line"] == "低于监测线"
    assert UNMET_LABELS["medical_insurance"] == "基本医疗(医保)"


# --- facts by role (issue 17): the script says which question feeds which fact ---

COUNTY = FactRoles(
    {
        "members": ("renkou",),
        "income": ("wugong", "zhongzhi"),
        "income_guaranteed": ("baodi",),
        "expense_production": ("shengchan",),
        "expense_medical": ("yiliao",),
        "support": ("baozhang",),
        "food_secure": ("chi",),
        "clothing_secure": ("chuan",),
        "dropout": ("chuoxue",),
        "medical_insured": ("yibao",),
        "housing_safe": ("zhufang",),
        "water_safe": ("yinshui",),
    }
)
COUNTY_MET = {"chi": True, "chuan": True, "chuoxue": False, "yibao": True, "zhufang": True, "yinshui": True}


def test_facts_read_the_questions_of_each_role_whatever_their_names() -> None:
    answers = {"renkou": 2, "wugong": 6000, "zhongzhi": 3000.5, "baodi": 400, "shengchan": 1000, **COUNTY_MET}
    assert counted_income(answers, LINES, COUNTY) == Decimal("9000.5")
    assert counted_income(answers, Lines(count_guaranteed=True), COUNTY) == Decimal("9400.5")
    assert per_capita_net(answers, LINES, COUNTY) == Decimal("4000.25")
    facts = derive({**answers, "baozhang": ["残疾人补贴"], "yinshui": False}, LINES, "未脱贫", None, COUNTY)
    assert facts.unmet == ("water",)
    assert facts.group == "key_support"
    assert facts.warnings == ("below_monitoring_line", "unmet_needs")
    assert facts.uncollected == ()
    assert derive({**answers, "baozhang": ["低保"]}, LINES, "未脱贫", None, COUNTY).group == "safety_net"


def test_the_built_in_names_mean_nothing_to_a_script_whose_roles_name_other_questions() -> None:
    """The old silent corruption: a county's answers under other names gave income 0, so 重点帮扶 and 预警."""
    facts = derive({**household(9000), "support": ["低保"]}, LINES, "未脱贫", None, FactRoles({}))
    assert facts.counted_income is None and facts.per_capita_net is None
    assert facts.group is None
    assert facts.warnings == ()
    assert set(facts.uncollected) == {"counted_income", "per_capita_net", *UNMET_ITEMS, "group", *WARNINGS}


def test_without_income_questions_income_is_not_collected_and_nobody_is_key_support_for_it() -> None:
    roles = FactRoles({k: v for k, v in COUNTY.fields.items() if k not in ("income", "income_guaranteed")})
    facts = derive({"renkou": 3, "baozhang": [], **COUNTY_MET}, LINES, "已脱贫", None, roles)
    assert facts.counted_income is None and facts.per_capita_net is None
    assert facts.group is None  # might be 重点帮扶 by income: not known, so not 巩固提升 either
    assert facts.warnings == ()
    assert facts.uncollected == (
        "counted_income",
        "per_capita_net",
        "group",
        "below_monitoring_line",
        "medical_burden",
        "income_drop",
    )
    # an unmet item still decides 重点帮扶 and raises its warning without any income
    unmet = derive(
        {"renkou": 3, "baozhang": [], **COUNTY_MET, "zhufang": False}, LINES, "未脱贫", None, roles
    )
    assert unmet.group == "key_support"
    assert unmet.warnings == ("unmet_needs",)


def test_a_missing_item_is_not_collected_not_met() -> None:
    roles = FactRoles({k: v for k, v in COUNTY.fields.items() if k != "water_safe"})
    answers = {"renkou": 1, "wugong": 9000, "baozhang": [], **COUNTY_MET}
    facts = derive(answers, LINES, "未脱贫", None, roles)
    assert facts.group is None and "water" in facts.uncollected and "unmet_needs" in facts.uncollected
    assert facts.per_capita_net == Decimal("9000.00")
    # without the support question no group is certain (政策兜底 would come first)
    no_support = FactRoles({k: v for k, v in COUNTY.fields.items() if k != "support"})
    assert derive({**answers, "zhufang": False}, LINES, "未脱贫", None, no_support).group is None


def test_facts_missing_names_each_fact_and_the_roles_it_lacks() -> None:
    assert facts_missing(DEFAULT_ROLES) == {}
    missing = facts_missing(FactRoles({"members": ("m",), "policy_known": ("p",)}))
    assert missing["per_capita_net"] == ("income", "expense_production")
    assert missing["medical_burden"] == ("income", "expense_medical")
    assert "awareness" not in missing
    assert missing["satisfaction"] == ("satisfaction",)
