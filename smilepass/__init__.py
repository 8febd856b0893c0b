"""SmilePass: a self-hosted support and case portal for clear-aligner clinics.

The web app (`create_app()`, in webapp.py) is loaded on first use, not when the package is imported:
the scan pipeline (`python -m smilepass.mesh`, smilepass.mesh) needs none of Flask and the blueprints,
which took about 1 s and 110 MB of a command-line repair (measured 2026-12-06, `import smilepass.mesh`:
137 MB RSS before, 26 MB for numpy alone)."""

_WEB_APP = frozenset(
    {"create_app", "trust_proxies", "check_storage_settings", "default_instance_path", "BLUEPRINTS", "ROOT"}
)


def __getattr__(name: str):
    if name in _WEB_APP:
        from . import webapp  # noqa: PLC0415 - deliberately late, see the docstring

        return getattr(webapp, name)
    raise AttributeError(f"module 'smilepass' has no attribute {name!r}")
