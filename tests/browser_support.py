"""Helpers for the Playwright browser tests: Debian's Chromium, a live server for the test app,
sign-in steps, table reading and a generated screenshot to upload.

Fixtures live in test_browser.py; this module only holds plain functions and classes."""
import re
import threading
from pathlib import Path

from PIL import Image, ImageDraw
from werkzeug.serving import make_server

from smilepass import db
from smilepass.support import tickets

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
HTMX_FILE = ROOT / "static" / "vendor" / "htmx.min.js"
# axe-core from npm (package.json pins it), injected by the tests, never served by the app.
AXE_FILE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 2.5.5's size for a pointer target, in CSS pixels.
TAP_TARGET_PX = 44

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 900}
# Playwright's auto-waiting limit for actions, navigations and `expect`.
TIMEOUT_MS = 10_000

PRIORITY_RANK = {"Low": 0, "Normal": 1, "High": 2, "Urgent": 3}
TICKET_NUMBER = re.compile(r"SP-\d{6}")


def chromium_missing_reason() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is not installed (`make test` installs Debian's chromium package)"
    return None


def htmx_missing_reason() -> str | None:
    if not HTMX_FILE.exists():
        return f"{HTMX_FILE} is missing (`make setup` copies it from node_modules/htmx.org)"
    return None


def axe_missing_reason() -> str | None:
    if not AXE_FILE.exists():
        return f"{AXE_FILE} is missing (`make setup` installs the npm packages)"
    return None


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)


def artifact_path(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


class LiveServer:
    """The test app behind a real HTTP port, served from a daemon thread.

    Exceptions that escape the app (TESTING propagates them) are kept in `errors`, so a test can
    fail on a server-side crash instead of only seeing a browser waiting for a 500 page."""

    def __init__(self, app, host: str = "127.0.0.1"):
        self.app = app
        self.errors: list[BaseException] = []
        self._server = make_server(host, 0, self._wsgi, threaded=True)
        self.url = f"http://{host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="smilepass-live-server", daemon=True)

    def _wsgi(self, environ, start_response):
        try:
            return self.app(environ, start_response)
        except BaseException as exc:
            self.errors.append(exc)
            raise

    def start(self) -> "LiveServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


class PageProblems:
    """Uncaught script errors and Content-Security-Policy refusals seen by one page."""

    def __init__(self, page):
        self.items: list[str] = []
        page.on("pageerror", lambda error: self.items.append(f"script error: {error}"))
        page.on("console", self._console)

    def _console(self, message):
        if message.type == "error" and "Content Security Policy" in message.text:
            self.items.append(f"CSP: {message.text}")


def write_screenshot_png(path: Path, width: int = 640, height: int = 400) -> Path:
    """A plausible screenshot of a scan viewer with an error dialog, drawn with Pillow."""
    image = Image.new("RGB", (width, height), (236, 240, 244))
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 0, width, 36], fill=(15, 122, 138))
    draw.text((12, 12), "Scan viewer - upper arch", fill=(255, 255, 255))
    for i in range(7):
        x = 90 + i * 66
        draw.ellipse([x, 150, x + 54, 230], fill=(250, 250, 245), outline=(160, 160, 150), width=2)
    draw.rectangle([160, 250, 480, 340], fill=(253, 236, 234), outline=(180, 35, 24), width=2)
    draw.text((176, 268), "Upload failed: mesh is not watertight", fill=(122, 26, 18))
    draw.text((176, 292), "Error code STL-0417", fill=(122, 26, 18))
    image.save(path, "PNG")
    return path


def seed_tickets(requester, specs) -> list:
    """Tickets made directly through the ticket rules, oldest first: (title, priority, category)."""
    with db.database.connection_context():
        return [tickets.create_ticket(requester, title, f"Seeded: {title}.", priority, category)
                for title, priority, category in specs]


def read_db(fn):
    with db.database.connection_context():
        return fn()


def sign_in(page, email: str, password: str) -> None:
    """Through the sign-in form; pages come from contexts whose base_url is the live server."""
    page.goto("/auth/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/support/"))


def sign_out(page) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/auth/login"))


def set_marker(page) -> None:
    """Mark the current document; a full page load would lose the mark."""
    page.evaluate("() => { window.__marker = 1; }")


def marker(page):
    return page.evaluate("() => window.__marker")


def sort_link(page, label: str):
    """A column's sort control: a button in the header cell (a GET form without JavaScript)."""
    return page.locator("#ticket-table thead").get_by_role("button", name=label, exact=True)


def sorted_header(page):
    """The one column header that says how the table is sorted."""
    return page.locator("#ticket-table thead th[aria-sort]")


def table_titles(page) -> list[str]:
    """Ticket titles in table order, without their SP- numbers."""
    cells = page.locator("#ticket-table tbody td.title-cell a").all_inner_texts()
    return [TICKET_NUMBER.sub("", text, count=1).strip() for text in cells]


def send_reply(page, text: str, internal: bool = False) -> None:
    form = page.locator("#reply")
    form.get_by_label("Reply", exact=True).fill(text)
    if internal:
        form.get_by_label("Internal note (staff only)").check()
    form.get_by_role("button", name="Send reply").click()


def image_loaded(page, image_locator) -> None:
    """Wait until the image has really been fetched and decoded (lazy images included)."""
    image_locator.scroll_into_view_if_needed()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=image_locator.element_handle(), timeout=TIMEOUT_MS
    )


def table_priorities(page) -> list[str]:
    return [text.strip() for text in page.locator("#ticket-table tbody tr td:nth-child(1)").all_inner_texts()]


# Runs in the page: what makes a phone user scroll sideways, what sticks out of the screen, and which
# controls are smaller than a fingertip. Links inside running text are exempt from the size (WCAG 2.5.5
# "inline"); a checkbox or radio counts together with its label; anything inside a container that scrolls
# sideways on its own (a wide table) may extend past the screen.
LAYOUT_PROBLEMS_JS = """
(minimum) => {
  const problems = [];
  const root = document.documentElement;
  const viewport = window.innerWidth;
  if (root.scrollWidth > viewport) problems.push(`the page is ${root.scrollWidth} px wide`);
  const describe = (el) => {
    const text = (el.innerText || el.value || el.getAttribute('aria-label') || el.name || '').trim().slice(0, 40);
    const names = typeof el.className === 'string' ? el.className.trim() : '';
    const classes = names ? '.' + names.split(/\\s+/).join('.') : '';
    return `<${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}${classes}> "${text}"`;
  };
  const shown = (el) => el.checkVisibility({visibilityProperty: true, opacityProperty: true});
  const scrollsOnItsOwn = (el) => {
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
      const overflow = getComputedStyle(up).overflowX;
      if (overflow === 'auto' || overflow === 'scroll') return true;
    }
    return false;
  };
  // Visually hidden on purpose: a 1 px box (a skip link until focused) or one moved off the left edge (a
  // honeypot field for bots).
  const tiny = (box) => (box.width <= 1 && box.height <= 1) || box.right <= 0;
  for (const el of document.body.querySelectorAll('*')) {
    if (!shown(el) || el.closest('svg')) continue;  // an SVG clips what lies outside its own box
    const box = el.getBoundingClientRect();
    if (tiny(box) || box.width === 0) continue;
    if ((box.right > viewport + 1 || box.left < -1) && !scrollsOnItsOwn(el)) {
      problems.push(`${describe(el)} sticks out (${Math.round(box.left)}..${Math.round(box.right)} px)`);
    }
  }
  const controls = 'a[href], button, input:not([type=hidden]), select, textarea, summary, [role=button]';
  const inRunningText = (el) => {
    if (getComputedStyle(el).display !== 'inline') return false;
    const block = el.parentElement.closest('p, li, td, dd, label, small, span, div, th, figcaption');
    return block && block.innerText.trim().length > el.innerText.trim().length + 2;
  };
  for (const el of document.body.querySelectorAll(controls)) {
    if (!shown(el)) continue;
    let box = el.getBoundingClientRect();
    if (tiny(box)) continue;
    if (el.tagName === 'A' && inRunningText(el)) continue;
    if ((el.type === 'checkbox' || el.type === 'radio') && el.labels && el.labels.length) {
      box = el.labels[0].getBoundingClientRect();
    }
    if (box.width < minimum - 0.5 || box.height < minimum - 0.5) {
      problems.push(`${describe(el)} is ${Math.round(box.width)} × ${Math.round(box.height)} px`);
    }
  }
  return problems;
}
"""

AXE_RUN_JS = """
async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations
    .filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => `${v.id} (${v.impact}): ${v.help}; ` + v.nodes.slice(0, 3)
      .map(n => n.target.join(' ') + ' ' + (n.failureSummary || '').replace(/\\s+/g, ' ')).join(' | '));
}
"""


def layout_problems(page) -> list[str]:
    return page.evaluate(LAYOUT_PROBLEMS_JS, TAP_TARGET_PX)


def axe_violations(page) -> list[str]:
    """axe-core's serious and critical findings; the context injected AXE_FILE as an init script
    (which the page's Content-Security-Policy does not apply to)."""
    return page.evaluate(AXE_RUN_JS)
