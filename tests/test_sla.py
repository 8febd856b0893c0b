"""SLA clocks (smilepass/sla.py): due times in business hours at creation, pause and resume while
waiting on the user, recorded response and resolution times, breach marking for the periodic job,
tier and account manager at creation, and what the ticket page shows. Every rule takes an explicit
`now`, so nothing sleeps."""
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from smilepass import settings
from smilepass.models import AuditLog, Clinic, ClinicMember, Holiday, Priority, Status, Ticket, Tier, User, utcnow
from smilepass.service import sla
from smilepass.support import tickets

from .case_helpers import ADA, ROOT, SAM, in_db, user

NEW_YORK = ZoneInfo("America/New_York")


def ny(year, month, day, hour, minute=0) -> dt.datetime:
    """A New York wall-clock time as the naive UTC the database stores."""
    return (dt.datetime(year, month, day, hour, minute, tzinfo=NEW_YORK)
            .astimezone(dt.UTC).replace(tzinfo=None))


MONDAY_4PM = ny(2026, 3, 2, 16)  # the week before the change to daylight saving time (8 March)


@pytest.fixture
def people(make_user):
    make_user(ADA)
    make_user(SAM, "support")
    make_user(ROOT, "admin")


@pytest.fixture
def new_york(people):
    in_db(lambda: settings.set_value("time_zone", "America/New_York", user(ROOT)))


def file(priority=Priority.NORMAL, now=MONDAY_4PM, requester=ADA) -> Ticket:
    return in_db(lambda: tickets.create_ticket(user(requester), "Aligner cracked", "Tray 7 split at 26.",
                                               priority, "Warranty & Replacement", now=now))


def reload(ticket) -> Ticket:
    return in_db(lambda: Ticket.get_by_id(ticket.id))


def move(ticket, to_status, now, actor=SAM) -> Ticket:
    in_db(lambda: tickets.change_status(reload(ticket), user(actor), to_status, now=now))
    return reload(ticket)


def reply(ticket, now, actor=SAM, internal=False) -> Ticket:
    in_db(lambda: tickets.add_reply(reload(ticket), user(actor), "Looking into it.", internal=internal, now=now))
    return reload(ticket)


# Due times at creation ----------------------------------------------------------------------------

@pytest.mark.parametrize("priority, response_due, resolution_due", [
    # Monday 16:00 leaves one business hour that day; 08:00–17:00 gives nine a day after that.
    (Priority.URGENT, ny(2026, 3, 3, 11), ny(2026, 3, 5, 13)),    # 4 h → Tue 11:00; 24 h → Thu 13:00
    (Priority.HIGH, ny(2026, 3, 3, 15), ny(2026, 3, 10, 10)),     # 8 h → Tue 15:00; 48 h → Tue 10 Mar 10:00
    (Priority.NORMAL, ny(2026, 3, 5, 13), ny(2026, 3, 20, 10)),   # 24 h → Thu 13:00; 120 h → Fri 20 Mar 10:00
    (Priority.LOW, ny(2026, 3, 12, 16), ny(2026, 4, 8, 13)),      # 72 h → Thu 12 Mar 16:00; 240 h → Wed 8 Apr 13:00
])
def test_due_times_at_creation_follow_business_hours_per_priority(new_york, priority, response_due, resolution_due):
    ticket = reload(file(priority))
    assert ticket.response_due_at == response_due
    assert ticket.resolution_due_at == resolution_due
    assert ticket.next_due_at == response_due
    assert ticket.sla_paused_at is None and ticket.resolved_at is None
    assert not ticket.response_breached and not ticket.resolution_breached


def test_due_times_after_the_change_to_daylight_saving_keep_local_hours(new_york):
    # Low, filed Monday 16:00 EST, is due Thursday 12 March 16:00 EDT: the same wall-clock hour,
    # one hour earlier in UTC.
    ticket = reload(file(Priority.LOW))
    assert ticket.response_due_at == dt.datetime(2026, 3, 12, 20, 0)
    assert MONDAY_4PM == dt.datetime(2026, 3, 2, 21, 0)


def test_holiday_and_changed_settings_move_the_due_time(new_york):
    root = user(ROOT)

    def configure():
        Holiday.create(date=dt.date(2026, 3, 9), name="Clinic closed")
        settings.set_value("response_hours_urgent", "2", root)
        settings.set_value("business_hours", "09:00-12:00", root)
        settings.set_value("business_days", "Mon-Fri", root)
    in_db(configure)
    # Friday 11:30: half an hour left that day; Monday is a holiday; Tuesday 09:00 + 1.5 h.
    ticket = reload(file(Priority.URGENT, now=ny(2026, 3, 6, 11, 30)))
    assert ticket.response_due_at == ny(2026, 3, 10, 10, 30)


def test_a_request_filed_at_the_weekend_starts_counting_on_monday(new_york):
    ticket = reload(file(Priority.URGENT, now=ny(2026, 3, 7, 10)))  # Saturday
    assert ticket.response_due_at == ny(2026, 3, 9, 12)


def test_utc_is_the_default_time_zone(people):
    ticket = reload(file(Priority.URGENT, now=dt.datetime(2026, 3, 2, 16)))
    assert ticket.response_due_at == dt.datetime(2026, 3, 3, 11)


# Pause, resume, first response and resolution ---------------------------------------------------

def test_waiting_on_user_pauses_and_resuming_moves_the_due_time_by_the_paused_business_time(new_york):
    ticket = file(Priority.NORMAL, now=ny(2026, 3, 2, 9))  # Monday 09:00
    due = reload(ticket).response_due_at
    assert due == ny(2026, 3, 4, 15)  # 8 + 9 + 7 business hours: Wednesday 15:00

    paused = move(ticket, Status.WAITING, ny(2026, 3, 2, 10))
    assert paused.sla_paused_at == ny(2026, 3, 2, 10) and paused.next_due_at is None
    clock = in_db(lambda: sla.clock(paused, ny(2026, 3, 3, 12)))
    assert clock.state == "paused" and clock.target == "response"
    assert clock.remaining == dt.timedelta(hours=23)  # frozen at what was left when paused

    # The clinician answers on Tuesday 10:00: 7 + 2 = 9 business hours were paused.
    resumed = reply(ticket, ny(2026, 3, 3, 10), actor=ADA)
    assert resumed.status_enum == Status.IN_PROGRESS
    assert resumed.sla_paused_at is None
    assert resumed.response_due_at == ny(2026, 3, 5, 15)  # one business day (nine hours) later
    assert resumed.next_due_at == resumed.response_due_at
    assert resumed.resolution_due_at == ny(2026, 3, 20, 12)  # Thu 19 Mar 12:00 + the nine paused hours
    # Paused time does not count toward the first response.
    answered = reply(ticket, ny(2026, 3, 3, 12))
    assert answered.first_response_at == ny(2026, 3, 3, 12)
    assert answered.response_minutes == 3 * 60  # Mon 09–10 and Tue 10–12
    assert not answered.response_breached
    assert answered.next_due_at == answered.resolution_due_at


def test_late_first_response_is_marked_breached_and_internal_notes_do_not_count(new_york):
    ticket = file(Priority.URGENT)  # due Tuesday 11:00
    noted = reply(ticket, ny(2026, 3, 3, 9), internal=True)
    assert noted.first_response_at is None and noted.response_minutes is None
    late = reply(ticket, ny(2026, 3, 3, 12))
    assert late.response_breached and late.response_minutes == 5 * 60  # Mon 16–17, Tue 08–12
    assert not late.resolution_breached
    assert late.next_due_at == late.resolution_due_at == ny(2026, 3, 5, 13)


def test_resolution_records_business_minutes_without_the_pauses_and_reopening_continues_the_clock(new_york):
    ticket = file(Priority.URGENT)  # resolution due Thursday 13:00 (24 business hours)
    reply(ticket, ny(2026, 3, 3, 9))
    move(ticket, Status.WAITING, ny(2026, 3, 3, 10))
    move(ticket, Status.IN_PROGRESS, ny(2026, 3, 3, 14))  # 4 business hours paused
    resolved = move(ticket, Status.RESOLVED, ny(2026, 3, 3, 16))
    assert resolved.resolved_at == ny(2026, 3, 3, 16)
    # Mon 16–17 and Tue 08–10, 14–16: five business hours.
    assert resolved.resolution_minutes == 5 * 60
    assert resolved.next_due_at is None and not resolved.resolution_breached
    assert resolved.resolution_due_at == ny(2026, 3, 5, 17)  # moved later by the four paused hours
    assert in_db(lambda: sla.clock(resolved, ny(2026, 3, 4, 9))).state == "met"

    # Reopened on Wednesday 16:00: the 19 business hours left when it was resolved continue from now.
    reopened = move(ticket, Status.IN_PROGRESS, ny(2026, 3, 4, 16), actor=ADA)
    assert reopened.resolved_at is None and reopened.resolution_minutes is None
    assert reopened.next_due_at == reopened.resolution_due_at == ny(2026, 3, 6, 17)
    clock = in_db(lambda: sla.clock(reopened, ny(2026, 3, 4, 16)))
    assert clock.state == "resolution" and clock.remaining == dt.timedelta(hours=19)

    again = move(ticket, Status.RESOLVED, ny(2026, 3, 5, 9))
    assert again.resolution_minutes == 7 * 60  # five before, one on Wednesday, one on Thursday
    closed = move(ticket, Status.CLOSED, ny(2026, 3, 5, 10))
    assert closed.next_due_at is None
    assert in_db(lambda: sla.clock(closed, ny(2026, 3, 9, 10))).state == "stopped"


def test_resolving_after_the_deadline_marks_the_resolution_breached(new_york):
    ticket = file(Priority.URGENT)
    reply(ticket, ny(2026, 3, 3, 9))
    late = move(ticket, Status.RESOLVED, ny(2026, 3, 6, 9))
    assert late.resolution_breached and not late.response_breached


def test_resolving_straight_from_waiting_ends_the_pause_first(new_york):
    ticket = file(Priority.URGENT)  # response due Tue 11:00, resolution Thu 13:00
    reply(ticket, ny(2026, 3, 2, 16, 30))
    move(ticket, Status.WAITING, ny(2026, 3, 3, 8))
    resolved = move(ticket, Status.RESOLVED, ny(2026, 3, 3, 12))  # four business hours waiting
    assert resolved.sla_paused_at is None and resolved.next_due_at is None
    assert resolved.resolution_minutes == 60  # Mon 16–17 only
    assert resolved.resolution_due_at == ny(2026, 3, 5, 17)


def test_resolving_an_unanswered_ticket_after_its_reply_was_due_marks_the_response_breached(new_york):
    on_time = move(file(Priority.URGENT), Status.RESOLVED, ny(2026, 3, 3, 10))
    assert not on_time.response_breached and on_time.response_minutes is None
    late = move(file(Priority.URGENT), Status.RESOLVED, ny(2026, 3, 3, 12))
    assert late.response_breached and not late.resolution_breached


# Breaches and warnings ---------------------------------------------------------------------------

def test_mark_breaches_marks_each_missed_deadline_once(new_york):
    urgent = file(Priority.URGENT)  # response due Tue 11:00
    low = file(Priority.LOW)
    waiting = file(Priority.URGENT)
    move(waiting, Status.WAITING, ny(2026, 3, 2, 16, 30))

    assert in_db(lambda: sla.mark_breaches(ny(2026, 3, 3, 11))) == []  # due, not yet past
    marked = in_db(lambda: sla.mark_breaches(ny(2026, 3, 3, 11, 1)))
    assert [(t.id, kind) for t, kind in marked] == [(urgent.id, "response")]
    assert marked[0][0].response_breached
    assert in_db(lambda: sla.mark_breaches(ny(2026, 3, 3, 12))) == []  # idempotent
    assert not reload(low).response_breached and not reload(waiting).response_breached

    # Answered late, the resolution clock runs next and is marked on its own.
    reply(urgent, ny(2026, 3, 3, 12))
    assert in_db(lambda: sla.mark_breaches(ny(2026, 3, 5, 13))) == []
    marked = in_db(lambda: sla.mark_breaches(ny(2026, 3, 5, 13, 5)))
    assert [(t.id, kind) for t, kind in marked] == [(urgent.id, "resolution")]
    assert in_db(lambda: sla.mark_breaches(ny(2026, 3, 6, 13))) == []
    ticket = reload(urgent)
    assert ticket.response_breached and ticket.resolution_breached
    audited = in_db(lambda: [(r.object_id, r.detail, r.actor_email) for r in AuditLog.select()
                             .where(AuditLog.action == "sla_breach").order_by(AuditLog.id)])
    assert audited == [(str(urgent.id), "response target missed", ""), (str(urgent.id), "resolution target missed", "")]


def test_due_soon_counts_business_time(new_york):
    urgent = file(Priority.URGENT)  # due Tuesday 11:00
    file(Priority.LOW)
    # Monday 16:30: 3.5 business hours left although 14.5 hours of wall clock.
    assert [t.id for t in in_db(lambda: sla.due_soon(ny(2026, 3, 2, 16, 30), dt.timedelta(hours=4)))] == [urgent.id]
    assert in_db(lambda: sla.due_soon(ny(2026, 3, 2, 16, 30), dt.timedelta(hours=3))) == []
    assert in_db(lambda: sla.due_soon(ny(2026, 3, 3, 11, 30), dt.timedelta(hours=4))) == []  # already passed


def test_clock_texts():
    def clock(minutes):
        return sla.Clock("response", "response", None, None, dt.timedelta(minutes=minutes), False, False, None, None)
    assert clock(135).remaining_text == "2 h 15 min of business time left"
    assert clock(-40).remaining_text == "Overdue by 40 min"
    assert clock(180).remaining_text == "3 h of business time left"
    assert clock(0).remaining_text == "less than a minute of business time left"


# Tier and account manager at creation ------------------------------------------------------------

def join_clinic(email, tier, manager_email=None, name="Bright Smiles"):
    def run():
        manager = User.by_email(manager_email) if manager_email else None
        clinic = Clinic.create(name=name, tier=tier.value, account_manager=manager)
        ClinicMember.create(user=User.by_email(email), clinic=clinic)
    in_db(run)


def test_ticket_takes_the_clinic_tier_and_standard_without_a_clinic(people, make_user):
    assert reload(file()).tier == Tier.STANDARD and reload(file()).assignee_id is None
    join_clinic(ADA, Tier.PRO, manager_email=SAM)
    ticket = reload(file())
    assert ticket.tier == Tier.PRO
    assert ticket.assignee_id is None  # only Enterprise gets its account manager


def test_enterprise_ticket_is_assigned_to_the_account_manager_and_audited(people):
    join_clinic(ADA, Tier.ENTERPRISE, manager_email=SAM)
    ticket = reload(file())
    assert ticket.tier == Tier.ENTERPRISE
    assert ticket.assignee_id == user(SAM).id
    rows = in_db(lambda: [(r.detail, r.actor_email) for r in AuditLog.select()
                          .where(AuditLog.action == "ticket_assign", AuditLog.object_id == str(ticket.id))])
    assert rows == [(f"automatic: {SAM}, account manager of Bright Smiles", ADA)]


def test_enterprise_without_an_active_staff_manager_leaves_the_ticket_unassigned(people):
    join_clinic(ADA, Tier.ENTERPRISE, manager_email=SAM)
    in_db(lambda: User.update(is_active=False).where(User.email == SAM).execute())
    ticket = reload(file())
    assert ticket.tier == Tier.ENTERPRISE and ticket.assignee_id is None


# The ticket page ---------------------------------------------------------------------------------

def page(browser, ticket):
    response = browser.get(f"/support/tickets/{ticket.id}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


@pytest.fixture
def wednesday_10am(time_machine):
    """Requested before the sign-in fixtures, so their sessions start at the same fixed moment."""
    time_machine.move_to(dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.UTC), tick=False)


def test_ticket_page_shows_due_time_remaining_time_and_breach(wednesday_10am, clinician, support, new_ticket):
    ticket_id = new_ticket(clinician, priority="3")  # Urgent, filed Wednesday 10:00 UTC: due 14:00
    html = page(support, reload(Ticket(id=ticket_id)))
    assert 'id="sla-panel"' in html and "First response due" in html
    assert "4 h of business time left" in html
    assert "Target missed" not in html

    # A ticket filed a month ago and never answered: overdue, and the breach is marked in words.
    old = in_db(lambda: tickets.create_ticket(User.by_email(ADA), "Old", "Still waiting.", Priority.URGENT,
                                              "Account & Access", now=utcnow() - dt.timedelta(days=30)))
    in_db(lambda: sla.mark_breaches(utcnow()))
    for browser in (support, clinician):
        html = page(browser, old)
        assert "Overdue by" in html and "Target missed" in html


def test_ticket_page_says_the_clock_is_paused_while_waiting(clinician, support, new_ticket):
    ticket_id = new_ticket(clinician)
    support.get(f"/support/tickets/{ticket_id}")
    response = support.post(f"/support/tickets/{ticket_id}/status", {"status": str(int(Status.WAITING))}, htmx=True)
    html = response.get_data(as_text=True)
    # The htmx fragment refreshes the service-level panel out of band.
    assert 'id="sla-panel"' in html and "Paused while waiting on the user" in html
    assert "Paused while waiting on you" in page(clinician, Ticket(id=ticket_id))
