"""Canned replies: the staff page (create, edit, delete; audited) and inserting one into a ticket's
reply box, with htmx and without."""
import html as html_lib

from smilepass.models import AuditLog, CannedReply, User

from .conftest import query


def create(browser, title="Scan received", body="Hello {clinician_name}, we got your scan for {ticket_number}."):
    return browser.post("/queue/canned", {"title": title, "body": body})


def reply_id(title):
    return query(lambda: CannedReply.get(CannedReply.title == title).id)


def audit_actions():
    return query(lambda: [a.action for a in AuditLog.select().where(AuditLog.object_type == "cannedreply")
                          .order_by(AuditLog.id)])


def test_create_edit_delete(support):
    assert support.get("/queue/canned").status_code == 200
    response = create(support)
    assert response.status_code == 303
    page = support.get("/queue/canned").get_data(as_text=True)
    assert "Scan received" in page and "saved" in page

    rid = reply_id("Scan received")
    assert "Scan received" in support.get(f"/queue/canned/{rid}").get_data(as_text=True)
    response = support.post(f"/queue/canned/{rid}", {"title": "Scan arrived", "body": "New text."})
    assert response.status_code == 303
    reply = query(lambda: CannedReply.get_by_id(rid))
    assert (reply.title, reply.body) == ("Scan arrived", "New text.")

    assert support.post(f"/queue/canned/{rid}/delete").status_code == 303
    assert query(lambda: CannedReply.select().count()) == 0
    assert audit_actions() == ["canned_create", "canned_update", "canned_delete"]
    details = query(lambda: [a.detail for a in AuditLog.select().where(AuditLog.action == "canned_update")])
    assert details == ["Scan received → Scan arrived"]


def test_title_unique_and_lengths(support):
    create(support)
    response = create(support, title="scan RECEIVED", body="Other")
    assert response.status_code == 422
    assert "already exists" in html_lib.unescape(response.get_data(as_text=True))
    response = create(support, title="Long", body="x" * 5001)
    assert response.status_code == 422
    assert "5000" in response.get_data(as_text=True)
    response = create(support, title="", body="")
    text = response.get_data(as_text=True)
    assert "Give the canned reply a title." in text and "Write the reply&#39;s text." in text
    # Renaming onto another title is refused the same way.
    create(support, title="Second", body="Two")
    response = support.post(f"/queue/canned/{reply_id('Second')}", {"title": "Scan received", "body": "Two"})
    assert response.status_code == 422
    assert query(lambda: CannedReply.select().count()) == 2
    assert audit_actions() == ["canned_create", "canned_create"]


def test_staff_only(clinician, support, new_ticket):
    create(support)
    rid = reply_id("Scan received")
    ticket_id = new_ticket(clinician)
    assert clinician.get("/queue/canned").status_code == 404
    assert create(clinician, title="Mine").status_code == 404
    assert clinician.get(f"/queue/canned/{rid}").status_code == 404
    assert clinician.post(f"/queue/canned/{rid}/delete").status_code == 404
    assert clinician.get(f"/queue/tickets/{ticket_id}/canned?canned={rid}").status_code == 404
    # Clinicians never see the picker.
    assert "Canned reply" not in clinician.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    assert support.post("/queue/canned/999/delete").status_code == 404


def test_insert_with_htmx_appends_to_draft(support, clinician, new_ticket):
    ticket_id = new_ticket(clinician)
    create(support)
    rid = reply_id("Scan received")
    page = support.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    assert 'class="canned-picker"' in page and "Scan received</option>" in page

    response = support.get(f"/queue/tickets/{ticket_id}/canned?canned={rid}&body=Thanks+for+waiting.", htmx=True)
    assert response.status_code == 200
    fragment = response.get_data(as_text=True)
    assert fragment.lstrip().startswith('<div id="reply-body"') and "<html" not in fragment
    textarea = fragment.split("<textarea", 1)[1].split("</textarea>", 1)[0]
    assert f"Thanks for waiting.\n\nHello Dr.Ada, we got your scan for SP-{ticket_id:06d}." in textarea


def test_insert_without_js_renders_ticket_page(support, clinician, new_ticket):
    ticket_id = new_ticket(clinician)
    create(support)
    rid = reply_id("Scan received")
    response = support.get(f"/queue/tickets/{ticket_id}/canned?canned={rid}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<html" in page and 'id="reply"' in page
    assert f"Hello Dr.Ada, we got your scan for SP-{ticket_id:06d}.</textarea>" in page
    # Sending it is an ordinary reply.
    body = f"Hello Dr.Ada, we got your scan for SP-{ticket_id:06d}."
    assert support.post(f"/support/tickets/{ticket_id}/replies", {"body": body}).status_code == 303
    missing = support.get(f"/queue/tickets/{ticket_id}/canned?canned=12345")
    assert missing.status_code == 422 and "Choose a canned reply to insert." in missing.get_data(as_text=True)


def test_placeholders_are_escaped(support, browser_for, new_ticket):
    browser = browser_for("evil@clinic.test")
    query(lambda: User.update(name='<script>alert("x")</script>').where(User.email == "evil@clinic.test").execute())
    ticket_id = new_ticket(browser)
    create(support, title="Hi", body="Dear {clinician_name} <b>{ticket_number}</b> {unknown}")
    rid = reply_id("Hi")
    for htmx in (True, False):
        text = support.get(f"/queue/tickets/{ticket_id}/canned?canned={rid}", htmx=htmx).get_data(as_text=True)
        assert "<script>alert" not in text
        assert (f"Dear &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &lt;b&gt;SP-{ticket_id:06d}&lt;/b&gt; "
                "{unknown}") in text


def test_a_title_is_one_line(support):
    for title in ("Scan\nreceived", "Scan\rreceived"):
        response = create(support, title=title)
        assert response.status_code == 422
        assert "The title must be one line." in response.get_data(as_text=True)
    assert query(lambda: CannedReply.select().count()) == 0
