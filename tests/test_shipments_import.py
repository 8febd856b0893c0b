"""CSV import of tracking numbers: staff only, every row checked first, all or nothing."""
import datetime as dt
import io

from smilepass.models import AuditLog, Shipment

from .case_helpers import in_db, make_case, make_shipment, reload


def upload(browser, text, name="tracking.csv"):
    browser.get("/shipments/import")
    return browser.post("/shipments/import", {"file": (io.BytesIO(text.encode()), name)},
                        content_type="multipart/form-data")


def setup_cases():
    a = make_shipment(make_case(number="IM-1"))
    b = make_shipment(make_case(number="IM-2", patient_name="Other Patient"))
    return a, b


def test_good_file_moves_every_row_to_in_transit(clinician, support):
    a, b = setup_cases()
    csv = ("case number,carrier,tracking number,shipped date\n"
           "IM-1,UPS,1Z999,2026-11-02\n"
           "IM-2,DHL,JD0146,2026-11-03\n")
    response = upload(support, csv)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Imported 2 rows." in html
    first, second = reload(Shipment, a.id), reload(Shipment, b.id)
    assert (first.state, first.carrier, first.tracking_number) == ("in_transit", "UPS", "1Z999")
    assert first.in_transit_at.date() == dt.date(2026, 11, 2)
    assert (second.state, second.carrier) == ("in_transit", "DHL")
    assert in_db(lambda: AuditLog.select().where(AuditLog.action == "shipment_advance").count()) == 2


def test_one_bad_row_applies_nothing_and_reports_each_row(clinician, support):
    a, b = setup_cases()
    csv = ("IM-1,UPS,1Z999,2026-11-02\n"
           "IM-2,DHL,,2026-11-03\n"
           "NOPE-9,UPS,1Z1,2026-11-02\n"
           "IM-1,UPS,1Z2,2026-11-02\n"
           "IM-3,UPS,1Z3,02/11/2026\n"
           "IM-4,UPS\n"
           "IM-5,UPS,1Z4,2999-01-01\n")
    response = upload(support, csv)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Nothing was imported: 6 of 7 rows need fixing." in html
    for message in ("Tracking number is missing", "No case has this number", "appears twice",
                    "Expected 4 columns, found 2", "in the future",
                    "Shipped date must be YYYY-MM-DD"):
        assert message in html, message
    assert html.count('class="row-error"') == 6 and html.count('class="row-ok"') == 1
    assert reload(Shipment, a.id).state == "in_production" and reload(Shipment, b.id).state == "in_production"


def test_rows_need_a_shipment_in_production(clinician, support):
    a, _ = setup_cases()
    in_db(lambda: Shipment.update(state="delivered").where(Shipment.id == a.id).execute())
    response = upload(support, "IM-1,UPS,1Z,2026-11-01\n")
    assert response.status_code == 422 and "no shipment In Production" in response.get_data(as_text=True)


def test_unreadable_or_empty_files(support):
    assert upload(support, "").status_code == 422
    response = support.post("/shipments/import", {"file": (io.BytesIO(b"\xff\xfe\x00bad"), "x.csv")},
                            content_type="multipart/form-data")
    assert response.status_code == 422 and "not UTF-8" in response.get_data(as_text=True)


def test_clinicians_cannot_import(clinician):
    setup_cases()
    assert clinician.get("/shipments/import").status_code == 404
    response = clinician.post("/shipments/import", {"file": (io.BytesIO(b"IM-1,UPS,1Z,2026-11-01\n"), "t.csv")},
                              content_type="multipart/form-data")
    assert response.status_code == 404
