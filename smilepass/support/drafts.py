"""Drafts: what a user typed into the New Request form or a ticket's reply box, kept until it is sent
or discarded, and put back into the form when the user returns.

A draft may hold patient identifiers (a case number, a name in a description), so only its author
ever reads it, and it goes with the user or the ticket (the foreign keys cascade). Nothing is
checked but length: a half-written request is a fine draft. Files are never kept, since a page
cannot hand a chosen file back to the browser."""
import json
from collections.abc import Mapping

from werkzeug.datastructures import MultiDict

from ..models import Draft, User, utcnow
from .forms import CASE_NUMBER_MAX, DESCRIPTION_MAX, REPLY_MAX, TEETH_TEXT_MAX, TITLE_MAX, TRACKING_MAX, TRIED_MAX

NEW_REQUEST = "new_request"
REPLY = "reply"

# Room for a choice from a <select>, a date or a step number: those hold short values only.
CHOICE_MAX = 60

# The form fields a draft keeps, each with the longest value it may hold (the forms' own limits).
KEPT = {
    NEW_REQUEST: {
        "title": TITLE_MAX, "description": DESCRIPTION_MAX, "tried": TRIED_MAX, "priority": CHOICE_MAX,
        "category": CHOICE_MAX, "case_number": CASE_NUMBER_MAX, "teeth": TEETH_TEXT_MAX, "notation": CHOICE_MAX,
        "last_aligner_delivered": CHOICE_MAX, "aligner_step": CHOICE_MAX, "tracking_number": TRACKING_MAX,
        "preferred_resolution": CHOICE_MAX,
    },
    REPLY: {"body": REPLY_MAX, "internal": CHOICE_MAX},
}

# The fields that make a draft worth keeping: a form showing only its preset choices is no draft.
TYPED = {
    NEW_REQUEST: ("title", "description", "tried", "case_number", "teeth", "last_aligner_delivered",
                  "aligner_step", "tracking_number"),
    REPLY: ("body",),
}


class DraftTooLong(Exception):
    """A field holds more than its form would accept; nothing was saved."""

    def __init__(self, field: str, limit: int):
        super().__init__(f"{field} is longer than {limit} characters")
        self.field = field
        self.limit = limit


def find(user: User, kind: str, ticket_id: int | None = None) -> Draft | None:
    return Draft.of(user.id, kind, ticket_id)


def save(user: User, kind: str, submitted: Mapping, ticket_id: int | None = None) -> Draft | None:
    """Keep what was typed as this user's draft (replacing an older one). A form with nothing typed
    removes the draft instead and answers None."""
    values = {}
    for name, limit in KEPT[kind].items():
        value = submitted.get(name)
        if value is None:
            continue
        if len(value) > limit:
            raise DraftTooLong(name, limit)
        values[name] = value
    if not user.is_staff:
        values.pop("internal", None)  # only staff write internal notes
    if not any(values.get(name, "").strip() for name in TYPED[kind]):
        discard(user, kind, ticket_id)
        return None
    content = json.dumps(values, ensure_ascii=False)
    now = utcnow()
    query = Draft.insert(user=user.id, kind=kind, ticket=ticket_id, content=content, updated_at=now)
    update = {Draft.content: content, Draft.updated_at: now}
    if ticket_id is None:
        # The partial unique index of New Request drafts (NULL tickets never collide otherwise).
        query = query.on_conflict(conflict_target=[Draft.user, Draft.kind], conflict_where=Draft.ticket.is_null(),
                                  update=update)
    else:
        query = query.on_conflict(conflict_target=[Draft.user, Draft.kind, Draft.ticket], update=update)
    query.execute()
    return find(user, kind, ticket_id)


def discard(user: User, kind: str, ticket_id: int | None = None) -> bool:
    """Remove the user's draft; True when there was one."""
    ticket_match = Draft.ticket.is_null() if ticket_id is None else Draft.ticket == ticket_id
    removed = Draft.delete().where((Draft.user == user.id) & (Draft.kind == kind) & ticket_match).execute()
    return removed > 0


def forget_user(user: User) -> int:
    """Remove every draft of a user whose account is switched off: nobody may read them any more, and
    they may hold patient identifiers. Returns how many went."""
    return Draft.delete().where(Draft.user == user.id).execute()


def form_data(draft: Draft) -> MultiDict:
    """The draft as submitted form data, so a form built from it shows every value exactly as typed
    (even a date or step that would not pass validation yet)."""
    return MultiDict(json.loads(draft.content))
