"""Admin: mirror device keys (created, listed, revoked; the key is shown once) and shortlists (read-only)."""
from django.contrib import admin, messages
from django.utils.html import format_html
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from .models import MirrorKey, Shortlist, ShortlistItem

# The library's generic keys open nothing in Stockmatch; only mirror device keys do.
if admin.site.is_registered(APIKey):
    admin.site.unregister(APIKey)


@admin.register(MirrorKey)
class MirrorKeyAdmin(APIKeyModelAdmin):
    list_display = ("prefix", "name", "location", "created", "expiry_date", "_has_expired", "revoked")
    list_filter = ("revoked", "created")
    search_fields = ("name", "prefix", "location")
    fields = ("name", "location", "expiry_date", "revoked", "prefix")
    actions = ["revoke"]

    @admin.action(permissions=["change"], description="Revoke the selected keys (their mirrors stop at once)")
    def revoke(self, request, queryset) -> None:
        from .services import mirror_keys_revoke

        count = mirror_keys_revoke(key_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} key(s) revoked.", messages.SUCCESS)

    def save_model(self, request, obj, form=None, change=False) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            messages.info(request, format_html(
                "Open the kiosk once at <code>{}</code> on the mirror: the page keeps the key.",
                "/mirror/?key=<the key>",
            ))


class ShortlistItemInline(admin.TabularInline):
    model = ShortlistItem
    extra = 0
    fields = ("product", "size")
    readonly_fields = ("product", "size")
    can_delete = False


@admin.register(Shortlist)
class ShortlistAdmin(admin.ModelAdmin):
    list_display = ("code", "status", "device", "created_at", "expires_at")
    list_filter = ("status",)
    readonly_fields = ("code", "device", "status", "created_at", "expires_at", "handled_at")
    inlines = [ShortlistItemInline]

    def has_add_permission(self, request) -> bool:
        return False
