"""Screenshots: re-encoded without metadata, stored outside static/ under random names, refused when
fake, oversized or a decompression bomb, and served only to those who may see the ticket. The tests that
store or fetch a file run on both storages (the upload folder and a bucket of a real S3 server)."""
import io
import os
from pathlib import Path

import pytest
from PIL import Image

from smilepass.models import Attachment, AuditLog, Ticket

from .conftest import query, stored_bytes, stored_keys

ROOT = Path(__file__).resolve().parent.parent


def png_with_gps(width=64, height=48) -> bytes:
    image = Image.new("RGB", (width, height), (20, 120, 140))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0)}  # GPS IFD
    out = io.BytesIO()
    image.save(out, "PNG", exif=exif.tobytes(), pnginfo=None)
    return out.getvalue()


def jpeg_with_gps() -> bytes:
    image = Image.new("RGB", (80, 60), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes(), comment=b"patient Jane Doe")
    return out.getvalue()


def file_with(browser, payload: bytes, filename: str, htmx=False, **fields):
    data = {"title": "With screenshot", "description": "See the attached screenshot.", **fields,
            "image": (io.BytesIO(payload), filename)}
    return browser.post("/support/tickets", data, htmx=htmx, content_type="multipart/form-data")


@pytest.mark.parametrize("make, name, content_type", [(png_with_gps, "shot.png", "image/png"),
                                                      (jpeg_with_gps, "IMG_0001.jpg", "image/jpeg")])
def test_images_are_reencoded_without_metadata(app, clinician, make, name, content_type, storage_settings):
    assert file_with(clinician, make(), name).status_code == 303
    attachment = query(lambda: Attachment.get())
    stored = Path(app.config["UPLOAD_DIR"]) / attachment.stored_name
    data = stored_bytes(app, attachment.stored_name)
    assert attachment.content_type == content_type and attachment.original_name == name
    assert b"PhoneMaker" not in data and b"Jane Doe" not in data and b"Exif" not in data
    reopened = Image.open(io.BytesIO(data))
    assert not reopened.getexif()
    # Random name, outside static/, nothing of the user's file name in the path.
    assert name.split(".")[0] not in attachment.stored_name and len(attachment.stored_name) >= 32
    assert not str(stored.resolve()).startswith(str((ROOT / "static").resolve()))
    assert stored_keys(app) == sorted([attachment.stored_name, attachment.thumb_name])
    assert stored.exists() == (not storage_settings)  # in a bucket, nothing on this server's disk


def test_webp_is_accepted(clinician):
    out = io.BytesIO()
    Image.new("RGB", (30, 30), "white").save(out, "WEBP")
    assert file_with(clinician, out.getvalue(), "shot.webp").status_code == 303


@pytest.mark.parametrize("payload, name", [
    (b"<html><script>alert(1)</script></html>", "shot.png"),
    (b"PK\x03\x04 not really an image", "scan.jpg"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "truncated.png"),
    (b"GIF89a" + b"\x00" * 40, "anim.gif"),
])
def test_fake_or_unsupported_images_are_refused_and_text_kept(app, clinician, payload, name, storage_settings):
    response = file_with(clinician, payload, name, htmx=True, title="Keep this title")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "PNG, JPEG or WebP" in html and 'value="Keep this title"' in html
    assert query(lambda: Ticket.select().count()) == 0
    assert os.listdir(app.config["UPLOAD_DIR"]) in ([], ["scans"]) and stored_keys(app) == []


def test_decompression_bomb_is_refused(app, clinician):
    out = io.BytesIO()
    Image.new("1", (12000, 12000)).save(out, "PNG")  # 144 megapixels in a tiny file
    response = file_with(clinician, out.getvalue(), "bomb.png")
    assert response.status_code == 422
    assert "too many pixels" in response.get_data(as_text=True)
    assert os.listdir(app.config["UPLOAD_DIR"]) in ([], ["scans"])


@pytest.mark.parametrize("htmx", [True, False])
def test_oversized_image_is_refused_with_a_clear_message(app, clinician, htmx):
    payload = b"\x89PNG\r\n\x1a\n" + os.urandom(app.config["MAX_IMAGE_BYTES"] + 300 * 1024)
    response = file_with(clinician, payload, "huge.png", htmx=htmx, title="Keep me")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "larger than 10 MB" in html and 'value="Keep me"' in html
    assert query(lambda: Ticket.select().count()) == 0
    assert os.listdir(app.config["UPLOAD_DIR"]) in ([], ["scans"])


@pytest.mark.parametrize("htmx", [True, False])
def test_request_over_the_total_limit_is_refused_before_reading(app, clinician, htmx):
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    response = file_with(clinician, os.urandom(2 * 1024 * 1024), "huge.png", htmx=htmx)
    assert response.status_code == 413
    assert "The upload is too large" in response.get_data(as_text=True)
    assert query(lambda: Ticket.select().count()) == 0


def test_image_just_over_the_limit_inside_request_allowance(app, clinician):
    app.config["MAX_IMAGE_BYTES"] = 1024
    response = file_with(clinician, png_with_gps(200, 200) + b"\x00" * 2048, "big.png")
    assert response.status_code == 422
    assert "larger than" in response.get_data(as_text=True)


def test_download_headers_and_thumbnail(app, clinician, storage_settings):
    file_with(clinician, png_with_gps(), "<b onmouseover=alert(1)>shot.png")
    attachment = query(lambda: Attachment.get())
    download = clinician.get(f"/support/attachments/{attachment.id}")
    assert download.status_code == 200 and download.data == stored_bytes(app, attachment.stored_name)
    assert download.headers["Cache-Control"] == "no-store"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert download.headers["Content-Type"] == "image/png"
    thumb = clinician.get(f"/support/attachments/{attachment.id}/thumb")
    assert thumb.status_code == 200 and thumb.headers["Content-Type"] == "image/webp"
    assert thumb.data == stored_bytes(app, attachment.thumb_name) and thumb.data.startswith(b"RIFF")
    page = clinician.get(f"/support/tickets/{attachment.ticket_id}").get_data(as_text=True)
    assert "<b onmouseover" not in page and "&lt;b onmouseover=alert(1)&gt;shot.png" in page


def test_other_clinicians_cannot_fetch_attachments(clinician, other_clinician, support, storage_settings):
    file_with(clinician, png_with_gps(), "shot.png")
    attachment = query(lambda: Attachment.get())
    for path in (f"/support/attachments/{attachment.id}", f"/support/attachments/{attachment.id}/thumb"):
        assert other_clinician.get(path).status_code == 404
        assert support.get(path).status_code == 200
    assert other_clinician.get("/support/attachments/999999").status_code == 404


# Screenshots with replies --------------------------------------------------------------------------

def reply_with(browser, ticket_id, payload: bytes, filename: str, htmx=False, **fields):
    browser.get(f"/support/tickets/{ticket_id}")
    data = {"body": "Here is what I see now.", **fields, "image": (io.BytesIO(payload), filename)}
    return browser.post(f"/support/tickets/{ticket_id}/replies", data, htmx=htmx, content_type="multipart/form-data")


@pytest.mark.parametrize("htmx", [True, False])
def test_a_reply_carries_a_reencoded_screenshot_shown_with_it(app, clinician, support, new_ticket, htmx,
                                                               storage_settings):
    ticket_id = new_ticket(clinician)
    response = reply_with(clinician, ticket_id, jpeg_with_gps(), "IMG_0002.jpg", htmx=htmx)
    assert response.status_code == (200 if htmx else 303)
    attachment = query(lambda: Attachment.get())
    message_id = query(lambda: Ticket.get_by_id(ticket_id).messages.get().id)
    assert (attachment.ticket_id, attachment.message_id) == (ticket_id, message_id)
    # The same checks and re-encoding as a New Request's screenshot: no EXIF, GPS or comment left.
    data = stored_bytes(app, attachment.stored_name)
    assert b"PhoneMaker" not in data and b"Jane Doe" not in data and not Image.open(io.BytesIO(data)).getexif()
    # Shown under the reply (not with the original request), to both sides.
    for browser in (clinician, support):
        page = browser.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
        thread = page.split('<ol id="thread"', 1)[1].split("</ol>", 1)[0]
        original = page.split('aria-label="Original request"', 1)[1].split("</section>", 1)[0]
        assert f'/support/attachments/{attachment.id}/thumb' in thread
        assert "/support/attachments/" not in original
    assert query(lambda: AuditLog.select().where(AuditLog.action == "attachment_upload").count()) == 1


def test_a_refused_reply_screenshot_keeps_the_text_and_stores_nothing(app, clinician, new_ticket, storage_settings):
    ticket_id = new_ticket(clinician)
    response = reply_with(clinician, ticket_id, b"<html><script>alert(1)</script></html>", "shot.png", htmx=True,
                          body="Keep this reply")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "The file is not a readable PNG, JPEG or WebP image." in html
    assert "Keep this reply" in html
    assert query(lambda: Ticket.get_by_id(ticket_id).messages.count()) == 0
    assert query(lambda: Attachment.select().count()) == 0
    assert os.listdir(app.config["UPLOAD_DIR"]) in ([], ["scans"]) and stored_keys(app) == []


def test_a_screenshot_on_an_internal_note_is_for_staff_only(clinician, support, new_ticket):
    ticket_id = new_ticket(clinician)
    assert reply_with(support, ticket_id, png_with_gps(), "staff-only.png", internal="y").status_code == 303
    attachment = query(lambda: Attachment.get())
    for path in (f"/support/attachments/{attachment.id}", f"/support/attachments/{attachment.id}/thumb"):
        assert clinician.get(path).status_code == 404
        assert support.get(path).status_code == 200
    assert "staff-only.png" not in clinician.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
    assert "staff-only.png" in support.get(f"/support/tickets/{ticket_id}").get_data(as_text=True)
