import gc
import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from ebike_registry.keys import keys_refuse_public

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ebike_registry.settings")

application = get_wsgi_application()

# No serving on a public or weak secret key (ebike_registry.keys) unless DEBUG is on.
keys_refuse_public(settings)


def _settle() -> None:
    """Load the URL configuration and the views now, then take everything loaded so far out of the
    cyclic collector's walks (gc.freeze): it lives as long as the worker, and every full collection
    during a request otherwise walked all of Django, DRF and GeoDjango."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports every view module
    gc.collect()
    gc.freeze()


_settle()
