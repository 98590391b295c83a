"""WSGI entry point for gunicorn and `flask --app wsgi`."""
from ticketing import create_app

app = create_app()
