"""Ticket mails in their recipient's language, with the reply text for the ticket's participants only (#16):
the text around it follows the recipient's My Account → Language (German catalogue), whoever caused the
mail and whatever language they read; a public reply is quoted to participants, never to anyone else, and
an internal note reaches no mail at all."""
import datetime as dt

import pytest

from smilepass.models import Message, OutboxMail, Status, Ticket, User
from smilepass.notifications.inbox import tell
from smilepass.support import notices

from .case_helpers import ADA, BOB, SAM, in_db, make_case, reload, user
from .test_mailin import eml, take, turn_on_new_requests
from .test_notifications import ship, to_transit
from .test_ticket_notifications import SECRET, call, mails, reply, set_status

KIM = "kim@smilepass.test"


def speaks(email, language):
    in_db(lambda: User.update(language=language).where(User.email == email).execute())


def number(ticket_id):
    return in_db(lambda: Ticket.get_by_id(ticket_id).number)


def test_german_requester_gets_the_reply_in_german(app, clinician, support, new_ticket):
    speaks(ADA, "de")
    ticket_id = new_ticket(clinician, title="Jane Roe's upper arch")
    reply(support, ticket_id, "Please export the scan again as binary STL.")
    [mail] = mails(ADA)
    assert mail.subject == f"[{number(ticket_id)}] Neue Antwort vom SmilePass-Support"
    assert f"Sam hat auf Ihre Anfrage {number(ticket_id)} geantwortet." in mail.body
    assert "> Please export the scan again as binary STL." in mail.body  # the reply itself, as written
    assert "Seite der Anfrage (Anmeldung nötig): " in mail.body
    assert "Sie können auf diese E-Mail antworten" in mail.body
    assert "„Der Support antwortet auf meine Anfrage“ unter Mein Konto" in mail.body
    assert "replied on your request" not in mail.body and "You get this because" not in mail.body
    assert "Jane" not in mail.subject + mail.body


def test_english_requester_gets_english_even_from_a_german_speaking_agent(app, clinician, support, new_ticket):
    speaks(SAM, "de")  # the agent's pages are German; the request (and so this reply) happens in German
    ticket_id = new_ticket(clinician)
    reply(support, ticket_id, "Bitte exportieren Sie den Scan erneut.")
    set_status(support, ticket_id, Status.WAITING)
    reply_mail, status_mail = mails(ADA)
    assert reply_mail.subject == f"[{number(ticket_id)}] New reply from SmilePass support"
    assert f"Sam replied on your request {number(ticket_id)}." in reply_mail.body
    assert "> Bitte exportieren Sie den Scan erneut." in reply_mail.body
    assert "You get this because \"Support replies to my request\" is on" in reply_mail.body
    assert "Anfrage" not in reply_mail.body.replace("> Bitte exportieren Sie den Scan erneut.", "")
    assert status_mail.subject == f"[{number(ticket_id)}] Request is now Waiting on user"
    assert "moved from In Progress to Waiting on user" in status_mail.body


def test_german_status_and_assignment_mails(app, clinician, support, make_user, new_ticket):
    speaks(ADA, "de")
    make_user(KIM, "support")
    speaks(KIM, "de")
    ticket_id = new_ticket(clinician)
    set_status(support, ticket_id, Status.WAITING)
    [status_mail] = mails(ADA)
    assert status_mail.subject == f"[{number(ticket_id)}] Anfrage ist jetzt: Wartet auf Rückmeldung"
    assert "wechselte von „Offen“ zu „Wartet auf Rückmeldung“" in status_mail.body
    ticket = reload(Ticket, ticket_id)
    call(app, lambda: notices.ticket_assigned(ticket, user(KIM), user(SAM)))
    [assigned] = mails(KIM)
    assert assigned.subject == f"[{number(ticket_id)}] Anfrage ist Ihnen zugewiesen"
    assert f"Die Anfrage {number(ticket_id)} wurde Ihnen von Sam zugewiesen." in assigned.body
    # The in-app notification is stored once, in the source language.
    assert "was assigned to you" in in_db(lambda: User.by_email(KIM).notifications.get().text)


@pytest.mark.parametrize("language", ["en", "de"])
def test_an_internal_note_is_in_no_mail(app, clinician, support, make_user, new_ticket, language):
    speaks(ADA, language)
    make_user(KIM, "support")
    speaks(KIM, language)
    ticket_id = new_ticket(clinician)
    reply(support, ticket_id, SECRET, internal=True)
    reply(support, ticket_id, "We are on it.")
    set_status(support, ticket_id, Status.WAITING)
    ticket = reload(Ticket, ticket_id)
    call(app, lambda: notices.ticket_assigned(ticket, user(KIM), user(SAM)))
    call(app, lambda: notices.ticket_escalated(ticket, user(KIM), user(SAM), SECRET))
    all_mails = mails()
    assert len(all_mails) == 4 and all(SECRET not in m.subject + m.body for m in all_mails)
    assert "> We are on it." in mails(ADA)[0].body


def test_ticket_participants(app, clinician, other_clinician, support, make_user, new_ticket):
    make_user(KIM, "support")
    make_user("lee@smilepass.test", "support")
    ticket_id = new_ticket(clinician)
    reply(support, ticket_id, "A public answer.")
    in_db(lambda: Message.create(ticket=ticket_id, author=user(KIM).id, body="staff only", internal=True))
    ticket = in_db(lambda: Ticket.get_by_id(ticket_id))
    assert in_db(lambda: ticket.is_participant(user(ADA)))  # the requester
    assert in_db(lambda: ticket.is_participant(user(SAM)))  # wrote a public reply
    assert not in_db(lambda: ticket.is_participant(user(KIM)))  # an internal note only
    assert not in_db(lambda: ticket.is_participant(user("lee@smilepass.test")))  # staff, not in it
    assert not in_db(lambda: ticket.is_participant(user(BOB)))  # may not even see it
    in_db(lambda: Ticket.update(assignee=user("lee@smilepass.test").id).where(Ticket.id == ticket_id).execute())
    assert in_db(lambda: Ticket.get_by_id(ticket_id).is_participant(user("lee@smilepass.test")))
    in_db(lambda: User.update(is_active=False).where(User.email == ADA).execute())
    assert not in_db(lambda: ticket.is_participant(user(ADA)))  # no longer active


def test_the_reply_text_is_quoted_to_participants_only(app, clinician, other_clinician, support, make_user,
                                                       new_ticket):
    """tell() decides per recipient: the same mail about a reply quotes it to the requester and sends
    anyone else (here a clinician of another clinic, and staff outside the ticket) to the request page."""
    make_user(KIM, "support")
    speaks(BOB, "de")
    ticket = reload(Ticket, new_ticket(clinician))
    text = "Tooth 21 needs a new attachment."
    recipients = [user(ADA), user(BOB), user(KIM)]
    call(app, lambda: tell(recipients, ticket, "ticket_replies", user(SAM), text="reply", subject="Reply",
                           lines=["A reply."], quote=text))
    call(app, lambda: tell(recipients, ticket, "ticket_assigned", user(SAM), text="reply", subject="Reply",
                           lines=["A reply."], quote=text))
    ada_mail, bob_mail, kim_mail = mails(ADA)[0], mails(BOB)[0], mails(KIM)[0]
    assert f"> {text}" in ada_mail.body
    assert text not in bob_mail.body and "Die Antwort steht auf der Seite der Anfrage." in bob_mail.body
    assert text not in kim_mail.body and "The reply is on the request page." in kim_mail.body


def test_mails_answering_mail_are_in_the_users_language(app, clinician, support, make_user, new_ticket):
    speaks(ADA, "de")
    turn_on_new_requests(make_user)
    outcome = take(app, eml(app, "new_request.eml", 1))
    ticket = in_db(lambda: Ticket.get_by_id(outcome.ticket_id))
    [confirmation] = mails(ADA)
    assert confirmation.subject == f"[{ticket.number}] Anfrage erhalten"
    assert f"Ihre Anfrage {ticket.number} ist eingegangen." in confirmation.body
    assert f"Eine erste Antwort ist bis {ticket.response_due_at:%Y-%m-%d %H:%M} UTC fällig." in confirmation.body
    set_status(support, ticket.id, Status.RESOLVED)
    set_status(support, ticket.id, Status.CLOSED)
    take(app, eml(app, "gmail_alternative.eml", ticket.id))
    [closed] = in_db(lambda: list(OutboxMail.select().where(OutboxMail.automatic)))
    assert closed.subject == f"[{ticket.number}] Diese Anfrage ist geschlossen"
    assert "wurde nicht hinzugefügt: Die Anfrage ist geschlossen." in closed.body
    assert "stellen Sie bitte eine neue Anfrage in SmilePass" in closed.body


def test_shipment_mails_follow_the_clinicians_language(app, clinician, support):
    """Not a ticket mail, but written by the same notify(): all German for a German reader, not English
    text around German state names."""
    speaks(ADA, "de")
    case = make_case(patient_name="Jane Roe", dob=dt.date(1990, 4, 2))
    shipment = ship(support, case)
    to_transit(support, shipment, eta="2026-11-26")
    created, transit = mails(ADA)
    assert created.subject == "Fall C-1001: Lieferung In Produktion"
    assert "Eine neue Lieferung wurde angelegt und ist in Produktion." in created.body
    assert "Voraussichtliche Zustellung: zwischen " in created.body
    for line in ("Neuigkeiten zur Lieferung für Fall C-1001.", "Die Lieferung ist jetzt: Im Versand.",
                 "Stand: Im Versand", "Versanddienstleister: UPS", "Sendungsnummer: 1Z999AA10123456784",
                 "Voraussichtliche Zustellung: 2026-11-26 (Datum des Versanddienstleisters)",
                 f"/cases/{case.id}", "Sie erhalten diese E-Mail, weil"):
        assert line in transit.body, line
    assert "Jane" not in created.body + transit.body and "shipment" not in transit.body
