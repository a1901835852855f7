"""`zoufang script check|import|export`: the visit script, as JSON or as an XLSForm workbook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from bot.cli.base import (
    Failure,
    main,
    phrase,
    settings,
)


@main.group()
def script() -> None:
    """Visit scripts (the default 五问四讲三看一化解, or a county's own file)."""


@script.command()
@click.argument("file", type=click.Path(path_type=Path), required=False)
def check(file: Path | None) -> None:
    """Validate a script file, JSON or XLSForm .xlsx (default: ZOUFANG_SCRIPT, or the built-in script);
    every fault is listed, each naming its question (for a workbook: its sheet, row and column)."""
    loaded = _script_or_faults(str(file) if file else settings().script)
    count = sum(1 + len(q.questions) for q in loaded.questions())
    sections = len(loaded.sections)
    click.echo(phrase("script_ok", id=loaded.id, version=loaded.version, sections=sections, questions=count))
    _role_notes(loaded)


def _role_notes(loaded: Any) -> None:
    """Which question feeds each derived fact, and the facts the script will not collect (a warning: a county
    may mean not to ask income; its households are then 未采集, never 0)."""
    from survey.script import role_warnings

    roles = loaded.roles
    if roles.fields and not roles.fallback:
        read = "; ".join(f"{role}={', '.join(names)}" for role, names in roles.fields.items())
        click.echo(phrase("script_roles", roles=read))
    for note in role_warnings(loaded):
        click.echo(phrase("script_note", note=note))


def _script_or_faults(path: str | None) -> Any:
    """The script, or exit 1 with one line saying how many faults and then one line per fault."""
    from bot.script_files import load_script_file
    from survey.script import ScriptError

    try:
        return load_script_file(path or None)
    except ScriptError as exc:
        _faults(phrase("script_invalid", path=path), exc.errors)
        raise SystemExit(1) from exc


def _faults(what: str, errors: list[str]) -> None:
    """One fault on one line; several: how many, then one line each (a county fixes them all in one pass)."""
    if len(errors) == 1:
        click.echo(f"zoufang: {phrase('one_fault', what=what, fault=errors[0])}", err=True)
        return
    click.echo(f"zoufang: {phrase('faults', what=what, count=len(errors))}", err=True)
    for error in errors:
        click.echo(f"  {error}", err=True)


@script.command(name="import")
@click.argument("form", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="JSON file to write (default: standard output)",
)
def script_import(form: Path, output: Path | None) -> None:
    """Read an XLSForm workbook (survey, choices, settings) into zoufang's JSON script, checked whole."""
    import json

    from bot.script_files import read_workbook
    from survey.xlsform import FormError, build_located, definition_from_sheets

    if form.suffix.lower() != ".xlsx":
        raise Failure(phrase("not_xlsx", path=form))
    if not form.is_file():
        raise Failure(phrase("no_file", path=form))
    try:
        reading = definition_from_sheets(read_workbook(form))
        loaded = build_located(reading)
    except FormError as exc:
        _faults(phrase("form_invalid", path=form), exc.errors)
        raise SystemExit(1) from exc
    text = json.dumps(reading.definition, ensure_ascii=False, indent=2) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise Failure(phrase("cannot_write", path=output, why=exc.strerror or exc)) from exc
    count = sum(1 + len(q.questions) for q in loaded.questions())
    written = output.resolve()
    click.echo(phrase("script_written", path=written, id=loaded.id, version=loaded.version, questions=count))


@script.command(name="export")
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="workbook to write (default: <script id>-<version>.xlsx)",
)
def script_export(output: Path | None) -> None:
    """Write the script in force (ZOUFANG_SCRIPT, or the built-in one) as an XLSForm workbook to edit in
    Excel; `zoufang script check` or `import` reads it back."""
    from bot.script_files import write_xlsform

    loaded = _script_or_faults(settings().script)
    path = output or Path(f"{loaded.id}-{loaded.version}.xlsx")
    try:
        write_xlsform(loaded, path)
    except OSError as exc:
        raise Failure(phrase("cannot_write", path=path, why=exc.strerror or exc)) from exc
    click.echo(phrase("wrote", path=path.resolve()))
