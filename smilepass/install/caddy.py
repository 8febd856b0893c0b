"""The Caddyfile of a production install: Caddy terminates HTTPS in front of gunicorn.

A public host name gets a Let's Encrypt certificate (Caddy's automatic ACME); a name only the clinic's
LAN knows (an IP address, a name without a dot, .lan, .local, ...) gets one from Caddy's own CA
(`tls internal`), whose root the clinic installs on its computers once.

A body announced larger than the app's MAX_CONTENT_LENGTH is refused by Caddy itself with a 413 notice in
each of the app's languages (from the app's catalogues); HSTS, gzip for text and the proxy headers the app's
ProxyFix reads (SMILEPASS_TRUSTED_PROXIES=1) complete it.

The installer runs `python -m smilepass.install.caddy --host H --upstream U --max-body-bytes N` and writes
what it prints to /etc/caddy/Caddyfile. Nothing here needs the app, its database or a request."""
import argparse
import html
import ipaddress
import re
import sys
from pathlib import Path

from babel.support import Translations

from ..i18n import LANGUAGES

PUBLIC = "public"
INTERNAL = "internal"
TLS_CHOICES = ("auto", INTERNAL, PUBLIC)
# Names no public certificate authority will certify: reserved for LANs and tests (RFC 6762, 8375,
# 6761, ICANN's .internal) or in common use inside networks and never delegated (.lan, .home, .corp).
INTERNAL_SUFFIXES = (".local", ".lan", ".internal", ".home.arpa", ".test", ".localhost", ".home", ".corp",
                     ".intranet", ".private")
# RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
HOST_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
# host:port or unix/path: what reverse_proxy accepts as one upstream, without spaces or braces.
UPSTREAM = re.compile(r"^(unix/[\w./-]+|[\w.-]+:\d{1,5}|\[[0-9a-fA-F:.]+\]:\d{1,5})$")
MB = 1024 * 1024
TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"
# One year, as browsers' preload lists expect.
HSTS_MAX_AGE = 31536000
# Compressed: text and the app's scripts. Not text/event-stream (a stream must reach the browser event
# by event) and not uploads' images and meshes (already compressed or served as files).
COMPRESSIBLE = ("text/html*", "text/css*", "text/plain*", "text/csv*", "application/javascript*",
                "text/javascript*", "application/json*", "image/svg+xml*")


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def normalise_host(host: str) -> str:
    """The host name in lower case without a trailing dot; ValueError when it is neither a host name
    nor an IP address (it goes into a config file verbatim, so nothing else may pass)."""
    name = (host or "").strip().lower().rstrip(".")
    if _ip(name) is not None:
        return name.strip("[]")
    if not HOST_NAME.match(name):
        raise ValueError(f"not a host name or IP address: {host!r}")
    return name


def tls_mode(host: str) -> str:
    """"public" when a public CA (Let's Encrypt) can certify the name, "internal" when only Caddy's own
    CA can: IP addresses, names without a dot and the LAN/test suffixes."""
    name = normalise_host(host)
    if _ip(name) is not None or "." not in name or name == "localhost":
        return INTERNAL
    if name.endswith(INTERNAL_SUFFIXES):
        return INTERNAL
    return PUBLIC


def too_large_notice(max_body_bytes: int) -> str:
    """What Caddy answers (413) to a body over the limit: the notice in every language of the app, as a
    fragment that reads as a page and that htmx puts into the page's message area (#flash) like the app's
    own errors. Caddy cannot know the user's language, so it says it in each."""
    size = max(1, round(max_body_bytes / MB))
    notices = []
    for language in LANGUAGES:
        translations = Translations.load(str(TRANSLATIONS), [language])
        text = translations.gettext("The upload is too large: at most %(size)s MB can be sent at once. Choose a "
                                    "smaller file and send it again.") % {"size": size}
        notices.append(f'<p class="notice notice-error" role="alert" lang="{language}">{html.escape(text)}</p>')
    return "".join(notices)


def _quoted(text: str) -> str:
    """A Caddyfile string token. Braces would be read as placeholders and a backslash as an escape, so
    none may be in it; quotes are escaped."""
    if any(c in text for c in "{}\\\n"):
        raise ValueError(f"cannot quote for a Caddyfile: {text!r}")
    return '"' + text.replace('"', '\\"') + '"'


def _site_address(host: str, https_port: int | None) -> str:
    address = f"[{host}]" if ":" in host else host  # an IPv6 address
    if https_port and https_port != 443:
        address += f":{https_port}"
    return address


def render_caddyfile(host: str, *, upstream: str = "127.0.0.1:8000", max_body_bytes: int, tls: str = "auto",
                     http_port: int | None = None, https_port: int | None = None, data_dir: str | None = None,
                     admin: str = "localhost:2019") -> str:
    """The whole Caddyfile for serving SmilePass at https://host.

    max_body_bytes: the app's MAX_CONTENT_LENGTH. A body announced larger (Content-Length) is refused by
      Caddy itself with a 413 notice, before any of it reaches gunicorn; a body without a length (chunked)
      is cut off at that size.
    tls: "auto" decides by the name (tls_mode), "internal" or "public" force it.
    http_port/https_port: other ports than 80/443 (tests run unprivileged on high ports).
    data_dir: where Caddy keeps certificates and its CA (default: its own data directory).
    admin: the admin endpoint's address, only ever on localhost ("off" turns it off; `systemctl reload
    caddy` needs it)."""
    name = normalise_host(host)
    if tls not in TLS_CHOICES:
        raise ValueError(f"tls must be one of {', '.join(TLS_CHOICES)}, not {tls!r}")
    mode = tls_mode(name) if tls == "auto" else tls
    if not UPSTREAM.match(upstream):
        raise ValueError(f"not an upstream address (host:port or unix/path): {upstream!r}")
    if int(max_body_bytes) <= 0:
        raise ValueError("max_body_bytes must be positive")
    if admin != "off" and not re.match(r"^(localhost|127\.0\.0\.1|\[::1\]):\d{1,5}$", admin):
        raise ValueError(f"the admin endpoint listens on localhost only, not {admin!r}")
    if data_dir is not None and re.search(r"[\s{}\"]", data_dir):
        raise ValueError(f"data_dir may not hold spaces, braces or quotes: {data_dir!r}")

    hsts = f"max-age={HSTS_MAX_AGE}"
    if mode == PUBLIC:
        # Sub-names of a public portal name are the clinic's own; a LAN name's may not be HTTPS.
        hsts += "; includeSubDomains"

    lines = [
        "# Generated by SmilePass (smilepass/install/caddy.py). Do not edit: `make install` and",
        "# `make upgrade` overwrite this file. Change the settings in /etc/smilepass/smilepass.env instead.",
        "{",
        f"\tadmin {admin}",
        # The root of the internal CA is installed on the clinic's computers by hand, never into this
        # server's trust store behind the admin's back.
        "\tskip_install_trust",
    ]
    if http_port:
        lines.append(f"\thttp_port {int(http_port)}")
    if https_port:
        lines.append(f"\thttps_port {int(https_port)}")
    if data_dir:
        lines.append(f"\tstorage file_system {data_dir}")
    lines += [
        "}",
        "",
        f"{_site_address(name, https_port)} {{",
    ]
    if mode == INTERNAL:
        lines.append("\ttls internal")
    lines += [
        "\theader {",
        # Deferred: replaces the app's own header instead of adding a second one.
        f'\t\tStrict-Transport-Security "{hsts}"',
        "\t\t-Server",
        "\t\tdefer",
        "\t}",
        # Refused here, from the Content-Length alone. Left to the app, its 413 races the upload: gunicorn
        # answers and closes while Caddy still sends the body, and the user sees a bare 502.
        f"\t@too_large expression `{{http.request.header.Content-Length}} != \"\" && "
        f"int({{http.request.header.Content-Length}}) > {int(max_body_bytes)}`",
        "\thandle @too_large {",
        '\t\theader Content-Type "text/html; charset=utf-8"',
        '\t\theader HX-Retarget "#flash"',
        "\t\theader HX-Reswap innerHTML",
        f"\t\trespond {_quoted(too_large_notice(int(max_body_bytes)))} 413",
        "\t}",
        "\trequest_body {",
        f"\t\tmax_size {int(max_body_bytes)}",
        "\t}",
        "\tencode gzip {",
        "\t\tmatch {",
        # One line per type: the values of one header field are alternatives.
        *(f"\t\t\theader Content-Type {content_type}" for content_type in COMPRESSIBLE),
        "\t\t}",
        "\t}",
        # The live ticket pages' event streams (docs/live.md): every event goes out at once, never held in a
        # buffer. Caddy would flush an event stream by itself; this says so for all of /live/ in any case.
        f"\treverse_proxy /live/* {upstream} {{",
        "\t\tflush_interval -1",
        "\t}",
        # Caddy sets X-Forwarded-For/-Proto/-Host from the connection, which the app's ProxyFix trusts
        # (SMILEPASS_TRUSTED_PROXIES=1).
        f"\treverse_proxy {upstream}",
        "}",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smilepass.install.caddy",
                                     description="Print the Caddyfile that serves SmilePass at https://HOST.")
    parser.add_argument("--host", required=True, help="the portal's host name or IP address")
    parser.add_argument("--upstream", default="127.0.0.1:8000", help="gunicorn's address (default %(default)s)")
    parser.add_argument("--max-body-bytes", type=int, required=True,
                        help="largest request body, the app's MAX_CONTENT_LENGTH")
    parser.add_argument("--tls", choices=TLS_CHOICES, default="auto",
                        help="auto: Let's Encrypt for a public name, Caddy's own CA for a LAN name")
    parser.add_argument("--http-port", type=int)
    parser.add_argument("--https-port", type=int)
    parser.add_argument("--data-dir")
    parser.add_argument("--admin", default="localhost:2019", help='admin endpoint on localhost, or "off"')
    args = parser.parse_args(argv)
    try:
        text = render_caddyfile(args.host, upstream=args.upstream, max_body_bytes=args.max_body_bytes, tls=args.tls,
                                http_port=args.http_port, https_port=args.https_port, data_dir=args.data_dir,
                                admin=args.admin)
    except ValueError as exc:
        parser.error(str(exc))
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
