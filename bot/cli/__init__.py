"""The `zoufang` command: the click group (bot.cli.base) and one module per command group, imported here so that
every command is registered. The console script is `zoufang = bot.cli:main`."""

from bot.cli import (  # noqa: F401 - each module registers its commands on the group
    audit,
    county,
    exports,
    meeting,
    polls,
    problems,
    reports,
    roster,
    script,
    serve,
    setup,
    visits,
    web,
    worklog,
)
from bot.cli.base import main

__all__ = ["main"]
