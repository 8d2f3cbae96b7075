from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "ckptweb.accounts"
    label = "accounts"
    verbose_name = "API tokens"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from ckptweb.accounts import schema  # noqa: F401  (registers the schema extensions)
