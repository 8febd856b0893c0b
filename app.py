"""WSGI entry point: `gunicorn app:app`, `flask --app app ...`."""
from smilepass import create_app

app = create_app()
