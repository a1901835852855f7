"""`zoufang script check|import|export`: the visit script, as JSON or as an XLSForm workbook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from bot.cli.base import (
    Failure,
    main,
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
    click.echo(f"脚本有效：{loaded.id} 版本 {loaded.version}，{len(loaded.sections)} 个部分，{count} 道题")


def _script_or_faults(path: str | None) -> Any:
    """The script, or exit 1 with one line saying how many faults and then one line per fault."""
    from bot.script_files import load_script_file
    from survey.script import ScriptError

    try:
        return load_script_file(path or None)
    except ScriptError as exc:
        _faults(f"脚本 {path or '（内置）'} 无效", exc.errors)
        raise SystemExit(1) from exc


def _faults(what: str, errors: list[str]) -> None:
    """One fault on one line; several: how many, then one line each (a county fixes them all in one pass)."""
    if len(errors) == 1:
        click.echo(f"zoufang: {what}：{errors[0]}", err=True)
        return
    click.echo(f"zoufang: {what}，共 {len(errors)} 处：", err=True)
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
        raise Failure(f"{form} 不是 .xlsx：XLSForm 请存为 Excel 工作簿（.xlsx）")
    if not form.is_file():
        raise Failure(f"找不到文件 {form}")
    try:
        reading = definition_from_sheets(read_workbook(form))
        loaded = build_located(reading)
    except FormError as exc:
        _faults(f"表单 {form} 无效", exc.errors)
        raise SystemExit(1) from exc
    text = json.dumps(reading.definition, ensure_ascii=False, indent=2) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise Failure(f"无法写入 {output}：{exc.strerror or exc}") from exc
    count = sum(1 + len(q.questions) for q in loaded.questions())
    click.echo(f"已写入 {output.resolve()}：{loaded.id} 版本 {loaded.version}，{count} 道题")


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
        raise Failure(f"无法写入 {path}：{exc.strerror or exc}") from exc
    click.echo(f"已写入 {path.resolve()}")
