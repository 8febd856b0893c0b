"""A test whose real part (Chromium, htmx, Redis, pg_restore ...) is missing skips on a developer's
machine and fails under CI, so a CI run cannot report green without having run it."""
import pytest

from . import browser_support
from .parts import import_part, part_missing, require

MISSING_MODULE = "smilepass_no_such_module"


@pytest.fixture
def local(monkeypatch):
    monkeypatch.delenv("CI", raising=False)


@pytest.fixture
def ci(monkeypatch):
    monkeypatch.setenv("CI", "true")


def test_a_missing_part_skips_locally_with_its_reason(local):
    with pytest.raises(pytest.skip.Exception, match="redis-server is not installed"):
        part_missing("redis-server is not installed")


@pytest.mark.parametrize("value", ["true", "1", "yes"])
def test_a_missing_part_fails_under_ci(monkeypatch, value):
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="redis-server is not installed.*CI is set"):
        part_missing("redis-server is not installed")


@pytest.mark.parametrize("value", ["", "0", "false", "False"])
def test_ci_set_to_false_counts_as_local(monkeypatch, value):
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.skip.Exception):
        part_missing("redis-server is not installed")


def test_a_part_that_is_there_lets_the_test_run(ci):
    require(None)  # no reason: nothing raised, the test goes on


def test_missing_chromium_fails_browser_tests_under_ci(ci, monkeypatch, tmp_path):
    monkeypatch.setattr(browser_support, "CHROMIUM", tmp_path / "chromium")
    with pytest.raises(pytest.fail.Exception, match="chromium is not installed"):
        require(browser_support.chromium_missing_reason())


def test_missing_htmx_fails_browser_tests_under_ci(ci, monkeypatch, tmp_path):
    monkeypatch.setattr(browser_support, "HTMX_FILE", tmp_path / "htmx.min.js")
    with pytest.raises(pytest.fail.Exception, match="htmx.min.js is missing"):
        require(browser_support.htmx_missing_reason())


def test_browser_parts_that_are_there_give_no_reason(monkeypatch, tmp_path):
    for name in ("chromium", "htmx.min.js"):
        (tmp_path / name).write_bytes(b"")
    monkeypatch.setattr(browser_support, "CHROMIUM", tmp_path / "chromium")
    monkeypatch.setattr(browser_support, "HTMX_FILE", tmp_path / "htmx.min.js")
    assert browser_support.chromium_missing_reason() is None
    assert browser_support.htmx_missing_reason() is None


def test_a_missing_module_skips_its_test_module_locally(local):
    with pytest.raises(pytest.skip.Exception, match=f"{MISSING_MODULE} is not installed"):
        import_part(MISSING_MODULE, "make setup installs it")


def test_a_missing_module_fails_collection_under_ci(ci):
    with pytest.raises(ModuleNotFoundError):
        import_part(MISSING_MODULE, "make setup installs it")


def test_an_installed_module_is_imported(ci):
    assert import_part("playwright.sync_api", "make setup installs it").expect is not None
