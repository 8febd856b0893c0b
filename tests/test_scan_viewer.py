"""The 3D viewer's server side: the web copies a repair stores and how they are served (issue 18)."""

import datetime as dt
import io

import numpy as np
import pytest

from smilepass.models import Case, Message, RescanRequest, Scan, ScanPin, User
from smilepass.storage import for_config

from .conftest import query, run_worker
from .scanfiles import arch_stl, arch_surface


def file_scan(browser, payload: bytes = None):
    data = {
        "title": "Scan rejected by the lab",
        "description": "Holes on the lower molars.",
        "scan": (io.BytesIO(payload or arch_stl()), "clinic7_patient42_2026-11-20.stl"),
    }
    response = browser.post("/support/tickets", data, content_type="multipart/form-data")
    assert response.status_code == 303
    return query(lambda: Scan.select().order_by(Scan.id.desc()).get())


@pytest.fixture
def repaired_scan(app, clinician, redis_conn):
    scan = file_scan(clinician)
    result = run_worker(app)
    assert result.returncode == 0, result.stderr[-2000:]
    scan = query(lambda: Scan.get_by_id(scan.id))
    assert scan.state == "done", scan.error
    return scan


def test_the_repair_stores_both_web_copies_and_serves_them_like_the_previews(app, clinician, repaired_scan):
    scan = repaired_scan
    assert scan.web_before_name.endswith(".before.glb") and scan.web_after_name.endswith(".after.glb")
    stored = {o.key for o in for_config(app.config).list()}
    assert {f"scans/{scan.web_before_name}", f"scans/{scan.web_after_name}"} <= stored
    for which in ("before", "after"):
        response = clinician.get(f"/support/scans/{scan.id}/web/{which}.glb")
        assert response.status_code == 200
        assert response.data[:4] == b"glTF" and response.mimetype == "model/gltf-binary"
        assert response.headers["Cache-Control"] == "no-store"
    assert clinician.get(f"/support/scans/{scan.id}/web/other.glb").status_code == 404


def test_another_clinicians_web_copy_is_a_404(app, clinician, other_clinician, support, repaired_scan):
    for which in ("before", "after"):
        assert other_clinician.get(f"/support/scans/{repaired_scan.id}/web/{which}.glb").status_code == 404
        assert support.get(f"/support/scans/{repaired_scan.id}/web/{which}.glb").status_code == 200


def test_a_rerun_replaces_the_web_copies(app, clinician, support, repaired_scan):
    first = repaired_scan
    response = support.post(f"/support/scans/{first.id}/rerun", {"hole_percent": "0", "debris_percent": "1"})
    assert response.status_code == 303
    assert run_worker(app).returncode == 0
    again = query(lambda: Scan.get_by_id(first.id))
    assert again.state == "done" and again.web_after_name and again.web_after_name != first.web_after_name
    keys = {o.key for o in for_config(app.config).list()}
    assert f"scans/{first.web_after_name}" not in keys and f"scans/{again.web_after_name}" in keys


def pin_data(browser, scan, body="Margin not captured here.", point=None, camera=(0.0, 60.0, 60.0),
             target=(0.0, 20.0, 5.0), **extra):
    """The pin form as the viewer fills it (the field names carry the scan's prefix)."""
    prefix = f"pin{scan.id}-"
    x, y, z = point if point is not None else the_point(scan)
    data = {"x": x, "y": y, "z": z, "body": body, "csrf_token": browser.token}
    if camera is not None:
        data.update(zip(("camera_x", "camera_y", "camera_z"), camera, strict=True))
        data.update(zip(("target_x", "target_y", "target_z"), target, strict=True))
    data.update(extra)
    return {prefix + key: str(value) for key, value in data.items()}


def the_point(scan):
    """A point on the scan: a vertex of the uploaded mesh (tests/scanfiles.py), in mm."""
    vertices, _ = arch_surface()
    return tuple(float(v) for v in vertices[30 * 200 + 100])


def pins():
    return query(lambda: [(p.message_id, p.scan_id, p.point, p.camera, p.target) for p in ScanPin.select()])


def test_a_pin_is_a_reply_with_its_point_and_camera(app, clinician, repaired_scan):
    scan = repaired_scan
    ticket_page = f"/support/tickets/{scan.ticket_id}"
    form = clinician.get(ticket_page).get_data(as_text=True)
    # A real form (works without JS: the point is typed), with its CSRF token.
    assert f'<form method="post" action="/support/scans/{scan.id}/pins"' in form
    assert f'name="pin{scan.id}-csrf_token"' in form and f'name="pin{scan.id}-x"' in form
    point = the_point(scan)
    response = clinician.post(f"/support/scans/{scan.id}/pins", pin_data(clinician, scan))
    assert response.status_code == 303
    [(message_id, scan_id, stored_point, camera, target)] = pins()
    assert response.headers["Location"].endswith(f"{ticket_page}#message-{message_id}")
    assert scan_id == scan.id and np.allclose(stored_point, point) and camera == [0.0, 60.0, 60.0]
    assert target == [0.0, 20.0, 5.0]
    message = query(lambda: Message.get_by_id(message_id))
    assert message.body == "📍 on the scan: Margin not captured here." and not message.internal
    page = clinician.get(ticket_page).get_data(as_text=True)
    assert f'id="message-{message_id}"' in page and "Show this point in 3D" in page
    assert f'data-pin-scan="{scan.id}"' in page and 'data-pin-camera="0.0 60.0 60.0"' in page

    # Typed without JS: no camera, so the pin opens looking down at the point from above.
    response = clinician.post(f"/support/scans/{scan.id}/pins", pin_data(clinician, scan, camera=None,
                                                                         body="Typed by hand."))
    assert response.status_code == 303
    _, _, stored_point, camera, target = pins()[-1]
    assert target == stored_point and camera[:2] == stored_point[:2] and camera[2] > stored_point[2] + 10


@pytest.mark.parametrize("field, value, error", [
    ("x", "nan", "Enter a number in millimetres."),
    ("y", "inf", "Enter a number in millimetres."),
    ("z", "1e999", "Enter a number in millimetres."),
    ("x", "twelve", "Enter a number in millimetres."),
    ("z", "", "Enter a number in millimetres."),
    ("x", "500", "This point is not on the scan: pick it on the model."),
    ("z", "-40", "This point is not on the scan: pick it on the model."),
    ("body", "   ", "Write a comment first."),
])
def test_a_pin_with_a_bad_point_or_no_comment_is_refused_and_keeps_the_text(app, clinician, field, value, error,
                                                                            repaired_scan):
    scan = repaired_scan
    clinician.get(f"/support/tickets/{scan.ticket_id}")
    data = pin_data(clinician, scan, body="Kept as typed.")
    data[f"pin{scan.id}-{field}"] = value
    response = clinician.post(f"/support/scans/{scan.id}/pins", data)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert error in html
    assert f'<details id="viewer-{scan.id}" class="viewer"' in html and " open>" in html  # the form shows
    if field != "body":
        assert "Kept as typed." in html
    assert pins() == [] and query(lambda: Message.select().count()) == 0


def test_pins_need_a_csrf_token_and_the_ticket(app, clinician, other_clinician, repaired_scan):
    scan = repaired_scan
    clinician.get(f"/support/tickets/{scan.ticket_id}")
    data = pin_data(clinician, scan)
    del data[f"pin{scan.id}-csrf_token"]
    assert clinician.post(f"/support/scans/{scan.id}/pins", data, csrf=False).status_code == 400
    other_clinician.get("/support/")
    assert other_clinician.post(f"/support/scans/{scan.id}/pins", pin_data(other_clinician, scan)).status_code == 404
    assert clinician.post("/support/scans/999/pins", pin_data(clinician, scan)).status_code == 404
    assert pins() == []


def test_pins_on_internal_notes_are_staff_only(app, clinician, support, repaired_scan):
    scan = repaired_scan
    ticket_page = f"/support/tickets/{scan.ticket_id}"
    support.get(ticket_page)
    response = support.post(f"/support/scans/{scan.id}/pins",
                            pin_data(support, scan, body="Lab: looks like motion here.", internal="y"))
    assert response.status_code == 303
    [(message_id, *_)] = pins()
    assert query(lambda: Message.get_by_id(message_id).internal)
    assert "Lab: looks like motion here." in support.get(ticket_page).get_data(as_text=True)
    page = clinician.get(ticket_page).get_data(as_text=True)
    assert "Lab: looks like motion here." not in page and "data-pin-scan" not in page
    assert "Internal note" not in page
    # A clinician cannot make a note internal: theirs is a public reply.
    clinician.post(f"/support/scans/{scan.id}/pins", pin_data(clinician, scan, body="Mine.", internal="y"))
    mine = query(lambda: Message.select().where(Message.body.contains("Mine.")).get())
    assert not mine.internal


def test_pins_survive_a_rerun_of_the_repair(app, clinician, support, repaired_scan):
    scan = repaired_scan
    ticket_page = f"/support/tickets/{scan.ticket_id}"
    clinician.get(ticket_page)
    assert clinician.post(f"/support/scans/{scan.id}/pins", pin_data(clinician, scan)).status_code == 303
    before = pins()
    support.post(f"/support/scans/{scan.id}/rerun", {"hole_percent": "0", "debris_percent": "1"})
    assert run_worker(app).returncode == 0
    again = query(lambda: Scan.get_by_id(scan.id))
    assert again.state == "done" and again.run == 2 and again.web_after_name != scan.web_after_name
    assert pins() == before  # in the scan's coordinates: nothing to map onto the new web copy
    page = clinician.get(ticket_page).get_data(as_text=True)
    assert "Show this point in 3D" in page
    # The point is still on the new copy's scan: a second pin there is accepted.
    assert clinician.post(f"/support/scans/{scan.id}/pins", pin_data(clinician, scan)).status_code == 303


# A rescan request may carry one pin (issue 18 §2: "plus free text and optional pins") ------------------

def rescan_data(scan, point=None, camera=(0.0, 60.0, 60.0), target=(0.0, 20.0, 5.0), pin="y", note="See the pin."):
    """The rescan form as the viewer fills it after a pin was placed (unprefixed names, like the form)."""
    data = {"reasons": ["gum_margin"], "note": note}
    if pin:
        data["pin"] = pin
    values = list(point if point is not None else the_point(scan)) + list(camera) + list(target)
    names = ("x", "y", "z", "camera_x", "camera_y", "camera_z", "target_x", "target_y", "target_z")
    data.update({"pin_" + name: str(value) for name, value in zip(names, values, strict=True)})
    return data


def test_a_rescan_request_carries_a_pin_the_clinician_sees(app, clinician, support, redis_conn, repaired_scan):
    scan = repaired_scan
    ticket_page = f"/support/tickets/{scan.ticket_id}"
    page = support.get(ticket_page).get_data(as_text=True)
    # The box is there for the viewer to show, hidden until a pin is placed (without JS: no pin, still a form).
    assert f'id="rescan-{scan.id}-pin"' in page and f'data-rescan-prefix="rescan-{scan.id}-pin"' in page
    assert f'name="pin_x" id="rescan-{scan.id}-pin-x"' in page
    response = support.post(f"/support/scans/{scan.id}/rescan", rescan_data(scan))
    assert response.status_code == 303
    request = query(lambda: RescanRequest.get())
    [(message_id, scan_id, point, camera, target)] = pins()
    assert message_id == request.message_id and scan_id == scan.id
    assert np.allclose(point, the_point(scan)) and camera == [0.0, 60.0, 60.0] and target == [0.0, 20.0, 5.0]
    page = clinician.get(ticket_page).get_data(as_text=True)  # a public reply: the clinician sees the pin
    assert f'id="message-{message_id}"' in page and "Show this point in 3D" in page
    assert f'data-pin-scan="{scan.id}"' in page and 'data-pin-camera="0.0 60.0 60.0"' in page


def test_a_rescan_request_without_the_box_ticked_has_no_pin(app, clinician, support, redis_conn, repaired_scan):
    """Without JS the box stays hidden: the hidden fields, even if filled with rubbish, are ignored."""
    scan = repaired_scan
    support.get(f"/support/tickets/{scan.ticket_id}")
    response = support.post(f"/support/scans/{scan.id}/rescan", rescan_data(scan, point=("x", "", "nan"), pin=None))
    assert response.status_code == 303
    assert query(lambda: RescanRequest.select().count()) == 1 and pins() == []


@pytest.mark.parametrize("point, error", [
    ((500.0, 0.0, 0.0), "This point is not on the scan: pick it on the model."),
    (("nan", "0", "0"), "Place the pin on the scan in the 3D view first."),
    (("", "", ""), "Place the pin on the scan in the 3D view first."),
])
def test_a_rescan_request_with_a_bad_pin_is_refused_and_keeps_the_note(app, clinician, support, redis_conn,
                                                                      repaired_scan, point, error):
    scan = repaired_scan
    support.get(f"/support/tickets/{scan.ticket_id}")
    response = support.post(f"/support/scans/{scan.id}/rescan", rescan_data(scan, point=point, note="Kept note."))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert error in html and "Kept note." in html
    assert query(lambda: RescanRequest.select().count()) == 0 and pins() == []
    assert query(lambda: Message.select().count()) == 0


def test_a_clinician_cannot_ask_for_a_rescan_with_a_pin(app, clinician, other_clinician, redis_conn, repaired_scan):
    scan = repaired_scan
    clinician.get(f"/support/tickets/{scan.ticket_id}")
    assert clinician.post(f"/support/scans/{scan.id}/rescan", rescan_data(scan)).status_code == 404
    other_clinician.get("/support/")
    assert other_clinician.post(f"/support/scans/{scan.id}/rescan", rescan_data(scan)).status_code == 404
    assert pins() == [] and query(lambda: RescanRequest.select().count()) == 0


def test_the_case_page_offers_pins_only_on_a_ticket_the_user_sees(app, clinician, other_clinician, support,
                                                                   repaired_scan):
    """A scan sent with a request can show on a case page of another clinician's: they see the scan and
    its 3D view, but not the ticket, so no pin form (its post would be a 404)."""
    scan = repaired_scan
    owner = query(lambda: User.get(User.email == "dr.bob@clinic.test"))
    case = query(lambda: Case.create(case_number="C-2026-9", patient_name="Pat Seed",
                                     patient_dob=dt.date(1990, 1, 1), clinician=owner))
    query(lambda: Scan.update(case=case.id).where(Scan.id == scan.id).execute())
    page = other_clinician.get(f"/cases/{case.id}").get_data(as_text=True)
    assert f'id="viewer-{scan.id}"' in page  # the scan and its viewer show
    assert f'action="/support/scans/{scan.id}/pins"' not in page and "Place a pin" not in page
    assert other_clinician.post(f"/support/scans/{scan.id}/pins", pin_data(other_clinician, scan)).status_code == 404
    # Staff see the ticket: the form is there for them on the same page.
    page = support.get(f"/cases/{case.id}").get_data(as_text=True)
    assert f'action="/support/scans/{scan.id}/pins"' in page and "Place a pin" in page
