"""The few htmx helpers every view uses: is this an htmx request, fragment or page, redirects
that work for both."""
from flask import make_response, redirect, render_template, request
from jinja2_fragments.flask import render_block, render_blocks

# htmx stops polling when a response carries this status.
STOP_POLLING = 286


def is_htmx() -> bool:
    return bool(getattr(request, "htmx", False))


def page_or_block(template: str, block: str, status: int = 200, **context):
    """A full page for a normal request, only the named block of the same template for htmx."""
    if is_htmx():
        body = render_block(template, block, **context)
    else:
        body = render_template(template, **context)
    return make_response(body, status)


def blocks(template: str, names: list[str], status: int = 200, **context):
    """Several blocks of one template in one response (the extra ones carry hx-swap-oob)."""
    return make_response(render_blocks(template, names, **context), status)


def hx_redirect(url: str, status: int = 200):
    """Send the whole browser to url: htmx follows HX-Redirect instead of swapping a page into a
    fragment; without htmx, a plain 303."""
    if is_htmx():
        response = make_response("", status)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url, 303)


def see_other(url: str):
    """After a successful POST without htmx: 303, so a reload does not post again."""
    return redirect(url, 303)


def add_vary(response):
    """Caches must key on HX-Request, since one URL answers with a page or a fragment."""
    response.vary.add("HX-Request")
    return response
