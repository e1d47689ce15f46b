"""Calendar feeds: capability tokens, and the events each feed holds.

A feed URL is a capability: ``secrets.token_urlsafe(32)``, of which only the SHA-256 is stored.
A person may hold several tokens (each `cohort feeds url` issues one); `reset` revokes them all
and issues a new one; withdrawing a learner revokes theirs (mail links included) for good. Unknown
and revoked tokens resolve to nothing (the web answers 404).

What a feed holds:

* a learner: the live occurrences of their sections (classes, office hours), the co-working
  blocks that fit their window, their soft deadlines and replays;
* a facilitator: the occurrences they host;
* the cohort: every occurrence, with no personal data.

Cancelled occurrences stay in feeds with ``STATUS:CANCELLED`` so calendar apps remove them.

Serving them (:class:`FeedCache`): a token check trusted for a moment, finished bodies and their
ETags kept per feed version and language, events serialised once per plan and shared between
feeds.

A feed's own words (``Due: …``, ``Week 2 of …``, ``· section 2``) are in its reader's language:
the person's locale, else the cohort's (:func:`scheduler.outputs.i18n.translations`); the cohort's
feed is in the cohort's. Text the runner wrote (titles, agenda lines, names) stays as written.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from babel.support import NullTranslations
from sqlalchemy import Engine, bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from scheduler.domain.cohort import Role, SeriesKind
from scheduler.domain.status import EnrollmentStatus, OccurrenceStatus
from scheduler.errors import NotFoundError
from scheduler.outputs.i18n import SOURCE, catalog_locale, translations
from scheduler.outputs.ics import CalendarEvent, FeedBuilder
from scheduler.persistence import repo
from scheduler.persistence.models import (
    CohortRow,
    EnrollmentRow,
    FeedTokenRow,
    LiveSeriesRow,
    OccurrenceRow,
    PersonRow,
    PlanVersionRow,
    SeriesRequestRow,
)
from scheduler.planning.agenda import agenda_phases
from scheduler.services.deadlines import learner_items
from scheduler.services.plans import UID_NAMESPACE
from scheduler.services.schedule import learner_occurrences
from scheduler.settings import MIN_SECRET_KEY_BYTES
from scheduler.timeutil import zone

DEADLINE_BLOCK = timedelta(minutes=30)  # a deadline shows as a half-hour slot ending when due


def N_(message: str) -> str:
    """Marks ``message`` for extraction (a ``babel.cfg`` keyword); it is translated where used."""
    return message


def _say(tr: NullTranslations, message: str, /, **values: object) -> str:
    """``tr``'s translation of ``message`` with ``values`` filled in (``str.format``: translators
    may reorder the placeholders). A translation whose placeholders do not fit gives the English
    sentence: a catalog mistake never breaks a feed."""
    try:
        return tr.gettext(message).format(**values)
    except (KeyError, IndexError, ValueError):
        return message.format(**values)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class FeedTarget:
    cohort_id: int
    cohort_slug: str
    cohort_title: str
    kind: str  # learner, facilitator, cohort
    person_id: int | None
    email: str | None
    name: str | None
    locale: str | None = None  # the person's (None: the cohort's feed, or the cohort's default)
    cohort_locale: str | None = None


def feed_language(target: FeedTarget) -> str:
    """The catalog the feed is written in (``"en"``: the source strings): the person's locale,
    else the cohort's; the cohort's own feed, the cohort's."""
    return catalog_locale(target.locale, target.cohort_locale)


def feed_translations(target: FeedTarget) -> NullTranslations:
    return translations(target.locale, target.cohort_locale)


def issue_token(db: Session, slug: str, email: str | None, now: datetime) -> tuple[str, FeedTarget]:
    """A new feed token for ``email``'s feed in the cohort (``None``: the cohort's own feed)."""
    cohort = repo.get_cohort(db, slug)
    person, kind = _member(db, cohort, email)
    token = secrets.token_urlsafe(32)
    db.add(
        FeedTokenRow(
            cohort_id=cohort.id,
            person_id=person.id if person else None,
            kind=kind,
            token_hash=hash_token(token),
            created_at=now,
        )
    )
    db.flush()
    return token, _target(cohort, kind, person)


def reset_tokens(
    db: Session, slug: str, email: str | None, now: datetime
) -> tuple[str, int, FeedTarget]:
    """Revoke every live token of the feed and issue a new one; returns it and the revoked count."""
    cohort = repo.get_cohort(db, slug)
    person, _ = _member(db, cohort, email)
    revoked = revoke_tokens(db, cohort.id, person.id if person else None, now)
    token, target = issue_token(db, slug, email, now)
    return token, revoked, target


def revoke_tokens(db: Session, cohort_id: int, person_id: int | None, now: datetime) -> int:
    """Revoke every live token of one feed in the cohort, the links in emails included:
    ``person_id``'s, or with None the cohort's own. Returns how many were revoked."""
    query = update(FeedTokenRow).where(
        FeedTokenRow.cohort_id == cohort_id,
        FeedTokenRow.revoked_at.is_(None),
        FeedTokenRow.person_id.is_(None)
        if person_id is None
        else FeedTokenRow.person_id == person_id,
    )
    revoked = db.execute(query.values(revoked_at=now)).rowcount  # type: ignore[attr-defined]
    return int(revoked or 0)


def mail_tokens(
    db: Session, cohort_id: int, people: dict[int, str], secret: bytes, now: datetime
) -> dict[int, str]:
    """The feed token that emails carry, for each person id in ``people`` (id -> feed kind).

    Emails are rendered long after a token is issued, and only token hashes are stored, so the
    mail token is derived: HMAC-SHA256 of ``mail-token/<row id>/<person id>`` under the server's
    secret key (unguessable without it, and a copy of the database alone does not reveal it).
    That label is the mail tokens' own domain: sessions, flash messages and CSRF tokens are
    signed with keys derived from the secret (:func:`scheduler.services.admin.purpose_key`),
    never with the secret itself, so nothing else is ever signed under it; and links already in
    learners' mailboxes and calendars keep working across upgrades. When the secret key changes
    the row's hash is replaced: links in earlier emails stop working, the next email carries
    one that works. It is an
    ordinary token row (``purpose='mail'``): ``cohort feeds reset`` and withdrawal revoke it
    like any other, and the next email carries a fresh one.

    Someone not (or no longer) enrolled in the cohort, such as a withdrawn learner being sent
    the cancellations of their invitations, gets no token (they are left out of the result):
    their email carries no calendar link, and no email can give a leaver a live link back.
    Two queries for a whole batch.
    """
    if not people:
        return {}
    enrolled = set(
        db.scalars(
            select(EnrollmentRow.person_id).where(
                EnrollmentRow.cohort_id == cohort_id,
                repo.id_in(db, EnrollmentRow.person_id, people),
                EnrollmentRow.status == EnrollmentStatus.ACTIVE,
            )
        )
    )
    rows: dict[int, FeedTokenRow] = {}
    for row in db.scalars(
        select(FeedTokenRow)
        .where(
            FeedTokenRow.cohort_id == cohort_id,
            repo.id_in(db, FeedTokenRow.person_id, enrolled),
            FeedTokenRow.purpose == "mail",
            FeedTokenRow.revoked_at.is_(None),
        )
        .order_by(FeedTokenRow.id)
    ):
        rows[row.person_id or 0] = row  # the newest wins
    missing = [pid for pid in people if pid in enrolled and pid not in rows]
    for pid in missing:
        rows[pid] = FeedTokenRow(
            cohort_id=cohort_id,
            person_id=pid,
            kind=people[pid],
            purpose="mail",
            token_hash=secrets.token_hex(32),  # replaced below, once the row has its id
            created_at=now,
        )
        db.add(rows[pid])
    if missing:
        db.flush()
    if len(secret) < MIN_SECRET_KEY_BYTES:  # the settings and key file refuse one first
        raise ValueError(f"the secret key is too short (at least {MIN_SECRET_KEY_BYTES} bytes)")
    tokens = {}
    for pid in people:
        if pid not in enrolled:
            continue
        row = rows[pid]
        token = _derive(secret, row.id, pid)
        if row.token_hash != hash_token(token):  # a new row, or the key changed
            row.token_hash = hash_token(token)
        tokens[pid] = token
    return tokens


def _derive(secret: bytes, row_id: int, person_id: int) -> str:
    digest = hmac.new(secret, f"mail-token/{row_id}/{person_id}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def resolve_token(db: Session, token: str) -> FeedTarget | None:
    row = db.scalar(
        select(FeedTokenRow).where(
            FeedTokenRow.token_hash == hash_token(token), FeedTokenRow.revoked_at.is_(None)
        )
    )
    if row is None:
        return None
    cohort = db.get(CohortRow, row.cohort_id)
    person = db.get(PersonRow, row.person_id) if row.person_id is not None else None
    if cohort is None:
        return None
    return _target(cohort, row.kind, person)


def _member(db: Session, cohort: CohortRow, email: str | None) -> tuple[PersonRow | None, str]:
    if email is None:
        return None, "cohort"
    person = db.scalar(select(PersonRow).where(PersonRow.email == email.strip().lower()))
    enrollment = repo.enrollment_of(db, cohort.id, person.id) if person else None
    if person is None or enrollment is None or enrollment.status != EnrollmentStatus.ACTIVE:
        raise NotFoundError(f"{email} is not enrolled in {cohort.slug}")
    return person, enrollment.role


def _target(cohort: CohortRow, kind: str, person: PersonRow | None) -> FeedTarget:
    return FeedTarget(
        cohort.id,
        cohort.slug,
        cohort.title,
        kind,
        person.id if person else None,
        person.email if person else None,
        person.name if person else None,
        person.locale if person else None,
        cohort.locale,
    )


def feed_stamp(db: Session, cohort_id: int) -> datetime | None:
    """The time of the published plan: every event's DTSTAMP, so equal plans give equal bytes."""
    return db.scalar(
        select(PlanVersionRow.created_at)
        .where(PlanVersionRow.cohort_id == cohort_id)
        .order_by(PlanVersionRow.version.desc())
        .limit(1)
    )


def feed_name(target: FeedTarget, tr: NullTranslations | None = None) -> str:
    """The calendar's name (``NAME``/``X-WR-CALNAME``, and the name subscribe links give it), in
    ``tr``'s language (default: the feed's own, :func:`feed_translations`)."""
    if target.kind == "cohort":
        return target.cohort_title
    tr = feed_translations(target) if tr is None else tr
    # TRANSLATORS: a personal calendar's name: the course's title and the person's name.
    return _say(tr, N_("{cohort} ({name})"), cohort=target.cohort_title, name=target.name)


def meeting_title(tr: NullTranslations, title: str, kind: str, section: int, sections: int) -> str:
    """:func:`scheduler.domain.labels.meeting_title` in ``tr``'s language: ``Live class ·
    section 2`` for the second of several sections; a co-working block keeps its title."""
    if kind == SeriesKind.COWORKING.value or sections <= 1:
        return title
    # TRANSLATORS: a meeting of one section of a series; {title} is the course runner's.
    return _say(tr, N_("{title} · section {number}"), title=title, number=section + 1)


def feed_events(
    db: Session, target: FeedTarget, tr: NullTranslations | None = None
) -> list[CalendarEvent]:
    """Every event of the feed (live sessions, co-working, deadlines), cancelled ones included,
    its own words in ``tr``'s language (default: the feed's, :func:`feed_translations`)."""
    tr = feed_translations(target) if tr is None else tr
    requests = {
        key: (agenda, join_url)
        for key, agenda, join_url in db.execute(
            select(SeriesRequestRow.key, SeriesRequestRow.agenda, SeriesRequestRow.join_url).where(
                SeriesRequestRow.cohort_id == target.cohort_id
            )
        )
    }
    rows = [
        (series, occurrence)
        for series, occurrence in db.execute(
            select(LiveSeriesRow, OccurrenceRow)
            .join(OccurrenceRow, OccurrenceRow.series_id == LiveSeriesRow.id)
            .where(LiveSeriesRow.cohort_id == target.cohort_id)
        )
    ]
    sections_per_series: dict[str, int] = {}
    for series, _ in rows:
        sections_per_series[series.series_key] = max(
            sections_per_series.get(series.series_key, 0), series.section + 1
        )
    keep = _occurrence_filter(db, target)
    learner_zone: str | None = None  # co-working phases: the learner's zone, else the anchor's
    if target.kind == Role.LEARNER.value and target.person_id is not None:
        learner_zone = db.scalar(select(PersonRow.zone).where(PersonRow.id == target.person_id))
    cohort = target.cohort_title
    events = []
    for series, occurrence in rows:
        if not keep(series, occurrence):
            continue
        title = meeting_title(
            tr, series.title, series.kind, series.section, sections_per_series[series.series_key]
        )
        agenda, join_url = requests.get(series.series_key, ([], None))
        if series.kind == SeriesKind.COWORKING.value and agenda:
            agenda = phase_lines(
                agenda, occurrence.start, occurrence.end, learner_zone or series.anchor_zone
            )
        lines = [
            _say(tr, N_("Week {week} of {course}."), week=occurrence.week + 1, course=cohort),
            *([_say(tr, N_("Join: {url}"), url=join_url)] if join_url else []),
            *agenda,
        ]
        events.append(
            CalendarEvent(
                uid=occurrence.uid,
                sequence=occurrence.sequence,
                start=occurrence.start,
                end=occurrence.end,
                tzid=series.anchor_zone,
                summary=title,
                description="\n".join(lines),
                location=join_url or "",
                url=join_url or "",
                status="CANCELLED"
                if occurrence.status == OccurrenceStatus.CANCELLED
                else "CONFIRMED",
                categories=(series.kind,),
                alarm_minutes=15,
            )
        )
    if target.kind == Role.LEARNER.value and target.person_id is not None:
        events.extend(_deadline_events(db, target, tr))
    return events


def phase_lines(agenda: Sequence[str], start: datetime, end: datetime, zone_name: str) -> list[str]:
    """A co-working agenda as phase lines, ``"18:00–18:10 check-in"``, in ``zone_name``.

    Phases listed untimed (see :mod:`scheduler.planning.agenda`) keep just their label.
    """
    tz = zone(zone_name)
    return [
        f"{p.start.astimezone(tz):%H:%M}–{p.end.astimezone(tz):%H:%M} {p.label}"
        if p.start is not None and p.end is not None
        else p.label
        for p in agenda_phases(agenda, start, end)
    ]


def _occurrence_filter(
    db: Session, target: FeedTarget
) -> Callable[[LiveSeriesRow, OccurrenceRow], bool]:
    """Which of the cohort's occurrences belong in this feed."""
    if target.kind == "cohort" or target.person_id is None:
        return lambda series, occurrence: True  # the cohort's feed holds every occurrence
    person = db.get(PersonRow, target.person_id)
    assert person is not None
    if target.kind == Role.FACILITATOR.value:
        return lambda series, occurrence: series.facilitator_email == person.email
    cohort = db.get(CohortRow, target.cohort_id)
    assert cohort is not None
    enrollment = repo.enrollment_of(db, cohort.id, person.id)
    if enrollment is None or enrollment.status != EnrollmentStatus.ACTIVE:
        return lambda series, occurrence: False  # left the cohort: no sessions, no co-working
    return learner_occurrences(db, cohort, person).belongs


def _deadline_uid(slug: str, email: str, key: str) -> str:
    return f"{uuid.uuid5(UID_NAMESPACE, f'{slug}/deadline/{email}/{key}')}@cohort-scheduler"


def _deadline_events(db: Session, target: FeedTarget, tr: NullTranslations) -> list[CalendarEvent]:
    assert target.person_id is not None
    person = db.get(PersonRow, target.person_id)
    assert person is not None
    version = db.scalar(
        select(PlanVersionRow.version)
        .where(PlanVersionRow.cohort_id == target.cohort_id)
        .order_by(PlanVersionRow.version.desc())
        .limit(1)
    )
    events = []
    for item in learner_items(db, target.cohort_id, target.person_id):
        # A replay keeps its title (the runner's); work to hand in is "Due: <title>".
        title = (
            item.title if item.kind == "replay" else _say(tr, N_("Due: {title}"), title=item.title)
        )
        lines = [
            _say(
                tr,
                N_("Soft deadline for week {week} of {course}."),
                week=item.week + 1,
                course=target.cohort_title,
            )
        ]
        if item.hard is not None:
            lines.append(
                _say(
                    tr,
                    # TRANSLATORS: {when} is a date and time, like 2027-03-05 17:00.
                    N_("Late work is still accepted until {when} UTC."),
                    when=f"{item.hard:%Y-%m-%d %H:%M}",
                )
            )
        if item.coworking_start is not None:
            lines.append(
                _say(
                    tr,
                    # TRANSLATORS: {when} is a date and time, like 2027-03-05 17:00.
                    N_("Co-working block for it: {when} UTC."),
                    when=f"{item.coworking_start:%Y-%m-%d %H:%M}",
                )
            )
        events.append(
            CalendarEvent(
                uid=_deadline_uid(target.cohort_slug, person.email, item.key),
                sequence=version or 0,
                start=item.soft - DEADLINE_BLOCK,
                end=item.soft,
                tzid=person.zone,
                summary=title,
                description="\n".join(lines),
                categories=(item.kind,),
                transparent=True,
            )
        )
    return events


# --- serving: what the web answers for a feed URL --------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedContents:
    """What a token's feed holds now: whose it is, its DTSTAMP, its events."""

    target: FeedTarget
    stamp: datetime
    events: list[CalendarEvent]


def feed_contents(
    db: Session, token: str, tr: NullTranslations | None = None
) -> FeedContents | None:
    """The feed ``token`` opens (None: unknown or revoked). Its stamp is the published plan's
    time, or the cohort's last change when nothing is published yet. Its words are in ``tr``'s
    language (default: the feed's, :func:`feed_translations`)."""
    target = resolve_token(db, token)
    if target is None:
        return None
    stamp = feed_stamp(db, target.cohort_id)
    if stamp is None:
        cohort = db.get(CohortRow, target.cohort_id)
        assert cohort is not None
        stamp = cohort.updated_at
    return FeedContents(target, stamp, feed_events(db, target, tr))


@dataclass(frozen=True, slots=True)
class FeedKey:
    """One version of one token's feed: a body kept under it is current. A change to the cohort
    bumps its ``feeds_version`` (:func:`scheduler.persistence.repo.touch_feeds`).

    ``language`` is the catalog the feed is written in (:func:`feed_language`), read with the
    token check: bodies are kept per (key, language), so a person's new locale shows within the
    check's trust time even when no feeds version moved (a roster import of another cohort of
    theirs bumps only that cohort's). It is left out of the key's equality, which names the
    version of the token's feed whatever its language."""

    token_hash: str
    cohort_id: int
    feeds_version: int
    language: str = field(default=SOURCE, compare=False)


@dataclass(frozen=True, slots=True)
class RenderedFeed:
    body: bytes  # the iCalendar text
    etag: str  # quoted, as the ETag header carries it


# Is the token live, which version are its cohort's feeds at, and in which language is the
# feed? One indexed query.
_LIVE_TOKEN = (
    select(
        FeedTokenRow.cohort_id,
        CohortRow.feeds_version,
        PersonRow.locale,
        CohortRow.locale.label("cohort_locale"),
    )
    .join(CohortRow, CohortRow.id == FeedTokenRow.cohort_id)
    .outerjoin(PersonRow, PersonRow.id == FeedTokenRow.person_id)
    .where(FeedTokenRow.token_hash == bindparam("token_hash"), FeedTokenRow.revoked_at.is_(None))
)


class FeedCache:
    """The feeds one web process serves, by token.

    :meth:`lookup` checks the token with one indexed query on a connection of its own (cheap
    enough for the event loop) and trusts the answer for ``lookup_seconds``: a revoked link stops
    working within that time. :meth:`cached` is the finished body of that feed version if this
    process has one; :meth:`render` builds it (reads the feed's events: run it in a thread) and
    keeps it. Stale bodies are never served (a change to the cohort bumps its feeds version,
    part of the key; bodies are kept per language too), and a revoked token fails the lookup
    before the cache is consulted.
    Events are serialised once per (cohort, plan stamp) and shared between the feeds holding
    them. Memory is bounded: ``bodies`` bodies, ``builders`` plan versions, and at most
    ``max_lookups`` remembered token checks (then forgotten at once).
    """

    def __init__(
        self,
        engine: Engine,
        sessions: sessionmaker[Session],
        *,
        lookup_seconds: float,
        bodies: int = 4096,
        builders: int = 32,
        max_lookups: int = 100_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._sessions = sessions
        self._lookup_seconds = lookup_seconds
        self._max_lookups = max_lookups
        self._monotonic = monotonic
        self._lookups: dict[str, tuple[float, tuple[int, int, str] | None]] = {}
        self._bodies = _Bodies(bodies)
        self._builders = _Builders(builders)

    def lookup(self, token: str) -> FeedKey | None:
        """The current version of ``token``'s feed; None: unknown or revoked (as of at most
        ``lookup_seconds`` ago)."""
        token_hash = hash_token(token)
        now = self._monotonic()
        seen = self._lookups.get(token_hash)
        if seen is None or now - seen[0] > self._lookup_seconds:
            with self._engine.connect() as connection:
                row = connection.execute(_LIVE_TOKEN, {"token_hash": token_hash}).first()
            seen = (
                now,
                None
                if row is None
                else (
                    row.cohort_id,
                    row.feeds_version,
                    catalog_locale(row.locale, row.cohort_locale),
                ),
            )
            self._lookups[token_hash] = seen
            if len(self._lookups) > self._max_lookups:
                self._lookups.clear()
        if seen[1] is None:
            return None
        return FeedKey(token_hash, *seen[1])

    def cached(self, key: FeedKey) -> RenderedFeed | None:
        return self._bodies.get(key)

    def render(self, token: str, key: FeedKey) -> RenderedFeed | None:
        """Build ``token``'s feed in ``key``'s language and keep it under ``key`` (from
        :meth:`lookup`); None when the token no longer resolves (it was revoked meanwhile):
        nothing is kept."""
        tr = translations(key.language)
        with self._sessions.begin() as db:
            contents = feed_contents(db, token, tr)
        if contents is None:
            return None
        builder = self._builders.get(contents.target.cohort_id, contents.stamp)
        body = builder.feed(feed_name(contents.target, tr), contents.events)
        rendered = RenderedFeed(body, f'"{hashlib.sha256(body).hexdigest()[:32]}"')
        self._bodies.put(key, rendered)
        return rendered


class _Builders:
    """A FeedBuilder per (cohort, plan stamp): events are serialised once per plan version."""

    def __init__(self, size: int) -> None:
        self._items: OrderedDict[tuple[int, datetime], FeedBuilder] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, cohort_id: int, stamp: datetime) -> FeedBuilder:
        key = (cohort_id, stamp)
        with self._lock:
            builder = self._items.get(key)
            if builder is None:
                builder = self._items[key] = FeedBuilder(stamp=stamp)
                while len(self._items) > self._size:
                    self._items.popitem(last=False)
            self._items.move_to_end(key)
            return builder


class _Bodies:
    """Finished feeds by :class:`FeedKey` and language, least recently used dropped first."""

    def __init__(self, size: int) -> None:
        self._items: OrderedDict[tuple[FeedKey, str], RenderedFeed] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: FeedKey) -> RenderedFeed | None:
        item = (key, key.language)
        with self._lock:
            found = self._items.get(item)
            if found is not None:
                self._items.move_to_end(item)
            return found

    def put(self, key: FeedKey, value: RenderedFeed) -> None:
        with self._lock:
            self._items[(key, key.language)] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)
