"""SQLAlchemy 2 models. Tables are the plural snake_case names of the models; places keep their roster name in `name`.

Times are stored in UTC and come back timezone-aware on every backend (see `UTCDateTime`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: zoufang stores aware datetimes only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class County(Base):
    __tablename__ = "counties"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # Per-county lines; NULL means "the setting's default" (ZOUFANG_INCOME_LINE, ZOUFANG_MONITORING_LINE).
    income_line: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    monitoring_line: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    count_guaranteed: Mapped[bool | None] = mapped_column(Boolean)


class Township(Base):
    __tablename__ = "townships"
    __table_args__ = (UniqueConstraint("county_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    county_id: Mapped[int] = mapped_column(ForeignKey("counties.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    # the days of the month of its 扶贫工作专题党委会, "1,16"; NULL means the default (survey.meetings)
    meeting_days: Mapped[str | None] = mapped_column(String(32))
    county: Mapped[County] = relationship()


class Village(Base):
    __tablename__ = "villages"
    __table_args__ = (UniqueConstraint("township_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    township_id: Mapped[int] = mapped_column(ForeignKey("townships.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    township: Mapped[Township] = relationship()


cadre_villages = Table(
    "cadre_villages",
    Base.metadata,
    Column("cadre_id", ForeignKey("cadres.id", ondelete="CASCADE"), primary_key=True),
    Column("village_id", ForeignKey("villages.id", ondelete="CASCADE"), primary_key=True),
)


class Cadre(Base):
    __tablename__ = "cadres"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)  # 干部编号
    name: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str] = mapped_column(String(20), index=True)  # E.164
    role: Mapped[str] = mapped_column(String(16), index=True)
    township_id: Mapped[int] = mapped_column(ForeignKey("townships.id"), index=True)
    locale: Mapped[str | None] = mapped_column(String(8))
    township: Mapped[Township] = relationship()
    villages: Mapped[list[Village]] = relationship(secondary=cadre_villages, order_by=Village.id)


class Household(Base):
    __tablename__ = "households"
    # a village's households in 户编号 order with their 户主: who is left to visit, read from the index alone
    __table_args__ = (Index("ix_households_village_names", "village_id", "code", "head_name", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)  # 户编号, unique in the county
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"))
    hamlet: Mapped[str | None] = mapped_column(String(64))
    head_name: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    members: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(8))  # 未脱贫 / 已脱贫 / 监测户
    cause: Mapped[str | None] = mapped_column(String(16))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    helper_id: Mapped[int | None] = mapped_column(ForeignKey("cadres.id"), index=True)
    # The latest submitted visit (by submitted_at, then id), i.e. the household's current facts; NULL: never
    # visited. Kept by storage.visits.note_submitted; the reports join it instead of ranking every visit.
    # use_alter: visits refer to households too, and this is the edge of that cycle created last.
    latest_visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id", use_alter=True), index=True)
    village: Mapped[Village] = relationship()
    helper: Mapped[Cadre | None] = relationship()


class Visit(Base):
    """One home visit. A draft holds the engine's session; a submitted visit also has its answers as rows."""

    __tablename__ = "visits"
    __table_args__ = (
        # the latest visit of a household before a time (SMS answers by cadre), and visits by period
        Index("ix_visits_household_status_submitted", "household_id", "status", "submitted_at"),
        # a period's visits with what satisfaction, coverage and integrity count of them, from the index alone
        Index(
            "ix_visits_in_period",
            "status",
            "submitted_at",
            "household_id",
            "cadre_id",
            "satisfaction",
            "answers_digest",
        ),
        # a cadre's visits in a period and their households (coverage); with the id, PostgreSQL finds the
        # cadre of a rated visit here too (SQLite keeps the id in every index anyway)
        Index("ix_visits_cadre_household", "cadre_id", "household_id", "status", "submitted_at", "id"),
        # another household's visit in a period with the same answer set, read from the index alone (integrity)
        Index("ix_visits_digest_period", "answers_digest", "status", "submitted_at", "household_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"))
    cadre_id: Mapped[int] = mapped_column(ForeignKey("cadres.id"))
    script_id: Mapped[str] = mapped_column(String(64))
    script_version: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))  # console / telegram / demo
    status: Mapped[str] = mapped_column(String(12), index=True)  # draft / submitted / cancelled
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    session: Mapped[str] = mapped_column(Text)  # the engine's session as JSON
    # Derived facts at submission, so reports can GROUP BY them in the database.
    counted_income: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    per_capita_net: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    household_group: Mapped[str | None] = mapped_column(String(16), index=True)
    warnings: Mapped[str | None] = mapped_column(String(128))  # codes joined by ","
    unmet: Mapped[str | None] = mapped_column(String(128))
    # facts the visit's script did not collect (未采集: survey.facts.HouseholdFacts.uncollected), joined by ","
    uncollected: Mapped[str | None] = mapped_column(String(255))
    satisfaction: Mapped[str | None] = mapped_column(String(8), index=True)
    # survey.integrity.answers_digest: equal answer sets across households are an integrity flag
    answers_digest: Mapped[str | None] = mapped_column(String(32))
    household: Mapped[Household] = relationship(foreign_keys=[household_id])
    cadre: Mapped[Cadre] = relationship()


class Answer(Base):
    """One typed value. A several-of answer is one row per chosen option (seq 0, 1, …) so SQL can count them."""

    __tablename__ = "answers"
    __table_args__ = (
        UniqueConstraint("visit_id", "field", "item", "seq"),
        Index("ix_answers_field_text", "field", "value_text"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id", ondelete="CASCADE"))
    field: Mapped[str] = mapped_column(String(64))
    item: Mapped[int] = mapped_column(Integer, default=-1)  # index in a repeat group; -1 outside one
    seq: Mapped[int] = mapped_column(Integer, default=0)
    value_int: Mapped[int | None] = mapped_column(BigInteger)
    value_real: Mapped[float | None] = mapped_column(Float)
    value_bool: Mapped[bool | None] = mapped_column(Boolean)
    value_text: Mapped[str | None] = mapped_column(Text)


class Problem(Base):
    """A problem raised in a visit's 一化解 (or later by SMS); escalated when not resolved on site."""

    __tablename__ = "problems"
    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), index=True)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id"), index=True)
    raised_by_id: Mapped[int | None] = mapped_column(ForeignKey("cadres.id"), index=True)
    source: Mapped[str] = mapped_column(String(8))  # visit / sms
    category: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text)
    resolved_on_site: Mapped[bool] = mapped_column(Boolean, default=False)
    resolution: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), index=True)  # closed / escalated / …
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # when a meeting decided it; an escalated problem closed without one is an integrity flag
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # survey.problems: the queue and the meeting's decision
    escalated_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime
    )  # joined the queue (again, if reopened)
    responsible_id: Mapped[int | None] = mapped_column(ForeignKey("cadres.id"), index=True)
    due_on: Mapped[date | None] = mapped_column(Date)
    meeting_on: Mapped[date | None] = mapped_column(Date)  # the meeting that decided it
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("problems.id"))
    overdue_on: Mapped[date | None] = mapped_column(Date)
    household: Mapped[Household] = relationship()


class ProblemEvent(Base):
    """Every move of a problem: who (NULL: the system), when, from, to, and what they wrote."""

    __tablename__ = "problem_events"
    __table_args__ = (Index("ix_problem_events_action_meeting", "action", "meeting_on"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    problem_id: Mapped[int] = mapped_column(ForeignKey("problems.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("cadres.id"))
    action: Mapped[str] = mapped_column(String(16))
    from_state: Mapped[str] = mapped_column(String(12))
    to_state: Mapped[str] = mapped_column(String(12))
    note: Mapped[str | None] = mapped_column(Text)
    meeting_on: Mapped[date | None] = mapped_column(Date)
    responsible_id: Mapped[int | None] = mapped_column(ForeignKey("cadres.id"))
    due_on: Mapped[date | None] = mapped_column(Date)


class ScheduledJob(Base):
    """A scheduled job that has run (a digest for one meeting, a day's overdue check): run once, ever."""

    __tablename__ = "scheduled_jobs"
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    ran_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    outcome: Mapped[str] = mapped_column(String(16))  # done / missed


class WorkLogEntry(Base):
    """扶贫日志: written by the system from what was recorded (a visit, a problem resolved)."""

    __tablename__ = "work_log_entries"
    __table_args__ = (Index("ix_work_log_entries_cadre_day", "cadre_id", "day"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    cadre_id: Mapped[int] = mapped_column(ForeignKey("cadres.id"))
    day: Mapped[date] = mapped_column(Date)  # local date (ZOUFANG_TIMEZONE)
    kind: Mapped[str] = mapped_column(String(16))  # visit / problem_resolved
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id"))
    problem_id: Mapped[int | None] = mapped_column(ForeignKey("problems.id"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Invite(Base):
    """A one-time code that binds a Telegram account to a cadre. Only the code's hash is kept."""

    __tablename__ = "invites"
    id: Mapped[int] = mapped_column(primary_key=True)
    cadre_id: Mapped[int] = mapped_column(ForeignKey("cadres.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_by: Mapped[int | None] = mapped_column(BigInteger)  # Telegram user id


class TelegramAccount(Base):
    """A Telegram user bound to a cadre (one account per cadre; rebinding moves it)."""

    __tablename__ = "telegram_accounts"
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    cadre_id: Mapped[int] = mapped_column(ForeignKey("cadres.id"), unique=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    bound_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    cadre: Mapped[Cadre] = relationship()


class TelegramAttempt(Base):
    """What an unbound Telegram user did: a wrong code (for the lock-out) or a refusal sent (sent once)."""

    __tablename__ = "telegram_attempts"
    __table_args__ = (Index("ix_telegram_attempts_user_at", "user_id", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(12))  # bad_code / refused
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProcessedUpdate(Base):
    """An inbound update already applied (Telegram update_id, later Twilio MessageSid): redeliveries apply once."""

    __tablename__ = "processed_updates"
    __table_args__ = (UniqueConstraint("source", "external_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(40))  # "twilio", "telegram:<bot id>" (10 digits and more)
    external_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OutboxMessage(Base):
    """An outgoing SMS, written before any network call; the sender works through these in order."""

    __tablename__ = "outbox_messages"
    # a sender's claim: the first due row of a channel, in order, read straight from the index
    __table_args__ = (Index("ix_outbox_messages_claim", "status", "channel", "next_attempt_at", "id"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    to: Mapped[str] = mapped_column(String(20))  # E.164, or a Telegram chat id
    channel: Mapped[str] = mapped_column(String(8), default="sms", server_default="sms")  # sms / telegram
    body: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(24))  # poll/ask, poll/reminder, … (the template), or "digest"
    # queued → sending → sent → delivered | undelivered | failed; skipped (opted out before it went)
    status: Mapped[str] = mapped_column(String(12), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)  # Twilio MessageSid
    error_code: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    poll_id: Mapped[int | None] = mapped_column(
        Integer
    )  # the poll a poll/… SMS is for (its ask stamps asked_at)


class AuditEvent(Base):
    """Who changed what, when, with the values before and after (JSON): a submitted visit, a problem's move,
    a roster import, a cadre's role or township, a Telegram binding, an opt-out or opt-in. Rows are only
    ever added."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # a cadre (actor_cadre_id), or who else: "cli:<os user>", "sms:<phone>", "carrier", "system"
    actor_cadre_id: Mapped[int | None] = mapped_column(ForeignKey("cadres.id"))
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(32))  # visit.submit, problem.close, import.cadres, …
    subject: Mapped[str] = mapped_column(
        String(120)
    )  # visit:12 (户编号 …), problem:5, cadre:GB001, phone:+86…
    before: Mapped[str | None] = mapped_column(Text)
    after: Mapped[str | None] = mapped_column(Text)


class EarlyStatus(Base):
    """A delivery status callback for a MessageSid no outbox row has yet: Twilio may call back before the sender
    has stored the sid its REST call returned. Applied (and deleted) once the sid is stored."""

    __tablename__ = "early_statuses"
    sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(12))
    rank: Mapped[int] = mapped_column(Integer)  # how far the message got: a later callback only moves it on
    error_code: Mapped[str | None] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OptOut(Base):
    """A phone number that asked for no more SMS (TD/退订/STOP…, or Twilio error 21610)."""

    __tablename__ = "opt_outs"
    phone: Mapped[str] = mapped_column(String(20), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    source: Mapped[str] = mapped_column(String(12))  # reply / carrier


class UnknownSender(Base):
    """A number that texted us but is no household's phone: a count and the day of its last generic reply,
    never the text (a stranger's messages are not ours to keep)."""

    __tablename__ = "unknown_senders"
    phone: Mapped[str] = mapped_column(String(32), primary_key=True)  # E.164, or the raw From if unparseable
    messages: Mapped[int] = mapped_column(Integer, default=0)
    last_reply_on: Mapped[date | None] = mapped_column(Date)  # local date (ZOUFANG_TIMEZONE)


class Poll(Base):
    """One satisfaction SMS poll (survey.polls drives its life). One per household per period (a quarter).

    `due_at` is the next deadline of the state (reminder, expiry, call-back), NULL once closed: the tick only
    reads polls whose `due_at` has passed. The rate is SQL over `rating` (满意 / 基本满意 over answered polls).
    """

    __tablename__ = "polls"
    __table_args__ = (
        UniqueConstraint("household_id", "period"),
        # satisfaction by village, by cadre (through the rated visit): a period's polls of one village or visit
        # and every figure the report counts, read from the index alone, already in the GROUP BY's order
        Index("ix_polls_village_created", "village_id", "created_at", "asked_at", "rating"),
        Index("ix_polls_visit_created", "visit_id", "created_at", "asked_at", "rating"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    # no index of its own: the (household_id, period) unique index leads with it (migration 0011)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"))
    # The village the household was in when polled: a poll round belongs to the village it went out in, so a
    # household the roster later moves takes its new polls, not its old answers, to the new village.
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"))
    # The visit the villager is rating: the household's latest submitted visit at or before created_at (by
    # submitted_at, then id); NULL when there was none. Set at creation, and by storage.visits.note_submitted
    # for a visit stored later with an earlier time.
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id"))
    phone: Mapped[str] = mapped_column(String(20), index=True)  # E.164, as polled
    period: Mapped[str] = mapped_column(String(8))  # "2026Q4": the period of creation (ZOUFANG_TIMEZONE)
    # queued / sent / reminded / clarifying / awaiting_reason / answered / unclear / expired / opted_out
    state: Mapped[str] = mapped_column(String(16))  # a waiting poll is found by phone
    locale: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    send_after: Mapped[datetime] = mapped_column(UTCDateTime)  # the question's outbox row is due then
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the question is due: the clocks start
    asked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the question really left (the sender)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    clarified: Mapped[bool] = mapped_column(Boolean, default=False)
    clarified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    asked_reason_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rating: Mapped[str | None] = mapped_column(String(8))  # 满意 / 基本满意 / 不满意 (covering indexes)
    reason: Mapped[str | None] = mapped_column(Text)
    comment: Mapped[str | None] = mapped_column(Text)
    callback: Mapped[bool] = mapped_column(Boolean, default=False)  # 不满意 without a reason: call back
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    problem_id: Mapped[int | None] = mapped_column(ForeignKey("problems.id"))
    household: Mapped[Household] = relationship()


class WebLink(Base):
    """A one-time sign-in link to the dashboard (`zoufang web invite`). Only the token's hash is kept."""

    __tablename__ = "web_links"
    id: Mapped[int] = mapped_column(primary_key=True)
    cadre_id: Mapped[int] = mapped_column(ForeignKey("cadres.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebSession(Base):
    """A signed-in dashboard session; the cookie carries the token, the table only its hash."""

    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    cadre_id: Mapped[int] = mapped_column(ForeignKey("cadres.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebKey(Base):
    """The key that signs dashboard cookies when ZOUFANG_WEB_SECRET is not set: made once, kept here."""

    __tablename__ = "web_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
