from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "ckptweb.accounts"
    label = "accounts"
    verbose_name = "API tokens"
    default_auto_field = "django.db.models.BigAutoField"
