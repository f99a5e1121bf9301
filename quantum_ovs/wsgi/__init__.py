"""WSGI entry points for application servers (uWSGI, mod_wsgi, gunicorn)."""
