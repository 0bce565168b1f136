import os

from django.conf import settings
from django.core.asgi import get_asgi_application

from ebike_registry.keys import keys_refuse_public

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ebike_registry.settings")

application = get_asgi_application()

# No serving on a public or weak secret key (ebike_registry.keys) unless DEBUG is on.
keys_refuse_public(settings)
