"""API tokens in the admin: read and delete only (a key is made by the service, shown once).
DRF's plaintext ``TokenProxy`` admin is gone: its tokens were migrated into ``ApiToken``."""

from django.contrib import admin
from rest_framework.authtoken.models import TokenProxy

from ckptweb.accounts.models import ApiToken

admin.site.unregister(TokenProxy)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "created", "expiry", "last_used_at")
    list_select_related = ("user",)
    search_fields = ("name", "user__username")
    fields = ("name", "user", "created", "expiry", "last_used_at")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
