"""The indicators of indicators.md as reports: filters resolved, SQL rollups read, rows with honest rates built.

Every figure comes from storage.reports (aggregation in the database); these modules only name, rate and sort
one row per village, township, cadre or flagged case. One module a report family:

    base.py            Context, ReportError, the --period and --township/--village filters
    rates.py           satisfaction and policy awareness, by village, township or cadre
    visit_coverage.py  coverage per cadre against the role's target
    groups.py          household groups and basic needs, the 返贫预警 list
    integrity_flags.py the flags for a second look
    problem_counts.py  problems opened and closed, by month or township
    meeting.py         the township meeting's tally and the county's overdue list
    audit.py           the audit trail
    duties.py          the plans' duties: 98 % targets, exited-check, township ranking, days in the village,
                       the four lists
    output.py          Report and Column, and their forms: the screen table, CSV, XLSX, PNG

The modules are named apart from the report functions, so `bot.reports.coverage` is always the function.
This package re-exports every name callers use: `from bot import reports; await reports.coverage(...)`, and
the output's Column, Report, writers and charts.
"""

from bot.reports.audit import AUDIT_ACTIONS, audit_trail
from bot.reports.base import Context, ReportError, area_from, period_from
from bot.reports.duties import days_in_village, exited_check, lists, ranking, targets
from bot.reports.groups import group_from, households, warnings
from bot.reports.integrity_flags import integrity
from bot.reports.meeting import overdue, tally
from bot.reports.output import (
    CJK_FONT_FILE_NAME,
    NO_DATA,
    Column,
    Report,
    cjk_font_path,
    count_bars,
    emit,
    print_table,
    rate_bars,
    write_xlsx,
)
from bot.reports.problem_counts import problems, problems_by_township
from bot.reports.rates import AWARENESS_FIELD, BY, awareness, satisfaction, satisfaction_row
from bot.reports.visit_coverage import (
    COVERAGE_COLUMNS,
    FILE_LEFT_LIMIT,
    NAMED_CADRES,
    TARGETED_ROLES,
    coverage,
    role_from,
)

__all__ = [
    "AUDIT_ACTIONS",
    "AWARENESS_FIELD",
    "BY",
    "CJK_FONT_FILE_NAME",
    "COVERAGE_COLUMNS",
    "FILE_LEFT_LIMIT",
    "NAMED_CADRES",
    "NO_DATA",
    "TARGETED_ROLES",
    "Column",
    "Context",
    "Report",
    "ReportError",
    "area_from",
    "audit_trail",
    "awareness",
    "cjk_font_path",
    "count_bars",
    "coverage",
    "days_in_village",
    "emit",
    "exited_check",
    "group_from",
    "households",
    "integrity",
    "lists",
    "overdue",
    "period_from",
    "print_table",
    "problems",
    "problems_by_township",
    "ranking",
    "rate_bars",
    "role_from",
    "satisfaction",
    "satisfaction_row",
    "tally",
    "targets",
    "warnings",
    "write_xlsx",
]
