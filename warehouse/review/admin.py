"""The review queue in the admin: a keyboard-driven grid of the items that need a catalogue manager.

Only the ``catalog`` role and superusers see it. Views are thin: they parse the request, call one
service in ``warehouse.review.services`` and answer JSON (the grid's script) or redirect (plain forms).
"""
from __future__ import annotations

import logging

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from catalog.models import Category, Gender, Product, ProductStatus
from catalog.thumbnails import thumbnail_make, thumbnail_url
from warehouse.models import Snapshot
from warehouse.roles import CATALOG, has_role

from . import selectors, services
from .models import ReviewItem

logger = logging.getLogger(__name__)

PAGE_SIZE = 24
SNAPSHOT_IMAGE_KINDS = ("preview", "cutout", "mask")
DECISIONS = ("accept", "reassign", "merge", "reject")


def is_reviewer(request: HttpRequest) -> bool:
    return has_role(request.user, CATALOG) and request.user.is_staff


class CompleteDraftForm(forms.Form):
    name = forms.CharField(max_length=200)
    sku = forms.CharField(max_length=64, required=False, help_text="Leave as is to keep the draft's SKU.")
    category = forms.ModelChoiceField(queryset=Category.objects.order_by("parent__name", "name"))
    gender = forms.ChoiceField(choices=Gender.choices)
    sizes = forms.CharField(max_length=400, required=False, help_text="Comma-separated, e.g. S, M, L")
    primary_image = forms.TypedChoiceField(coerce=int, required=False, empty_value=None,
                                           help_text="The draft's photo to show first.")
    use_cutout = forms.BooleanField(required=False, initial=True,
                                    help_text="Add the cut-out (garment on plain grey) as the primary photo.")
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, draft: Product, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["primary_image"].choices = [("", "—")] + [(i.pk, f"photo {i.pk}") for i in draft.images.all()]


@admin.register(ReviewItem)
class ReviewQueueAdmin(admin.ModelAdmin):
    """Not a plain changelist: ``changelist_view`` renders the grid; decisions go to the URLs below."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_reviewer(request)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return is_reviewer(request)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return is_reviewer(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_urls(self):
        def view(fn, post=False):
            return self.admin_site.admin_view(require_POST(fn) if post else fn)

        return [
            path("<int:snapshot_id>/decide/", view(self.decide_view, post=True), name="warehouse_reviewitem_decide"),
            path("<int:snapshot_id>/complete/", view(self.complete_view), name="warehouse_reviewitem_complete"),
            path("<int:snapshot_id>/thumb/<str:kind>/<int:size>/", view(self.thumb_view),
                 name="warehouse_reviewitem_thumb"),
            path("bulk/", view(self.bulk_view, post=True), name="warehouse_reviewitem_bulk"),
            path("search/", view(self.search_view), name="warehouse_reviewitem_search"),
            path("", view(self.changelist_view), name="warehouse_reviewitem_changelist"),
        ]

    def _check(self, request: HttpRequest) -> None:
        if not is_reviewer(request):
            raise PermissionDenied

    # --- the grid -----------------------------------------------------------------------------------------

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        self._check(request)
        queue = selectors.review_queue()
        reason = request.GET.get("reason", "")
        status_for_reason = {selectors.QueueReason.DRAFT: "new", selectors.QueueReason.FAILED: "failed",
                             selectors.QueueReason.NOT_IN_CATALOGUE: "matched",
                             selectors.QueueReason.LOW_SCORE: "confirmed"}
        if reason in status_for_reason:
            queue = queue.filter(status=status_for_reason[reason])
        page = Paginator(queue, PAGE_SIZE).get_page(request.GET.get("p"))
        cards = selectors.review_cards(list(page.object_list))
        for card in cards:
            card["photo_url"] = self._snapshot_thumb(card["snapshot"], "preview", 320)
            card["cutout_url"] = self._snapshot_thumb(card["snapshot"], "cutout", 320)
            for row in [*card["candidates"], *([card["choice"]] if card["choice"] else [])]:
                row["thumb"] = self._product_thumb(row)
        context = {
            **self.admin_site.each_context(request), "opts": ReviewItem._meta, "title": "Review queue",
            "cards": cards, "page": page, "total": page.paginator.count, "reason": reason,
            "reasons": selectors.QUEUE_REASON_LABELS,
        }
        return TemplateResponse(request, "admin/warehouse/review_queue.html", context)

    def _snapshot_thumb(self, snapshot: Snapshot, kind: str, size: int) -> str:
        return reverse("admin:warehouse_reviewitem_thumb", args=[snapshot.pk, kind, size]) if getattr(snapshot, kind) \
            else ""

    @staticmethod
    def _product_thumb(row: dict) -> str:
        image = row.get("image")
        return thumbnail_url(source=image.file, size=160, key=image.sha256) if image is not None else ""

    def thumb_view(self, request: HttpRequest, snapshot_id: int, kind: str, size: int) -> FileResponse:
        """A small cached rendition of a snapshot photo; snapshots are private, so they go through this check."""
        if not (is_reviewer(request) or request.user.has_perm("warehouse.view_snapshot")):
            raise PermissionDenied
        if kind not in SNAPSHOT_IMAGE_KINDS:
            raise Http404("Unknown image.")
        snapshot = get_object_or_404(Snapshot, pk=snapshot_id)
        source = getattr(snapshot, kind)
        if not source:
            raise Http404("Not made yet.")
        name = thumbnail_make(source=source, size=min(max(size, 16), 320), prefix="snapshots/thumbs")
        if name is None:
            raise Http404("The photo cannot be read.")
        response = FileResponse(default_storage.open(name, "rb"), content_type="image/jpeg")
        response["Cache-Control"] = "private, max-age=86400"  # renditions never change (unique source names)
        return response

    # --- decisions ----------------------------------------------------------------------------------------

    def decide_view(self, request: HttpRequest, snapshot_id: int) -> HttpResponse:
        self._check(request)
        action = request.POST.get("action", "")
        if action not in DECISIONS:
            return self._answer(request, error=f"Unknown decision {action!r}.", status=400)
        snapshot = Snapshot(pk=snapshot_id)
        note = request.POST.get("note", "")
        try:
            if action == "accept":
                pair = services.review_accept(snapshot=snapshot, user=request.user, note=note)
            elif action == "reject":
                pair = services.review_reject(snapshot=snapshot, user=request.user, note=note)
            else:
                product_id = _int(request.POST.get("product_id"))
                decide = services.review_merge_draft if action == "merge" else services.review_reassign
                pair = decide(snapshot=snapshot, product_id=product_id, user=request.user, note=note)
        except services.ReviewError as exc:
            return self._answer(request, error=exc.message, status=exc.status_code, code=exc.code)
        target = pair.product.sku if pair.product else "no product"
        return self._answer(request, message=f"Item {pair.snapshot_id}: {pair.get_decision_display().lower()} "
                                             f"({target}).", pair=pair)

    def _answer(self, request: HttpRequest, *, message: str = "", error: str = "", status: int = 200, code: str = "",
                pair=None) -> HttpResponse:
        if request.headers.get("Accept", "").startswith("application/json"):
            if error:
                return JsonResponse({"detail": error, "code": code or "invalid"}, status=status)
            return JsonResponse({"detail": message, "snapshot": pair.snapshot_id, "decision": pair.decision,
                                 "product_id": pair.product_id})
        self.message_user(request, error or message, messages.ERROR if error else messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:warehouse_reviewitem_changelist"))

    def bulk_view(self, request: HttpRequest) -> HttpResponse:
        """Bulk accept or reject: the first POST shows what would happen, the second (``confirmed``) does it."""
        self._check(request)
        action = request.POST.get("action", "")
        ids = [value for value in (_int(raw) for raw in request.POST.getlist("ids")) if value]
        if action not in services.BULK_ACTIONS or not ids:
            self.message_user(request, "Select items and a bulk action first.", messages.WARNING)
            return HttpResponseRedirect(reverse("admin:warehouse_reviewitem_changelist"))
        if request.POST.get("confirmed") != "yes":
            items = selectors.review_cards(list(Snapshot.objects.filter(pk__in=ids).select_related(
                "product", "uploaded_by").order_by("created_at")))
            context = {**self.admin_site.each_context(request), "opts": ReviewItem._meta,
                       "title": f"{action.capitalize()} {len(items)} item(s)?", "action": action, "cards": items}
            return TemplateResponse(request, "admin/warehouse/review_bulk_confirm.html", context)
        done, failed = services.review_bulk(snapshot_ids=ids, action=action, user=request.user)
        if done:
            self.message_user(request, f"{action.capitalize()}ed {len(done)} item(s).", messages.SUCCESS)
        for snapshot_id, why in failed.items():
            self.message_user(request, f"Item {snapshot_id}: {why}", messages.WARNING)
        return HttpResponseRedirect(reverse("admin:warehouse_reviewitem_changelist"))

    def complete_view(self, request: HttpRequest, snapshot_id: int) -> HttpResponse:
        """Complete a worker's draft: name, SKU, category, gender, sizes, photos from the item."""
        self._check(request)
        snapshot = get_object_or_404(Snapshot.objects.select_related("product__category", "uploaded_by"),
                                     pk=snapshot_id)
        draft = snapshot.product
        if draft is None or draft.status != ProductStatus.DRAFT:
            self.message_user(request, f"Item {snapshot_id} has no draft product to complete.", messages.WARNING)
            return HttpResponseRedirect(reverse("admin:warehouse_reviewitem_changelist"))
        initial = {"name": draft.name, "sku": draft.sku, "category": draft.category_id, "gender": draft.gender,
                   "sizes": ", ".join(draft.variants.values_list("size", flat=True)),
                   "use_cutout": bool(snapshot.cutout)}
        form = CompleteDraftForm(request.POST or None, initial=initial, draft=draft)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                services.review_complete_draft(
                    snapshot=snapshot, user=request.user, name=data["name"], sku=data["sku"],
                    category_id=data["category"].pk, gender=data["gender"], sizes=data["sizes"],
                    primary_image_id=data["primary_image"], use_cutout=data["use_cutout"], note=data["note"],
                )
            except services.ReviewError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, f"{data['sku'] or draft.sku} is in the catalogue now.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:warehouse_reviewitem_changelist"))
        from .selectors import draft_origin

        context = {
            **self.admin_site.each_context(request), "opts": ReviewItem._meta, "title": f"Complete draft {draft.sku}",
            "form": form, "snapshot": snapshot, "draft": draft, "origin": draft_origin(draft),
            "photo_url": self._snapshot_thumb(snapshot, "preview", 320),
            "cutout_url": self._snapshot_thumb(snapshot, "cutout", 320),
            "images": [(image, thumbnail_url(source=image.file, size=160, key=image.sha256))
                       for image in draft.images.all()],
        }
        return TemplateResponse(request, "admin/warehouse/review_complete.html", context)

    # --- finding the right product ------------------------------------------------------------------------

    def search_view(self, request: HttpRequest) -> JsonResponse:
        """Products for a reassign: ``q`` (SKU, name, barcode), or ``similar`` (an item: look-alikes by image)."""
        self._check(request)
        similar = _int(request.GET.get("similar"))
        scores: dict[int, float] = {}
        if similar:
            snapshot = get_object_or_404(Snapshot, pk=similar)
            products, scores = _similar_to(snapshot, kind=request.GET.get("kind") or None)
        else:
            products = selectors.review_product_search(query=request.GET.get("q", ""))
        rows = selectors.product_rows(products, scores=scores)
        return JsonResponse({"results": [
            {"product_id": r["product_id"], "sku": r["sku"], "name": r["name"], "category": r["category"],
             "gender": r["gender"], "stock": r["stock"], "sizes": r["sizes"], "score": r["score"],
             "thumb": self._product_thumb(r)} for r in rows
        ]})


def _similar_to(snapshot: Snapshot, *, kind: str | None, k: int = 20) -> tuple[list[Product], dict[int, float]]:
    """Catalogue look-alikes of the item's cut-out (or photo), through the matching service."""
    from catalog.imaging import load_image
    from matching.services import match_image

    source = snapshot.cutout or snapshot.preview or snapshot.original
    with source.open("rb") as handle:
        image = load_image(handle.read()).image
    filters = {"status": ProductStatus.ACTIVE, **({"category_kind": kind} if kind else {})}  # reassign targets only
    result = match_image(image, segment=not snapshot.cutout, filters=filters, k=k)
    scores = {c.product_id: c.score for c in result.candidates}
    products = {p.pk: p for p in Product.objects.filter(pk__in=scores).select_related("category")
                .prefetch_related("variants", "images")}
    return [products[pid] for pid in scores if pid in products], scores


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
