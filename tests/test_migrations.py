"""Migrations: the schema they build is the models' schema, and 0006 fingerprints visits already stored."""

from __future__ import annotations

import json
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from storage.db import Database, sqlite_url
from storage.migrate import upgrade
from storage.models import Base
from survey.integrity import answers_digest


async def test_migrated_schema_matches_the_models(db_path: Path):
    engine = create_engine(f"sqlite:///{db_path}")
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []


async def test_0006_fingerprints_visits_submitted_before_it(tmp_path: Path):
    path = tmp_path / "old.db"
    db = Database(sqlite_url(path))
    await upgrade(db, "0005")
    answers = {"members": 3, "food_secure": True, "location": {"lat": 30.1, "lon": 110.2}}
    statements = [
        "INSERT INTO counties (id, name) VALUES (1, '示范县')",
        "INSERT INTO townships (id, county_id, name) VALUES (1, 1, '东风镇')",
        "INSERT INTO villages (id, township_id, name) VALUES (1, 1, '新华村')",
        "INSERT INTO cadres (id, code, name, phone, role, township_id) VALUES (1, 'GB001', '刘', '+8613800000000', '第一书记', 1)",
        "INSERT INTO households (id, code, village_id, head_name, members, status) VALUES (1, 'H1', 1, '王', 3, '未脱贫')",
    ]
    visit = (
        "INSERT INTO visits (id, household_id, cadre_id, script_id, script_version, channel, status, started_at, "
        "updated_at, submitted_at, session) VALUES (:id, 1, 1, 's', '1', 'console', :status, '2026-10-01 00:00:00', "
        "'2026-10-01 00:30:00', '2026-10-01 00:30:00', :session)"
    )
    async with db.engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement))
        await conn.execute(
            text(visit), {"id": 1, "status": "submitted", "session": json.dumps({"answers": answers})}
        )
        await conn.execute(text(visit), {"id": 2, "status": "draft", "session": json.dumps({"answers": {}})})
    await upgrade(db)
    async with db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT id, answers_digest FROM visits ORDER BY id"))).all()
    await db.close()
    assert rows == [(1, answers_digest(answers)), (2, None)]
