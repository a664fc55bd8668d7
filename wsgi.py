"""The WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi …`."""

from pledges import create_app

app = create_app()
