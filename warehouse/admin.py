"""Admin for intake: read-mostly views of snapshots and arrivals, with thumbnails; actions call services."""
from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from . import services
from .models import Arrival, Snapshot, SnapshotStatus


def _thumb(snapshot: Snapshot | None, kind: str, size: int = 64) -> str:
    if snapshot is None or not getattr(snapshot, kind):
        return "—"
    url = reverse("admin:warehouse_reviewitem_thumb", args=[snapshot.pk, kind, size])  # small cached rendition
    return format_html('<img src="{}" alt="" loading="lazy" style="height:{}px;width:auto;border-radius:4px">',
                       url, size)


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
    fieldsets = (
        (None, {"fields": ("photo_large", "cut_out_large", "status", "uploaded_by", "product", "decision_view",
                           "candidates_view", "review_view", "error")}),
        ("Details", {"classes": ["collapse"], "fields": (
            "events_view", "timings_view", "hints", "photo_role", "group_head", "attempts", "model_version",
            "idempotency_key", "original", "original_format", "original_bytes", "original_sha256", "width", "height",
            "processing_started_at", "processed_at", "decided_at", "created_at", "updated_at")}),
    )
    readonly_fields = [name for _, options in fieldsets for name in options["fields"]]

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

    @admin.display(description="Matcher's verdict")
    def decision_view(self, obj: Snapshot) -> str:
        decision = obj.decision or {}
        if not decision:
            return "—"
        verdict = "in catalogue" if decision.get("in_catalogue") else "probably not in catalogue"
        if decision.get("alpha"):  # the threshold is on the open-set score, not on the best score itself
            return format_html(
                "{}: best score {}, open-set score {} (threshold {}), margin {} (needed {})", verdict,
                _num(decision.get("score")), _num(decision.get("open_set_score")), _num(decision.get("threshold")),
                _num(decision.get("margin")), _num(decision.get("margin_threshold")),
            )
        return format_html("{}: best score {} (threshold {}, margin {})", verdict, _num(decision.get("score")),
                           _num(decision.get("threshold")), _num(decision.get("margin")))

    @admin.display(description="Candidates")
    def candidates_view(self, obj: Snapshot) -> str:
        from catalog.thumbnails import thumbnail_url

        from .review.selectors import review_cards

        (card,) = review_cards([obj], candidates=10)
        if not card["candidates"]:
            return "—"
        cells = format_html_join("", (
            '<li style="display:inline-block;width:110px;margin:0 6px 6px 0;vertical-align:top;font-size:11px;{}">'
            '<img src="{}" alt="" loading="lazy" '
            'style="width:100px;height:100px;object-fit:contain;background:#f4f4f4">'
            '<br><a href="{}">{}</a><br>{}<br>score <strong>{}</strong> · stock {}</li>'), (
            ("outline:2px solid #16a34a" if row["is_choice"] else "",
             thumbnail_url(source=row["image"].file, size=96, key=row["image"].sha256) if row["image"] else "",
             reverse("admin:catalog_product_change", args=[row["product_id"]]), row["sku"], row["name"],
             _num(row["score"]), row["stock"]) for row in card["candidates"]))
        return format_html('<ol style="padding:0;margin:0;list-style:none">{}</ol>', cells)

    @admin.display(description="Review")
    def review_view(self, obj: Snapshot) -> str:
        pair = getattr(obj, "labelled_pair", None)
        if pair is not None:
            return format_html("{} by {} on {} ({})", pair.get_decision_display(), pair.decided_by,
                               pair.decided_at.strftime("%Y-%m-%d %H:%M"), pair.product or "no product")
        return "not reviewed"

    @admin.display(description="Status changes")
    def events_view(self, obj: Snapshot) -> str:
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{} → {}</td><td>{}</td></tr>", (
            ((e.get("at") or "")[:19].replace("T", " "), e.get("action", ""), e.get("from", ""), e.get("to", ""),
             ", ".join(f"{k}={v}" for k, v in e.items() if k not in {"at", "action", "from", "to"}))
            for e in obj.events or []))
        return format_html("<table><tbody>{}</tbody></table>", rows) if obj.events else "—"

    @admin.display(description="Timings (ms)")
    def timings_view(self, obj: Snapshot) -> str:
        return ", ".join(f"{key} {value}" for key, value in (obj.timings or {}).items()) or "—"

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


def _num(value) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) else "—"
