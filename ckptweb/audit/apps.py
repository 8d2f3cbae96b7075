from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "ckptweb.audit"
    label = "audit"
    verbose_name = "Audit log"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in, user_login_failed

        from ckptweb.audit import record

        user_logged_in.connect(record.signed_in, dispatch_uid="audit-signed-in")
        user_login_failed.connect(record.sign_in_failed, dispatch_uid="audit-sign-in-failed")
