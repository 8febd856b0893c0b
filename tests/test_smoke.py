def test_healthz(client):
    assert client.get("/healthz").get_data(as_text=True) == "ok"


def test_support_page_needs_sign_in(client):
    response = client.get("/support/")
    assert response.status_code == 303
    assert "/auth/login" in response.headers["Location"]


def test_file_ticket_and_see_it(clinician, new_ticket):
    ticket_id = new_ticket(clinician, title="Aligner cracked")
    page = clinician.get(f"/support/?created={ticket_id}").get_data(as_text=True)
    assert "Aligner cracked" in page
    assert f"SP-{ticket_id:06d}" in page
