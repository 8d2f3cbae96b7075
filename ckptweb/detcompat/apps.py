from django.apps import AppConfig


class DetCompatConfig(AppConfig):
    """The Determined compatibility layer (``/det-compat/``)."""

    name = "ckptweb.detcompat"
    label = "detcompat"
    verbose_name = "Determined compatibility"
    default_auto_field = "django.db.models.BigAutoField"
