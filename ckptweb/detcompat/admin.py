"""Admin for Determined tokens: see who is logged in with ``det``, revoke a token."""

from django.contrib import admin

from ckptweb.detcompat.models import DetToken


@admin.register(DetToken)
class DetTokenAdmin(admin.ModelAdmin):
    """Read-only rows (only a digest is stored); deleting one revokes that token."""

    list_display = ("id", "user", "created_at", "expires_at")
    list_select_related = ("user",)
    search_fields = ("user__username",)
    readonly_fields = ("user", "created_at", "expires_at")
    exclude = ("key_hash",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
