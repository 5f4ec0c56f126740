"""WSGI entry point."""

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

if settings.LOOKALIKE_WARM_START:
    # Loading the model and creating its kernels takes seconds: do it before the first search.
    from recommender.embedding import warm_start

    warm_start()
