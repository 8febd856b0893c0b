"""What a ticket change tells people.

Every ticket event gives the recipient an in-app notification (private, cheap, always) and, if their
choice allows, a mail. Neither ever goes to the person who caused the event. Mails name the request by
its number only: a title is free text and may carry a patient's name. Nothing written here comes from
an internal note. The in-app texts are stored in the source language; each mail is written in its
recipient's language (subjects and lines are lazy strings, made into text by outbox.notify). Call these
after the change (inside or after its transaction); each hands its mails to the worker itself once no
transaction is open, otherwise the caller that holds the transaction calls `outbox.hand_over()` after it
commits."""
from ..i18n import in_english, lazy_gettext
from ..models import ESCALATION_ROLE_LABELS, STATUS_LABELS, EscalationRole, Status, Ticket, User
from ..notifications.inbox import tell


@in_english
def ticket_assigned(ticket: Ticket, assignee: User | None, actor: User | None) -> bool:
    """Tell a staff member a request is now theirs. Returns whether anyone was told."""
    if assignee is None:
        return False
    by = f" by {actor.display_name}" if actor is not None else ""
    return tell([assignee], ticket, "ticket_assigned", actor,
                 text=f"{ticket.number} was assigned to you{by}: {ticket.title}",
                 subject=lazy_gettext("Request is assigned to you"),
                 lines=[lazy_gettext("Request %(number)s was assigned to you by %(name)s.", number=ticket.number,
                                     name=actor.display_name) if actor is not None else
                        lazy_gettext("Request %(number)s was assigned to you.", number=ticket.number)])


@in_english
def ticket_escalated(ticket: Ticket, owner: User | None, actor: User | None, reason: str) -> bool:
    """Tell whoever now owns the escalated request; with no named owner, everyone who holds the
    escalation role of the ticket's level. The reason is staff-only: in-app, never in a mail."""
    role = EscalationRole.for_level(ticket.escalation_level)
    recipients = [owner] if owner is not None else User.holding(role)
    level = role.label if role is not None else f"level {ticket.escalation_level}"
    by = f" by {actor.display_name}" if actor is not None else " automatically"
    text = f"{ticket.number} was escalated to you ({level}){by}"
    if reason.strip():
        text += f": {reason.strip()}"
    level_label = ESCALATION_ROLE_LABELS[role.value] if role is not None else level
    escalated = (lazy_gettext("Request %(number)s was escalated to you (%(level)s) by %(name)s.",
                              number=ticket.number, level=level_label, name=actor.display_name)
                 if actor is not None else
                 lazy_gettext("Request %(number)s was escalated to you (%(level)s) automatically.",
                              number=ticket.number, level=level_label))
    return tell(recipients, ticket, "ticket_escalated", actor, text=text,
                 subject=lazy_gettext("Request is escalated to you"),
                 lines=[escalated, lazy_gettext("The reason is on the request page.")])


@in_english
def ticket_replied(ticket: Ticket, message, actor: User) -> bool:
    """Tell the requester about a public staff reply, quoting it (it is what they will read on the
    page anyway; tell() quotes it for the ticket's participants only). Internal notes and the
    requester's own replies tell nobody."""
    if message.internal or not actor.is_staff:
        return False
    requester = User.get_by_id(ticket.requester_id)
    return tell([requester], ticket, "ticket_replies", actor,
                 text=f"{actor.display_name} replied on {ticket.number}: {ticket.title}",
                 subject=lazy_gettext("New reply from SmilePass support"),
                 lines=[lazy_gettext("%(name)s replied on your request %(number)s.", name=actor.display_name,
                                     number=ticket.number),
                        lazy_gettext("Status: %(status)s", status=STATUS_LABELS[ticket.status_enum])],
                 quote=message.body)


@in_english
def ticket_status_changed(ticket: Ticket, change, actor: User) -> bool:
    """Tell the requester their request moved (a reopen by themselves tells nobody)."""
    requester = User.get_by_id(ticket.requester_id)
    before, after = Status(change.from_status).label, Status(change.to_status).label
    before_label, after_label = STATUS_LABELS[Status(change.from_status)], STATUS_LABELS[Status(change.to_status)]
    return tell([requester], ticket, "ticket_status", actor,
                 text=f"{ticket.number} is now {after} (was {before}): {ticket.title}",
                 subject=lazy_gettext("Request is now %(status)s", status=after_label),
                 lines=[lazy_gettext("Your request %(number)s moved from %(before)s to %(after)s.",
                                     number=ticket.number, before=before_label, after=after_label)])
