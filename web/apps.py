from django.apps import AppConfig


class WebConfig(AppConfig):
    """The web front end's own pages: the officer map with trace replay, and the owner pages."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "web"
