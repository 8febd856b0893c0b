"""Drafts of the New Request form and of replies: saved with and without htmx, restored on return,
discarded, removed when sent, private to their author, and behind the same ticket checks as replies."""
import datetime as dt
import json
import re

import peewee
import pytest

from smilepass.models import Case, Draft, Message, Ticket, User
from smilepass.support import drafts

from .conftest import query

NEW_REQUEST_DRAFT = "/support/drafts/new-request"
HALF_WRITTEN = {
    "title": "Tray 12 does not seat",
    "description": "Half written: the upper tray lifts at",
    "tried": "",
    "priority": "2",
    "category": "Warranty & Replacement",
    "case_number": "AL-NOPE",        # no such case: drafts are not validated
    "teeth": "11, 99",               # not a tooth either
    "notation": "fdi",
    "last_aligner_delivered": "",
    "aligner_step": "12",
    "tracking_number": "",
    "preferred_resolution": "replacement",
}


def reply_draft_url(ticket_id):
    return f"/support/tickets/{ticket_id}/draft"


def all_drafts():
    return query(lambda: list(Draft.select().order_by(Draft.id)))


def user_id(email):
    return query(lambda: User.by_email(email).id)


def title_value(html):
    match = re.search(r'<input[^>]*id="title"[^>]*value="([^"]*)"', html)
    return match.group(1) if match else None


def reply_box(html):
    match = re.search(r'<textarea[^>]*name="body"[^>]*>(.*?)</textarea>', html, re.S)
    return match.group(1).strip() if match else None


# --- New Request form ---------------------------------------------------------------------------

def test_page_offers_save_draft_and_says_files_are_not_kept(clinician):
    page = clinician.get("/support/").get_data(as_text=True)
    assert f'formaction="{NEW_REQUEST_DRAFT}"' in page and "Save draft" in page
    assert "not attached files" in page
    # No draft yet: nothing restored, nothing to discard.
    assert "Draft restored" not in page and "Discard draft" not in page


def test_new_request_draft_without_js_is_restored_on_return(clinician):
    response = clinician.post(NEW_REQUEST_DRAFT, HALF_WRITTEN)
    assert response.status_code == 303 and response.headers["Location"] == "/support/"
    page = clinician.get("/support/").get_data(as_text=True)
    assert "Draft saved." in page and "Draft restored from" in page
    assert title_value(page) == "Tray 12 does not seat"
    assert ">Half written: the upper tray lifts at</textarea>" in page
    assert '<option selected value="2">' in page
    assert '<option selected value="Warranty &amp; Replacement">' in page
    assert 'value="AL-NOPE"' in page and 'value="11, 99"' in page and 'value="12"' in page
    assert '<option selected value="replacement">' in page
    assert "Discard draft" in page
    # Nothing was filed.
    assert query(lambda: Ticket.select().count()) == 0
    [draft] = all_drafts()
    assert draft.kind == drafts.NEW_REQUEST and draft.ticket_id is None
    assert json.loads(draft.content)["title"] == "Tray 12 does not seat"


@pytest.fixture
def fixed_clock(time_machine):
    """Requested before the sign-in fixtures, so their sessions start at the same fixed moment."""
    time_machine.move_to(dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.UTC), tick=False)
    return time_machine


def test_new_request_draft_with_htmx_answers_only_the_status(fixed_clock, clinician):
    response = clinician.post(NEW_REQUEST_DRAFT, HALF_WRITTEN, htmx=True)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<html" not in html and "<form" not in html
    assert html.lstrip().startswith('<div class="draft-controls" id="new-request-draft"')
    assert "Draft saved 2026-12-02 10:00 UTC" in html
    assert "Discard draft" in html
    # What was typed is not in the answer (the page keeps it), but it is kept for next time.
    assert "Tray 12" not in html
    assert title_value(clinician.get("/support/").get_data(as_text=True)) == "Tray 12 does not seat"


def test_saving_again_replaces_the_draft(clinician):
    clinician.post(NEW_REQUEST_DRAFT, HALF_WRITTEN)
    clinician.post(NEW_REQUEST_DRAFT, {**HALF_WRITTEN, "title": "Second thoughts"}, htmx=True)
    [draft] = all_drafts()
    assert json.loads(draft.content)["title"] == "Second thoughts"


def test_one_new_request_draft_per_user_even_written_directly(clinician):
    clinician.post(NEW_REQUEST_DRAFT, HALF_WRITTEN)
    owner = user_id("dr.ada@clinic.test")
    with pytest.raises(peewee.IntegrityError):
        query(lambda: Draft.create(user=owner, kind=drafts.NEW_REQUEST, ticket=None, content="{}"))


def test_an_empty_form_keeps_no_draft(clinician):
    clinician.post(NEW_REQUEST_DRAFT, HALF_WRITTEN)
    # Only the preset choices left: the user cleared the form, so the draft goes.
    response = clinician.post(NEW_REQUEST_DRAFT, {"title": " ", "priority": "0", "category": "Case Submission"},
                              htmx=True)
    assert response.status_code == 200
    assert "Nothing typed yet" in response.get_data(as_text=True)
    assert all_drafts() == []


@pytest.mark.parametrize("htmx", [True, False])
def test_too_long_is_refused_and_nothing_is_lost(clinician, htmx):
    clinician.post(NEW_REQUEST_DRAFT, HALF_WRITTEN)
    response = clinician.post(NEW_REQUEST_DRAFT, {**HALF_WRITTEN, "title": "T" * 121}, htmx=htmx)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Draft not saved: Title is longer than 120 characters." in html
    if not htmx:
        # The whole form comes back as typed, the reason beside the field.
        assert title_value(html) == "T" * 121 and 'value="AL-NOPE"' in html
        assert 'id="title-error"' in html
    # The earlier draft is untouched.
    [draft] = all_drafts()
    assert json.loads(draft.content)["title"] == "Tray 12 does not seat"


def test_draft_text_is_escaped(clinician):
    clinician.post(NEW_REQUEST_DRAFT, {**HALF_WRITTEN, "title": '"><script>alert(1)</script>',
                                       "description": "</textarea><b>bold</b>"})
    page = clinician.get("/support/").get_data(as_text=True)
    assert "<script>alert(1)" not in page and "<b>bold</b>" not in page
    assert "&lt;/textarea&gt;&lt;b&gt;bold&lt;/b&gt;" in page


def test_discard_without_js(clinician):
    clinician.post(NEW_REQUEST_DRAFT, HALF_WRITTEN)
    response = clinician.post("/support/drafts/new-request/discard", HALF_WRITTEN)
    assert response.status_code == 303
    page = clinician.get("/support/").get_data(as_text=True)
    assert "Draft discarded." in page and "Draft restored" not in page
    assert title_value(page) == ""
    assert all_drafts() == []


def test_discard_with_htmx_gives_a_fresh_form(clinician):
    clinician.post(NEW_REQUEST_DRAFT, HALF_WRITTEN)
    response = clinician.post("/support/drafts/new-request/discard", HALF_WRITTEN, htmx=True)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<form id="new-request"') and "<html" not in html
    assert title_value(html) == "" and "Draft discarded." in html and "Discard draft" not in html
    assert all_drafts() == []


@pytest.mark.parametrize("htmx", [True, False])
def test_filing_the_request_deletes_its_draft(clinician, htmx):
    clinician.post(NEW_REQUEST_DRAFT, HALF_WRITTEN)
    response = clinician.post("/support/tickets", {**HALF_WRITTEN, "case_number": "", "teeth": "", "aligner_step": "",
                                                   "preferred_resolution": ""}, htmx=htmx)
    assert response.status_code == (200 if htmx else 303), response.get_data(as_text=True)
    assert all_drafts() == []
    page = clinician.get("/support/").get_data(as_text=True)
    assert "Draft restored" not in page and title_value(page) == ""


def test_a_refused_request_keeps_its_draft(clinician):
    clinician.post(NEW_REQUEST_DRAFT, HALF_WRITTEN)
    response = clinician.post("/support/tickets", {**HALF_WRITTEN, "title": ""})
    assert response.status_code == 422
    assert "Discard draft" in response.get_data(as_text=True)
    assert len(all_drafts()) == 1


def test_new_request_draft_is_private(clinician, other_clinician, support):
    clinician.post(NEW_REQUEST_DRAFT, HALF_WRITTEN)
    for browser in (other_clinician, support):
        page = browser.get("/support/").get_data(as_text=True)
        assert "Tray 12" not in page and "Draft restored" not in page and "AL-NOPE" not in page
    # Another user's save and discard touch only their own draft.
    other_clinician.post(NEW_REQUEST_DRAFT, {**HALF_WRITTEN, "title": "Bob's own"})
    other_clinician.post("/support/drafts/new-request/discard")
    [draft] = all_drafts()
    assert draft.user_id == user_id("dr.ada@clinic.test") and "Tray 12" in draft.content


def test_drafts_need_the_csrf_token(clinician, new_ticket):
    ticket_id = new_ticket(clinician)
    clinician.post(NEW_REQUEST_DRAFT, HALF_WRITTEN)
    clinician.post(reply_draft_url(ticket_id), {"body": "kept"})
    for path in (NEW_REQUEST_DRAFT, "/support/drafts/new-request/discard", reply_draft_url(ticket_id),
                 reply_draft_url(ticket_id) + "/discard"):
        for htmx in (False, True):
            response = clinician.post(path, {**HALF_WRITTEN, "body": "forged"}, csrf=False, htmx=htmx)
            assert response.status_code == 400, path
    contents = [d.content for d in all_drafts()]
    assert len(contents) == 2 and not any("forged" in c for c in contents)


def test_drafts_need_a_signed_in_user(client):
    response = client.post(NEW_REQUEST_DRAFT, HALF_WRITTEN)
    assert response.status_code in (302, 303) and "/auth/login" in response.headers["Location"]
    assert all_drafts() == []


def test_case_link_fills_an_empty_case_field_of_the_draft(clinician):
    owner = user_id("dr.ada@clinic.test")
    case = query(lambda: Case.create(case_number="AL-2041", patient_name="P. Atient", patient_dob=dt.date(1990, 1, 1),
                                     clinician=owner))
    clinician.post(NEW_REQUEST_DRAFT, {**HALF_WRITTEN, "case_number": ""})
    page = clinician.get(f"/support/?case={case.id}").get_data(as_text=True)
    assert title_value(page) == "Tray 12 does not seat" and 'value="AL-2041"' in page
    clinician.post(NEW_REQUEST_DRAFT, HALF_WRITTEN)
    page = clinician.get(f"/support/?case={case.id}").get_data(as_text=True)
    assert 'value="AL-NOPE"' in page  # the draft's own case number wins


# --- Replies --------------------------------------------------------------------------------------

def test_reply_draft_without_js_is_restored_on_the_ticket(clinician, new_ticket):
    ticket_id = new_ticket(clinician)
    page = clinician.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    assert f'formaction="{reply_draft_url(ticket_id)}"' in page and "not attached files" in page
    response = clinician.post(reply_draft_url(ticket_id), {"body": "The tray still lifts at 16 and"})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/support/tickets/{ticket_id}#reply"
    page = clinician.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    assert reply_box(page) == "The tray still lifts at 16 and"
    assert "Draft restored from" in page and "Draft saved." in page and "Discard draft" in page
    assert query(lambda: Message.select().count()) == 0
    [draft] = all_drafts()
    assert draft.kind == drafts.REPLY and draft.ticket_id == ticket_id


def test_reply_draft_with_htmx_answers_only_the_status(clinician, new_ticket):
    ticket_id = new_ticket(clinician)
    response = clinician.post(reply_draft_url(ticket_id), {"body": "Half a reply"}, htmx=True)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<div class="draft-controls" id="reply-draft"')
    assert "Draft saved" in html and "Half a reply" not in html and "<html" not in html
    assert reply_box(clinician.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)) == "Half a reply"


def test_reply_drafts_are_per_ticket(clinician, new_ticket):
    first, second = new_ticket(clinician), new_ticket(clinician, title="Another")
    clinician.post(reply_draft_url(first), {"body": "About the first"})
    clinician.post(reply_draft_url(second), {"body": "About the second"})
    assert reply_box(clinician.get(f"/support/tickets/{first}").get_data(as_text=True)) == "About the first"
    assert reply_box(clinician.get(f"/support/tickets/{second}").get_data(as_text=True)) == "About the second"
    # A reply draft is not a New Request draft.
    assert "Draft restored" not in clinician.get("/support/").get_data(as_text=True)


@pytest.mark.parametrize("htmx", [True, False])
def test_sending_the_reply_deletes_its_draft(clinician, new_ticket, htmx):
    ticket_id = new_ticket(clinician)
    clinician.post(reply_draft_url(ticket_id), {"body": "Nearly done"})
    response = clinician.post(f"/support/tickets/{ticket_id}/replies", {"body": "Done now"}, htmx=htmx)
    assert response.status_code == (200 if htmx else 303)
    assert all_drafts() == []
    page = clinician.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    assert "Draft restored" not in page and reply_box(page) == ""


def test_a_refused_reply_keeps_its_draft(clinician, new_ticket):
    ticket_id = new_ticket(clinician)
    clinician.post(reply_draft_url(ticket_id), {"body": "Nearly done"})
    response = clinician.post(f"/support/tickets/{ticket_id}/replies", {"body": " "}, htmx=True)
    assert response.status_code == 422 and "Discard draft" in response.get_data(as_text=True)
    assert len(all_drafts()) == 1


def test_discard_reply_draft(clinician, new_ticket):
    ticket_id = new_ticket(clinician)
    clinician.post(reply_draft_url(ticket_id), {"body": "Forget this"})
    response = clinician.post(reply_draft_url(ticket_id) + "/discard", {"body": "Forget this"}, htmx=True)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<section id="conversation"') and reply_box(html) == ""
    assert "Draft discarded." in html
    clinician.post(reply_draft_url(ticket_id), {"body": "Forget this too"})
    response = clinician.post(reply_draft_url(ticket_id) + "/discard")
    assert response.status_code == 303
    page = clinician.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    assert "Draft discarded." in page and reply_box(page) == ""
    assert all_drafts() == []


def test_reply_draft_too_long_is_refused_and_kept_on_the_page(clinician, new_ticket):
    ticket_id = new_ticket(clinician)
    response = clinician.post(reply_draft_url(ticket_id), {"body": "y" * 5001})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Draft not saved: Reply is longer than 5000 characters." in html and "y" * 5001 in html
    assert all_drafts() == []


def test_reply_draft_for_someone_elses_ticket_is_404(clinician, other_clinician, new_ticket):
    ticket_id = new_ticket(clinician)
    other_clinician.get("/support/")
    for path in (reply_draft_url(ticket_id), reply_draft_url(ticket_id) + "/discard", reply_draft_url(999999)):
        for htmx in (False, True):
            assert other_clinician.post(path, {"body": "sneaky"}, htmx=htmx).status_code == 404, path
    assert all_drafts() == []


def test_reply_drafts_are_private_between_users(clinician, support, browser_for, new_ticket):
    ticket_id = new_ticket(clinician)
    colleague = browser_for("kim@smilepass.test", "support")
    support.post(reply_draft_url(ticket_id), {"body": "Sam's unfinished note", "internal": "y"})
    clinician.post(reply_draft_url(ticket_id), {"body": "Ada's unfinished reply"})
    sams, adas = "Sam&#39;s unfinished note", "Ada&#39;s unfinished reply"
    for browser, shown in ((clinician, adas), (support, sams), (colleague, None)):
        page = browser.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
        for text in (sams, adas):
            assert (text in page) is (text == shown), text
    # Staff keep the internal-note tick; a clinician's draft never carries one.
    staff_draft = query(lambda: Draft.get(Draft.user == user_id("sam@smilepass.test")))
    assert json.loads(staff_draft.content)["internal"] == "y"
    assert '<input checked id="internal" name="internal"' in support.get(f"/support/tickets/{ticket_id}").get_data(
        as_text=True
    )
    clinician.post(reply_draft_url(ticket_id), {"body": "Ada again", "internal": "y"})
    ada_draft = query(lambda: Draft.get(Draft.user == user_id("dr.ada@clinic.test")))
    assert "internal" not in json.loads(ada_draft.content)
    # One person sending their reply leaves the others' drafts alone.
    support.post(f"/support/tickets/{ticket_id}/replies", {"body": "Sent by Sam"})
    assert [d.user_id for d in all_drafts()] == [user_id("dr.ada@clinic.test")]


def test_deactivating_a_user_removes_their_drafts(admin, support, clinician, new_ticket):
    ticket_id = new_ticket(clinician)
    support.post(reply_draft_url(ticket_id), {"body": "Unfinished"})
    support.post(NEW_REQUEST_DRAFT, HALF_WRITTEN)
    clinician.post(NEW_REQUEST_DRAFT, HALF_WRITTEN)
    admin.get("/admin/users")
    response = admin.post(f"/admin/users/{user_id('sam@smilepass.test')}/active")
    assert response.status_code == 303
    assert [d.user_id for d in all_drafts()] == [user_id("dr.ada@clinic.test")]


def test_drafts_go_with_their_user_and_ticket(app):
    """The foreign keys cascade, should a user or a ticket row ever be removed."""
    def scenario():
        author = User.create(email="gone@clinic.test", password_hash="x", session_stamp="s")
        other = User.create(email="stays@clinic.test", password_hash="x", session_stamp="t")
        ticket = Ticket.create(requester=other, title="t", description="d")
        drafts.save(author, drafts.NEW_REQUEST, {"title": "mine"})
        drafts.save(author, drafts.REPLY, {"body": "mine"}, ticket.id)
        drafts.save(other, drafts.REPLY, {"body": "theirs"}, ticket.id)
        author.delete_instance()
        left = [(d.user_id, d.kind) for d in Draft.select()]
        Ticket.delete().where(Ticket.id == ticket.id).execute()
        return left, Draft.select().count()
    left, after_ticket = query(scenario)
    assert left == [(user_id("stays@clinic.test"), drafts.REPLY)] and after_ticket == 0


def test_closing_a_ticket_removes_its_reply_drafts(clinician, support, new_ticket):
    ticket_id = new_ticket(clinician)
    other_id = new_ticket(clinician, title="Still open")
    clinician.post(reply_draft_url(ticket_id), {"body": "Ada's unsent"})
    clinician.post(reply_draft_url(other_id), {"body": "Kept"})
    support.post(reply_draft_url(ticket_id), {"body": "Sam's unsent"})
    clinician.post(NEW_REQUEST_DRAFT, HALF_WRITTEN)
    for status in (3, 4):  # Resolved, then Closed
        assert support.post(f"/support/tickets/{ticket_id}/status", {"status": str(status)}).status_code == 303
    assert sorted((d.kind, d.ticket_id) for d in all_drafts()) == [(drafts.NEW_REQUEST, None), (drafts.REPLY, other_id)]
    # A page left open on the closed ticket cannot leave a draft behind either.
    response = clinician.post(reply_draft_url(ticket_id), {"body": "Too late"}, htmx=True)
    assert response.status_code == 422 and "This ticket is closed" in response.get_data(as_text=True)
    response = clinician.post(reply_draft_url(ticket_id), {"body": "Too late"})
    assert response.status_code == 303
    assert "This ticket is closed, so the draft was not kept." in clinician.get(
        f"/support/tickets/{ticket_id}"
    ).get_data(as_text=True)
    assert len(all_drafts()) == 2
