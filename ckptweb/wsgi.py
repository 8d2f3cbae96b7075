"""WSGI entry point (gunicorn ckptweb.wsgi).

Serving processes also start the in-process GC sweep timer when no broker is configured
(see ``experiments/gc/sweep.py``); nothing else imports this module.
"""

import os
from importlib import import_module

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ckptweb.settings")
application = get_wsgi_application()

# Imported once the apps are loaded (above).
import_module("experiments.gc.sweep").start_timer()
