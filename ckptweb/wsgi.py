"""WSGI entry point (gunicorn ckptweb.wsgi).

Serving processes also start the in-process GC sweep timer when no broker is configured
(see ``experiments/sweeper.py``); nothing else imports this module.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ckptweb.settings")
application = get_wsgi_application()

from experiments.gc import sweeper  # noqa: E402 - needs the apps loaded above

sweeper.start()
