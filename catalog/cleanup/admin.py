"""Cleanup screens in the catalogue admin: findings to accept or dismiss, scan runs with progress, and the
merge and relabel records with their undo. Actions call ``cleanup.services``; scans run in Celery."""
from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from catalog.admin import ProductImageAdmin, thumbnail
from catalog.models import ProductImage

from . import services
from .models import Finding, FindingState, MergeRecord, RecordState, RelabelRecord, ScanRun, ScanState
from .photos import PHOTO_FLAGS


class _Decides:
    def has_decide_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("catalog.decide_finding")


def _apply(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset, action, verb: str) -> None:
    done, failed = 0, []
    for obj in queryset:
        try:
            action(obj)
            done += 1
        except services.CleanupError as exc:
            failed.append(f"{obj}: {exc}")
    if done:
        modeladmin.message_user(request, f"{verb} {done}.", messages.SUCCESS)
    for reason in failed:
        modeladmin.message_user(request, reason, messages.ERROR)


def accept_plan(finding: Finding) -> str:
    """What accepting ``finding`` will do, in the manager's words."""
    details = finding.details or {}
    if finding.kind == "duplicate":
        keeper = details.get("keeper_sku") or "the product with the most photos and stock"
        others = [sku for sku in details.get("skus", []) if sku != keeper]
        return (f"merge {', '.join(others)} into {keeper}: photos, sizes (stock added up), looks and arrivals move;"
                f" the old SKUs keep resolving to {keeper}. Undo from Merge records.")
    if finding.kind == "wrong_label":
        return (f"set the {details.get('field')} of {details.get('sku')} from {details.get('current')} to"
                f" {details.get('suggested')}. Undo from Relabel records.")
    if finding.kind == "bad_photo":
        flags = ", ".join(details.get("flags", []))
        return (f"make the best other photo of {details.get('sku')} its primary instead of photo"
                f" #{details.get('image')} ({flags}).")
    return "queue the missing work again (embedding or processing)."


@admin.register(Finding)
class FindingAdmin(_Decides, admin.ModelAdmin):
    list_display = ("summary_text", "kind", "photos", "confidence_text", "state", "updated_at")
    list_filter = ("state", "kind")
    search_fields = ("summary", "key", "products__sku")
    ordering = ("state", "kind", "-confidence", "-id")
    list_per_page = 50
    actions = ["accept", "dismiss"]
    readonly_fields = ("kind", "key", "state", "summary", "confidence", "photos_large", "details", "fingerprint",
                       "decided_by", "decided_at", "created_at", "updated_at")
    fields = readonly_fields

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("products__images", "images__product")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="finding", ordering="summary")
    def summary_text(self, obj: Finding) -> str:
        return obj.summary or obj.key

    @admin.display(description="confidence", ordering="confidence")
    def confidence_text(self, obj: Finding) -> str:
        return "—" if obj.confidence is None else f"{obj.confidence:.2f}"

    def _images(self, obj: Finding) -> list[ProductImage]:
        images = list(obj.images.all())
        if obj.kind == "duplicate" or not images:
            images = [p.primary_image for p in obj.products.all()]
        return [i for i in images if i is not None][:6]

    @admin.display(description="photos")
    def photos(self, obj: Finding) -> str:
        return format_html_join("", "{}", ((thumbnail(image, 56),) for image in self._images(obj))) or "—"

    @admin.display(description="photos")
    def photos_large(self, obj: Finding) -> str:
        return format_html_join(
            "", '<figure style="display:inline-block;margin:0 8px 8px 0">{}<figcaption>{}</figcaption></figure>',
            ((thumbnail(image, 160), image.product.sku) for image in self._images(obj)),
        ) or "—"

    @admin.action(permissions=["decide"], description="Accept: merge, relabel, demote the photo or fix the gap")
    def accept(self, request: HttpRequest, queryset) -> TemplateResponse | None:
        pending = queryset.exclude(state=FindingState.ACCEPTED)
        if request.POST.get("confirmed") != "yes":  # merges and relabels change products: say what first
            return TemplateResponse(request, "admin/catalog/finding_accept_confirm.html", {
                **self.admin_site.each_context(request), "title": "Accept these findings?",
                "plans": [(finding, accept_plan(finding)) for finding in pending],
                "ids": [finding.pk for finding in queryset], "opts": self.model._meta,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            })
        _apply(self, request, pending, lambda f: services.finding_accept(finding=f, user=request.user), "Accepted")
        return None

    @admin.action(permissions=["decide"], description="Dismiss: not a mistake (stays dismissed until the data changes)")
    def dismiss(self, request: HttpRequest, queryset) -> None:
        _apply(self, request, queryset.exclude(state=FindingState.DISMISSED),
               lambda f: services.finding_dismiss(finding=f, user=request.user), "Dismissed")


@admin.register(ScanRun)
class ScanRunAdmin(_Decides, admin.ModelAdmin):
    list_display = ("__str__", "state", "step", "progress", "found", "created_at", "finished_at")
    list_filter = ("state", "incremental")
    readonly_fields = ("incremental", "product_ids", "state", "step", "done", "total", "counts", "error",
                       "requested_by", "created_at", "started_at", "finished_at")
    change_list_template = "admin/catalog/scanrun/change_list.html"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="progress")
    def progress(self, obj: ScanRun) -> str:
        share = 100 if obj.state == ScanState.DONE else (round(100 * obj.done / obj.total) if obj.total else 0)
        return format_html('<progress max="100" value="{}" title="{} / {}"></progress> {}/{}', share, obj.done,
                           obj.total, obj.done, obj.total)

    @admin.display(description="found")
    def found(self, obj: ScanRun) -> str:
        return ", ".join(f"{kind} {value.get('found', 0)}" for kind, value in (obj.counts or {}).items()
                         if isinstance(value, dict) and "found" in value) or "—"

    def get_urls(self):
        return [path("start/", self.admin_site.admin_view(self.start_view), name="catalog_scanrun_start"),
                *super().get_urls()]

    def start_view(self, request: HttpRequest) -> HttpResponseRedirect:
        if request.method != "POST" or not self.has_decide_permission(request):
            self.message_user(request, "Only catalogue managers can start a scan, with the button.", messages.ERROR)
            return redirect(reverse("admin:catalog_scanrun_changelist"))
        run = services.scan_run_start(user=request.user)
        self.message_user(request, f"Scan {run.pk} of the whole catalogue queued; progress shows here.",
                          messages.SUCCESS)
        return redirect(reverse("admin:catalog_scanrun_changelist"))

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_start_scan": self.has_decide_permission(request)}
        return super().changelist_view(request, extra_context)


class _RecordAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(MergeRecord)
class MergeRecordAdmin(_RecordAdmin):
    list_display = ("__str__", "keeper", "merged_skus", "state", "created_by", "created_at", "undone_at")
    list_filter = ("state",)
    search_fields = ("keeper__sku", "merged__sku")
    readonly_fields = ("keeper", "state", "changes", "finding", "created_by", "created_at", "undone_by", "undone_at")
    actions = ["undo"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("keeper", "created_by").prefetch_related("merged")

    @admin.display(description="merged")
    def merged_skus(self, obj: MergeRecord) -> str:
        return ", ".join(p.sku for p in obj.merged.all())

    def has_undo_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("catalog.undo_merge")

    @admin.action(permissions=["undo"], description="Undo the merge (restores photos, variants, stock, looks)")
    def undo(self, request: HttpRequest, queryset) -> None:
        _apply(self, request, queryset.filter(state=RecordState.APPLIED),
               lambda r: services.merge_undo(record=r, user=request.user), "Undid")


@admin.register(RelabelRecord)
class RelabelRecordAdmin(_RecordAdmin):
    list_display = ("product", "field", "old_value", "new_value", "state", "created_by", "created_at")
    list_filter = ("state", "field")
    search_fields = ("product__sku",)
    readonly_fields = ("product", "field", "old_value", "new_value", "state", "finding", "created_by", "created_at",
                       "undone_by", "undone_at")
    actions = ["revert"]

    def has_revert_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("catalog.revert_relabel")

    @admin.action(permissions=["revert"], description="Revert the relabel")
    def revert(self, request: HttpRequest, queryset) -> None:
        _apply(self, request, queryset.filter(state=RecordState.APPLIED),
               lambda r: services.relabel_revert(record=r, user=request.user), "Reverted")


class PhotoFlagFilter(admin.SimpleListFilter):
    title = "photo problem"
    parameter_name = "flag"

    def lookups(self, request, model_admin):
        return [("any", "any problem"), *[(flag, flag.replace("_", " ")) for flag in PHOTO_FLAGS]]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "any":
            return queryset.exclude(quality_flags=[])
        if value in PHOTO_FLAGS:
            return queryset.filter(quality_flags__contains=[value])
        return queryset


# The photo list gains the flag filter; everything else stays as catalog.admin defines it.
admin.site.unregister(ProductImage)


@admin.register(ProductImage)
class CleanupProductImageAdmin(ProductImageAdmin):
    list_filter = (PhotoFlagFilter, *ProductImageAdmin.list_filter)


