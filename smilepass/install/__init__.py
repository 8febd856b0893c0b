"""The production install's generated files: the text `make install` writes for the server's own
services (the Caddy reverse proxy in caddy.py), rendered from settings so that tests can check it
without installing anything."""
