"""Admin for intake: read-mostly views of snapshots and arrivals, with thumbnails; actions call services."""
from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from . import services
from .models import Arrival, Snapshot, SnapshotStatus


def _thumb(snapshot: Snapshot | None, kind: str, size: int = 64) -> str:
    if snapshot is None or not getattr(snapshot, kind):
        return "—"
    url = reverse("intake:image", kwargs={"snapshot_id": snapshot.pk, "kind": kind})
    return format_html('<img src="{}" alt="" style="height:{}px;width:auto;border-radius:4px">', url, size)


class ArrivalInline(admin.TabularInline):
    model = Arrival
    extra = 0
    can_delete = False
    fields = ("created_at", "variant", "quantity", "bin_location", "user", "undone_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Snapshot | None = None) -> bool:
        return False


@admin.register(Snapshot)
class SnapshotAdmin(admin.ModelAdmin):
    list_display = ("id", "photo", "cut_out", "status", "uploaded_by", "top_candidate", "product", "attempts",
                    "created_at")
    list_filter = ("status", "photo_role", "created_at")
    search_fields = ("id", "idempotency_key", "product__sku", "uploaded_by__username")
    date_hierarchy = "created_at"
    list_select_related = ("uploaded_by", "product")
    inlines = [ArrivalInline]
    actions = ["retry_selected"]
    fields = ("photo_large", "cut_out_large", "status", "uploaded_by", "photo_role", "group_head", "product",
              "error", "attempts", "hints", "candidates", "decision", "timings", "model_version", "events",
              "idempotency_key", "original", "original_format", "original_bytes", "original_sha256", "width",
              "height", "processing_started_at", "processed_at", "decided_at", "created_at", "updated_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Snapshot | None = None) -> bool:
        return False

    @admin.display(description="Photo")
    def photo(self, obj: Snapshot) -> str:
        return _thumb(obj, "preview")

    @admin.display(description="Cut-out")
    def cut_out(self, obj: Snapshot) -> str:
        return _thumb(obj, "cutout")

    @admin.display(description="Photo")
    def photo_large(self, obj: Snapshot) -> str:
        return _thumb(obj, "preview", 320)

    @admin.display(description="Cut-out")
    def cut_out_large(self, obj: Snapshot) -> str:
        return _thumb(obj, "cutout", 320)

    @admin.display(description="Best match")
    def top_candidate(self, obj: Snapshot) -> str:
        top = (obj.candidates or [None])[0]
        return f"{top.get('sku')} ({top.get('score', 0):.2f})" if top else "—"

    @admin.action(description="Retry the selected failed or stuck snapshots", permissions=["change"])
    def retry_selected(self, request: HttpRequest, queryset: QuerySet[Snapshot]) -> None:
        done = 0
        for snapshot in queryset.filter(group_head__isnull=True, status__in=[SnapshotStatus.FAILED,
                                                                              SnapshotStatus.RECEIVED,
                                                                              SnapshotStatus.PROCESSING]):
            try:
                services.snapshot_retry(snapshot=snapshot, user=request.user)
                done += 1
            except services.IntakeError as exc:
                self.message_user(request, f"Snapshot {snapshot.pk}: {exc.message}", messages.WARNING)
        self.message_user(request, f"Queued {done} snapshot(s) again.", messages.SUCCESS)


@admin.register(Arrival)
class ArrivalAdmin(admin.ModelAdmin):
    list_display = ("id", "created_at", "photo", "variant", "quantity", "bin_location", "user", "undone_at")
    list_filter = ("created_at", ("undone_at", admin.EmptyFieldListFilter))
    search_fields = ("variant__product__sku", "bin_location", "user__username")
    date_hierarchy = "created_at"
    list_select_related = ("variant__product", "user", "snapshot")
    fields = ("variant", "quantity", "bin_location", "user", "snapshot", "created_at", "undone_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # stock arrives through intake; corrections are the catalogue's stock tools

    def has_delete_permission(self, request: HttpRequest, obj: Arrival | None = None) -> bool:
        return False

    @admin.display(description="Photo")
    def photo(self, obj: Arrival) -> str:
        return _thumb(obj.snapshot, "preview", 48)
from .review import admin as review_admin  # noqa: E402,F401 - the review queue (its own module)
