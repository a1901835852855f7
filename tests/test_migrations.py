"""Migrations on every configured backend: upgrade from empty gives the models' schema; an upgrade from the previous
revisions keeps the data and fills the new columns (0006 fingerprints visits, 0007 records problems' first moves,
0010 stores each poll's village and rated visit and each household's latest visit)."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from storage.db import Database, sqlite_url
from storage.migrate import current_revision, upgrade
from storage.models import Base
from survey.integrity import answers_digest
from tests.conftest import _pg_admin, _pg_url


async def downgrade(db: Database, revision: str) -> None:
    from alembic import command

    from storage.migrate import alembic_config

    def run(connection: object) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    async with db.engine.begin() as conn:
        await conn.run_sync(run)


@pytest.fixture
async def empty(backend: str, tmp_path: Path) -> AsyncIterator[Database]:
    """An empty database, not migrated."""
    if backend == "postgresql":
        name = f"zoufang_migrations_{os.getpid()}"
        await _pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await _pg_admin(f"CREATE DATABASE {name}")
        database = Database(_pg_url(name))
        yield database
        await database.close()
        await _pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        return
    database = Database(sqlite_url(tmp_path / "empty.db"))
    yield database
    await database.close()


async def test_upgrade_from_empty_gives_the_models_schema(empty: Database):
    await upgrade(empty)
    assert await current_revision(empty) == "0018"
    async with empty.engine.connect() as conn:
        differences = await conn.run_sync(
            lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
        )
    assert differences == []


async def test_upgrade_from_0005_with_data_keeps_it_and_fills_the_new_columns(empty: Database):
    await upgrade(empty, "0005")
    answers = {"members": 3, "food_secure": True, "location": {"lat": 30.1, "lon": 110.2}}
    statements = [
        "INSERT INTO counties (id, name) VALUES (1, '示范县')",
        "INSERT INTO townships (id, county_id, name) VALUES (1, 1, '东风镇')",
        "INSERT INTO villages (id, township_id, name) VALUES (1, 1, '新华村')",
        "INSERT INTO cadres (id, code, name, phone, role, township_id) "
        "VALUES (1, 'GB001', '刘', '+8613800000000', '第一书记', 1)",
        "INSERT INTO households (id, code, village_id, head_name, members, status) VALUES (1, 'H1', 1, '王', 3, '未脱贫')",
    ]
    visit = (
        "INSERT INTO visits (id, household_id, cadre_id, script_id, script_version, channel, status, started_at, "
        "updated_at, submitted_at, session) VALUES (:id, 1, 1, 's', '1', 'console', :status, :t0, :t1, :t1, :session)"
    )
    problem = (
        "INSERT INTO problems (id, household_id, visit_id, raised_by_id, source, category, description, "
        "resolved_on_site, resolution, status, created_at, closed_at) "
        "VALUES (:id, 1, 1, 1, 'visit', '饮水', '水管冻裂', :on_site, :resolution, :status, :t1, :closed)"
    )
    from datetime import UTC, datetime

    t0, t1 = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 1, 0, 30, tzinfo=UTC)
    async with empty.engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement))
        for id_, status, payload in ((1, "submitted", answers), (2, "draft", {})):
            session = json.dumps({"answers": payload})
            await conn.execute(
                text(visit), {"id": id_, "status": status, "session": session, "t0": t0, "t1": t1}
            )
        await conn.execute(
            text(problem),
            {"id": 1, "on_site": True, "resolution": "修好了", "status": "closed", "t1": t1, "closed": t1},
        )
        await conn.execute(
            text(problem),
            {"id": 2, "on_site": False, "resolution": None, "status": "escalated", "t1": t1, "closed": None},
        )
    await upgrade(empty)
    async with empty.engine.connect() as conn:
        digests = (await conn.execute(text("SELECT id, answers_digest FROM visits ORDER BY id"))).all()
        problems = (
            await conn.execute(text("SELECT id, status, escalated_at IS NOT NULL FROM problems ORDER BY id"))
        ).all()
        moves = (
            await conn.execute(
                text(
                    "SELECT problem_id, action, from_state, to_state, actor_id, note FROM problem_events ORDER BY problem_id"
                )
            )
        ).all()
        channels = (
            await conn.execute(text("SELECT count(*) FROM outbox_messages WHERE channel != 'sms'"))
        ).scalar_one()
    assert [tuple(r) for r in digests] == [(1, answers_digest(answers)), (2, None)]
    assert [tuple(r) for r in problems] == [(1, "closed", False), (2, "escalated", True)]
    assert [tuple(r) for r in moves] == [
        (1, "resolve_on_site", "raised", "closed", 1, "修好了"),
        (2, "escalate", "raised", "escalated", 1, None),
    ]
    assert channels == 0


async def test_upgrade_to_0010_fills_each_polls_village_and_rated_visit_and_each_households_latest(
    empty: Database,
):
    """The attributions the reports computed per query, stored from data written before 0010: a poll rates the
    household's latest submitted visit at or before it (equal times: the higher id), drafts never count."""
    from datetime import UTC, datetime

    await upgrade(empty, "0009")

    def at(day: int, hour: int = 9) -> datetime:
        return datetime(2026, 10, day, hour, tzinfo=UTC)

    places = [
        "INSERT INTO counties (id, name) VALUES (1, '示范县')",
        "INSERT INTO townships (id, county_id, name) VALUES (1, 1, '东风镇')",
        "INSERT INTO villages (id, township_id, name) VALUES (1, 1, '新华村'), (2, 1, '永安村')",
        "INSERT INTO cadres (id, code, name, phone, role, township_id) "
        "VALUES (1, 'GB001', '刘', '+8613800000000', '第一书记', 1)",
        "INSERT INTO households (id, code, village_id, head_name, members, status) "
        "VALUES (1, 'H1', 1, '王', 3, '未脱贫'), (2, 'H2', 2, '李', 2, '未脱贫'), (3, 'H3', 2, '张', 1, '已脱贫')",
    ]
    visit = (
        "INSERT INTO visits (id, household_id, cadre_id, script_id, script_version, channel, status, started_at, "
        "updated_at, submitted_at, session) VALUES (:id, :h, 1, 's', '1', 'console', :status, :t, :t, :t, '{}')"
    )
    visits = [  # (id, household, status, submitted at)
        (1, 1, "submitted", at(1)),
        (2, 1, "submitted", at(5)),
        (3, 1, "submitted", at(5)),  # the same instant as 2: the higher id is the latest
        (4, 1, "draft", at(9)),  # a draft rates nothing and is nobody's latest
        (5, 2, "submitted", at(20)),
        (6, 1, "submitted", at(25)),
    ]
    poll = (
        "INSERT INTO polls (id, household_id, phone, period, state, locale, created_at, send_after, clarified, "
        "callback) VALUES (:id, :h, '+8613900000000', :period, 'answered', 'zh_CN', :t, :t, false, false)"
    )
    polls = [  # (id, household, created at)
        (1, 1, at(1, 8)),  # before any visit
        (2, 1, at(3)),  # after visit 1
        (3, 1, at(5)),  # at the instant of visits 2 and 3: at or before counts
        (4, 1, at(10)),  # after the draft, still visit 3
        (5, 2, at(21)),
        (6, 3, at(21)),  # never visited
    ]
    async with empty.engine.begin() as conn:
        for statement in places:
            await conn.execute(text(statement))
        for id_, household, status, t in visits:
            await conn.execute(text(visit), {"id": id_, "h": household, "status": status, "t": t})
        for id_, household, t in polls:
            await conn.execute(text(poll), {"id": id_, "h": household, "t": t, "period": f"2026Q4-{id_}"})
    expected = [(1, 1, None), (2, 1, 1), (3, 1, 3), (4, 1, 3), (5, 2, 5), (6, 2, None)]
    for _ in range(2):  # and the same again after a downgrade with the data in place
        await upgrade(empty, "0010")
        async with empty.engine.connect() as conn:
            rated = (await conn.execute(text("SELECT id, village_id, visit_id FROM polls ORDER BY id"))).all()
            latest = (
                await conn.execute(text("SELECT id, latest_visit_id FROM households ORDER BY id"))
            ).all()
        assert [tuple(r) for r in rated] == expected
        assert [tuple(r) for r in latest] == [(1, 6), (2, 5), (3, None)]
        await downgrade(empty, "0009")
        assert await current_revision(empty) == "0009"


async def test_0015_adds_the_dashboard_tables_and_keeps_the_cadres(empty: Database):
    """The dashboard's links, sessions and key come and go with 0015; the cadres they point at stay."""
    await upgrade(empty, "0014")
    async with empty.engine.begin() as conn:
        await conn.execute(text("INSERT INTO counties (id, name) VALUES (1, '示范县')"))
        await conn.execute(text("INSERT INTO townships (id, county_id, name) VALUES (1, 1, '东风镇')"))
        await conn.execute(
            text(
                "INSERT INTO cadres (id, code, name, phone, role, township_id) "
                "VALUES (1, 'GB012', '王书记', '+8613900000012', '乡镇党委书记', 1)"
            )
        )
    for _ in range(2):
        await upgrade(empty)
        async with empty.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO web_sessions (cadre_id, token_hash, created_at, expires_at) "
                    "VALUES (1, 'h', '2026-12-03 00:00:00', '2026-12-04 00:00:00')"
                )
            )
            assert (await conn.execute(text("SELECT count(*) FROM web_sessions"))).scalar_one() == 1
        await downgrade(empty, "0014")
        assert await current_revision(empty) == "0014"
        async with empty.engine.connect() as conn:
            assert (await conn.execute(text("SELECT code FROM cadres"))).scalars().all() == ["GB012"]
