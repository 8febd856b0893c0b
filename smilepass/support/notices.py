"""What a ticket change tells people.

Every ticket event gives the recipient an in-app notification (private, cheap, always) and, if their
choice allows, a mail. Neither ever goes to the person who caused the event. Mails name the request by
its number only: a title is free text and may carry a patient's name. Nothing written here comes from
an internal note. Call these after the change (inside or after its transaction); each hands its mails
to the worker itself once no transaction is open, otherwise the caller that holds the transaction
calls `outbox.hand_over()` after it commits."""
from ..i18n import in_english
from ..models import EscalationRole, Status, Ticket, User
from ..notifications.inbox import tell


@in_english
def ticket_assigned(ticket: Ticket, assignee: User | None, actor: User | None) -> bool:
    """Tell a staff member a request is now theirs. Returns whether anyone was told."""
    if assignee is None:
        return False
    by = f" by {actor.display_name}" if actor is not None else ""
    return tell([assignee], ticket, "ticket_assigned", actor,
                 text=f"{ticket.number} was assigned to you{by}: {ticket.title}",
                 subject="Request is assigned to you",
                 lines=[f"Request {ticket.number} was assigned to you{by}."])


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
    return tell(recipients, ticket, "ticket_escalated", actor, text=text,
                 subject="Request is escalated to you",
                 lines=[f"Request {ticket.number} was escalated to you ({level}){by}.",
                        "The reason is on the request page."])


@in_english
def ticket_replied(ticket: Ticket, message, actor: User) -> bool:
    """Tell the requester about a public staff reply, quoting it (it is what they will read on the
    page anyway). Internal notes and the requester's own replies tell nobody."""
    if message.internal or not actor.is_staff:
        return False
    requester = User.get_by_id(ticket.requester_id)
    return tell([requester], ticket, "ticket_replies", actor,
                 text=f"{actor.display_name} replied on {ticket.number}: {ticket.title}",
                 subject="New reply from SmilePass support",
                 lines=[f"{actor.display_name} replied on your request {ticket.number}:", "",
                        *("> " + line for line in message.body.splitlines()), "",
                        f"Status: {ticket.status_enum.label}"])


@in_english
def ticket_status_changed(ticket: Ticket, change, actor: User) -> bool:
    """Tell the requester their request moved (a reopen by themselves tells nobody)."""
    requester = User.get_by_id(ticket.requester_id)
    before, after = Status(change.from_status).label, Status(change.to_status).label
    return tell([requester], ticket, "ticket_status", actor,
                 text=f"{ticket.number} is now {after} (was {before}): {ticket.title}",
                 subject=f"Request is now {after}",
                 lines=[f"Your request {ticket.number} moved from {before} to {after}."])
