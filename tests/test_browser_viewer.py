"""The 3D scan viewer in Debian's Chromium with software WebGL (SwiftShader): it loads only when opened,
draws the scan, swaps the uploaded and repaired copies, measures what the server measures on the mesh, and
a pin placed by clicking is posted into the thread and reopens at its view."""

import io
import math
import re

import numpy as np
import pytest
from PIL import Image

from smilepass.models import RescanRequest, Scan, ScanPin
from smilepass.scans.storage import scan_key
from smilepass.storage import for_config

from .browser_support import (
    AXE_FILE,
    CHROMIUM,
    CHROMIUM_ARGS,
    artifact_path,
    axe_missing_reason,
    axe_violations,
    sign_in,
)
from .conftest import PASSWORD, query, run_worker
from .meshgen import topology
from .parts import require
from .scanfiles import arch_stl

pytestmark = pytest.mark.browser

BACKGROUND = (0xF4, 0xF1, 0xEC)  # static/js/viewer.js
FOV = 35
CLINICIAN = "dr.ada@clinic.test"


@pytest.fixture(scope="module")
def chromium(playwright_driver):
    """Chromium with WebGL drawn in software (SwiftShader), for this module only: the other browser tests
    run with the GPU off."""
    args = [a for a in CHROMIUM_ARGS if a != "--disable-gpu"]
    args += ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"]
    browser = playwright_driver.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
    yield browser
    browser.close()


@pytest.fixture
def repaired(app, clinician, redis_conn):
    """A ticket with a scan (two holes), repaired by a real worker; the repaired mesh as (V, F)."""
    data = {
        "title": "Scan rejected by the lab",
        "description": "Holes on the lower molars.",
        "scan": (io.BytesIO(arch_stl()), "lower.stl"),
    }
    assert clinician.post("/support/tickets", data, content_type="multipart/form-data").status_code == 303
    result = run_worker(app)
    assert result.returncode == 0, result.stderr[-2000:]
    scan = query(lambda: Scan.get())
    assert scan.state == "done" and scan.verdict == "repaired", scan.error
    mesh = topology(for_config(app.config).local_path(scan_key(scan.repaired_stl_name)))
    return scan, mesh["V"].astype(np.float64), mesh["F"]


def numbers(text: str) -> np.ndarray:
    return np.array([float(n) for n in text.split()])


def is_background(pixel) -> bool:
    return bool(np.abs(np.asarray(pixel) - BACKGROUND).max() <= 3)  # colour management rounds by a step


def canvas_pixels(canvas) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(canvas.screenshot())).convert("RGB")).astype(int)


def rays(viewer, canvas, pixels):
    """The rays three.js casts through these CSS pixels of the canvas (PerspectiveCamera, up +y)."""
    eye, target = numbers(viewer.get_attribute("data-camera")), numbers(viewer.get_attribute("data-target"))
    box = canvas.bounding_box()
    z = eye - target
    z /= np.linalg.norm(z)
    x = np.cross([0.0, 1.0, 0.0], z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    t = math.tan(math.radians(FOV / 2))
    out = []
    for px, py in pixels:
        nx, ny = px / box["width"] * 2 - 1, -(py / box["height"]) * 2 + 1
        d = -z + x * nx * t * box["width"] / box["height"] + y * ny * t
        out.append(np.concatenate([eye, d / np.linalg.norm(d)]))
    return np.array(out, np.float32)


def cast(V, F, ray_rows):
    """Where the rays first meet the full repaired mesh (Open3D, as the repair's renderer uses it)."""
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(V.astype(np.float32), F.astype(np.uint32))
    hits = scene.cast_rays(o3d.core.Tensor(ray_rows))["t_hit"].numpy()
    return [None if not np.isfinite(t) else ray_rows[i, :3] + t * ray_rows[i, 3:] for i, t in enumerate(hits)]


def open_viewer(page):
    viewer = page.locator("details[data-viewer]")
    viewer.locator("summary").click()
    page.wait_for_selector("details[data-viewer][data-state=ready]", timeout=60_000)
    return viewer, viewer.locator("canvas")


def test_the_viewer_draws_toggles_and_measures(app, repaired, new_page):
    scan, V, F = repaired
    require(axe_missing_reason())
    page = new_page()
    page.context.add_init_script(path=str(AXE_FILE))
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    sign_in(page, CLINICIAN, PASSWORD)
    page.goto(f"/support/tickets/{scan.ticket_id}")
    # The ticket page costs nothing more until the viewer is opened.
    assert not [url for url in requested if "/vendor/three/" in url or url.endswith((".glb", "viewer.js"))]

    viewer, canvas = open_viewer(page)
    assert viewer.get_attribute("data-showing") == "after"
    assert any("/vendor/three/three.module.js" in url for url in requested)
    repaired_pixels = canvas_pixels(canvas)
    h, w, _ = repaired_pixels.shape
    assert not is_background(repaired_pixels[h // 2, w // 2])  # the scan is drawn where the camera looks
    assert is_background(repaired_pixels[12, 12])  # inside the border and its rounded corner
    canvas.screenshot(path=str(artifact_path("viewer-repaired.png")))
    assert axe_violations(page) == []  # the open viewer, its tools and the pin form
    orange = (repaired_pixels[..., 0] > 180) & (repaired_pixels[..., 2] < 90) & (repaired_pixels[..., 1] > 60)
    assert orange.sum() > 0  # the filled holes are marked

    # As uploaded: another mesh (the holes open, no orange), and back.
    viewer.get_by_label("As uploaded").check()
    page.wait_for_selector("details[data-viewer][data-showing=before]")
    page.wait_for_timeout(300)  # the next frame
    uploaded_pixels = canvas_pixels(canvas)
    assert (uploaded_pixels != repaired_pixels).any(axis=2).sum() > 20
    orange_before = (uploaded_pixels[..., 0] > 180) & (uploaded_pixels[..., 2] < 90) & (uploaded_pixels[..., 1] > 60)
    assert orange_before.sum() < orange.sum()
    viewer.get_by_label("Repaired").check()
    page.wait_for_selector("details[data-viewer][data-showing=after]")

    # Measure between two points the server also finds on the full mesh along the same rays.
    viewer.get_by_role("button", name="Measure").click()
    box = canvas.bounding_box()
    row = box["height"] / 2
    candidates = [(box["width"] * f, row) for f in np.linspace(0.1, 0.9, 33)]
    hits = cast(V, F, rays(viewer, canvas, candidates))
    on_mesh = [(pixel, hit) for pixel, hit in zip(candidates, hits, strict=True) if hit is not None]
    assert len(on_mesh) >= 2
    (p1, a), (p2, b) = on_mesh[0], on_mesh[-1]
    for px, py in (p1, p2):
        page.mouse.click(box["x"] + px, box["y"] + py)
    output = viewer.locator("output")
    page.wait_for_selector("details[data-viewer][data-measure]")
    shown = float(re.fullmatch(r"(\d+\.\d) mm", output.inner_text()).group(1))
    expected = float(np.linalg.norm(a - b))
    assert expected > 5
    assert abs(shown - expected) <= 0.1, (shown, expected)


def test_a_pin_placed_by_clicking_is_posted_and_reopens_at_its_view(app, repaired, new_page):
    scan, V, F = repaired
    page = new_page()
    sign_in(page, CLINICIAN, PASSWORD)
    page.goto(f"/support/tickets/{scan.ticket_id}")
    viewer, canvas = open_viewer(page)
    canvas.focus()
    for _ in range(3):
        page.keyboard.press("Shift+ArrowLeft")  # turn the view by keyboard: the pin keeps this camera
    page.keyboard.press("+")
    camera = numbers(viewer.get_attribute("data-camera"))
    viewer.get_by_role("button", name="Place a pin").click()
    box = canvas.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_selector("details[data-viewer][data-pin]")
    point = numbers(viewer.get_attribute("data-pin"))
    viewer.get_by_label("Comment on this point").fill("The margin is not captured here.")
    viewer.get_by_role("button", name="Post pin in the thread").click()
    page.wait_for_url(re.compile(rf"/support/tickets/{scan.ticket_id}#message-\d+$"))

    pin = query(lambda: ScanPin.get())
    assert np.allclose(pin.point, point, atol=1e-3) and np.allclose(pin.camera, camera, atol=1e-3)
    message = page.locator(f"#message-{pin.message_id}")
    assert "📍 on the scan: The margin is not captured here." in message.inner_text()
    # The thread's pin opens the viewer at the pin's view, with the pin shown.
    message.get_by_role("link", name="Show this point in 3D").click()
    page.wait_for_selector("details[data-viewer][data-state=ready][data-pin]", timeout=60_000)
    viewer = page.locator("details[data-viewer]")
    assert np.allclose(numbers(viewer.get_attribute("data-camera")), pin.camera, atol=1e-3)
    assert np.allclose(numbers(viewer.get_attribute("data-target")), pin.target, atol=1e-3)
    assert np.allclose(numbers(viewer.get_attribute("data-pin")), pin.point, atol=1e-3)
    # The point really is on the scan (the full repaired mesh, not only the web copy).
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(V.astype(np.float32), F.astype(np.uint32))
    assert scene.compute_distance(np.array([pin.point], np.float32)).numpy()[0] < 0.01


def test_staff_add_a_placed_pin_to_a_rescan_request(app, repaired, support, new_page):
    """Placing a pin fills the rescan form's hidden fields and shows its box; ticked, the request's reply
    carries the pin."""
    scan, V, F = repaired
    page = new_page()
    sign_in(page, "sam@smilepass.test", PASSWORD)
    page.goto(f"/support/tickets/{scan.ticket_id}")
    box_row = page.locator(f"#scan-{scan.id} [data-rescan-pin]")
    assert box_row.is_hidden()  # nothing to add before a pin is placed
    viewer, canvas = open_viewer(page)
    viewer.get_by_role("button", name="Place a pin").click()
    box = canvas.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_selector("details[data-viewer][data-pin]")
    point = numbers(viewer.get_attribute("data-pin"))
    camera = numbers(viewer.get_attribute("data-camera"))
    form = page.locator(f'form[action="/support/scans/{scan.id}/rescan"]')
    page.locator(f"#scan-{scan.id} details.rescan summary").click()
    form.get_by_label("Gum margin not captured").check()
    form.get_by_label("Add the pin placed in the 3D view").check()
    form.get_by_role("button", name="Request a rescan").click()
    page.wait_for_selector(f"#scan-{scan.id} .rescan-status.rescan-open")

    request = query(lambda: RescanRequest.get())
    pin = query(lambda: ScanPin.get())
    assert pin.message_id == request.message_id
    assert np.allclose(pin.point, point, atol=1e-3) and np.allclose(pin.camera, camera, atol=1e-3)
    page.locator(f"#message-{pin.message_id}").get_by_role("link", name="Show this point in 3D").wait_for()
