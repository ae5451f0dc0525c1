"""Admin pieces for history and stock: the "adjust stock" form and reverting a relabel from a product's history.

Stock is read-only in every admin form; it changes only through ``catalog.services.variant_adjust_stock``
(with a reason, recorded in the variant's history). Both screens are for the catalogue role.
"""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from warehouse.roles import CATALOG, has_role

from .history import HistoryError, product_relabel_revert, relabel_changes
from .models import Category, Product, Variant
from .services import variant_adjust_stock

MAX_STOCK_DELTA = 100_000


class StockAdjustForm(forms.Form):
    delta = forms.IntegerField(
        label="Change", min_value=-MAX_STOCK_DELTA, max_value=MAX_STOCK_DELTA,
        help_text="Pieces to add (negative to remove), for each variant below.",
    )
    reason = forms.CharField(max_length=200, help_text="Why: stock count, damaged, returned to supplier, …")

    def clean_delta(self) -> int:
        if self.cleaned_data["delta"] == 0:
            raise forms.ValidationError("A change of 0 changes nothing.")
        return self.cleaned_data["delta"]


def _require_catalogue(request: HttpRequest, perm: str) -> None:
    if not (has_role(request.user, CATALOG) and request.user.has_perm(perm)):
        raise PermissionDenied


class StockAdjustAdminMixin:
    """For ``VariantAdmin``: an "adjust stock" action and page that call the stock service."""

    def get_urls(self):
        view = self.admin_site.admin_view(self.adjust_stock_view)
        return [path("adjust-stock/", view, name="catalog_variant_adjust_stock"), *super().get_urls()]

    @admin.action(permissions=["change"], description="Adjust stock of the selected variants (with a reason)…")
    def adjust_stock(self, request: HttpRequest, queryset) -> HttpResponse:
        ids = ",".join(str(pk) for pk in queryset.values_list("pk", flat=True))
        return HttpResponseRedirect(f"{reverse('admin:catalog_variant_adjust_stock')}?ids={ids}")

    def adjust_stock_view(self, request: HttpRequest) -> HttpResponse:
        _require_catalogue(request, "catalog.change_variant")
        raw = request.POST.get("ids") or request.GET.get("ids") or ""
        try:
            ids = [int(part) for part in raw.split(",") if part.strip()]
        except ValueError:
            ids = []
        variants = list(Variant.objects.filter(pk__in=ids).select_related("product").order_by("product__sku", "size"))
        if not variants:
            self.message_user(request, "Choose the variants to adjust first.", messages.WARNING)
            return HttpResponseRedirect(reverse("admin:catalog_variant_changelist"))
        form = StockAdjustForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            delta, reason = form.cleaned_data["delta"], form.cleaned_data["reason"]
            done = 0
            for variant in variants:
                try:
                    variant_adjust_stock(variant_id=variant.pk, delta=delta, reason=reason, user=request.user)
                    done += 1
                except IntegrityError:
                    self.message_user(
                        request, f"{variant}: only {variant.stock_quantity} in stock, cannot remove {-delta}.",
                        messages.ERROR,
                    )
            if done:
                self.message_user(request, f"Stock changed by {delta:+d} on {done} variant(s): {reason}.",
                                  messages.SUCCESS)
            back = request.POST.get("next") or ""
            if back.startswith("/admin/"):
                return HttpResponseRedirect(back)
            return HttpResponseRedirect(reverse("admin:catalog_variant_changelist"))
        context = {
            **self.admin_site.each_context(request), "opts": Variant._meta, "title": "Adjust stock",
            "form": form, "variants": variants, "ids": ",".join(str(v.pk) for v in variants),
            "next": request.GET.get("next", ""),
        }
        return TemplateResponse(request, "admin/catalog/adjust_stock.html", context)


def adjust_stock_link(variant: Variant) -> str:
    if not variant.pk:
        return ""
    url = reverse("admin:catalog_variant_adjust_stock")
    back = reverse("admin:catalog_product_change", args=[variant.product_id])
    return format_html('<a href="{}?ids={}&next={}">adjust…</a>', url, variant.pk, back)


def _label_text(name: str, value) -> str:
    if name == "category":
        category = Category.objects.filter(pk=value).first()
        return str(category) if category else f"#{value}"
    return str(value)


class ProductHistoryAdminMixin:
    """For ``ProductAdmin`` (a ``SimpleHistoryAdmin``): a "revert" link beside each relabel in the history."""

    history_list_display = ["relabel"]

    def get_urls(self):
        view = self.admin_site.admin_view(self.revert_relabel_view)
        return [
            path("<int:product_id>/history/<int:history_id>/revert-labels/", view,
                 name="catalog_product_revert_labels"),
            *super().get_urls(),
        ]

    @admin.display(description="relabel")
    def relabel(self, record) -> str:
        if not relabel_changes(record):
            return ""
        url = reverse("admin:catalog_product_revert_labels", args=[record.id, record.history_id])
        return format_html('<a class="button" href="{}">Revert this relabel…</a>', url)

    def revert_relabel_view(self, request: HttpRequest, product_id: int, history_id: int) -> HttpResponse:
        _require_catalogue(request, "catalog.change_product")
        product = get_object_or_404(Product, pk=product_id)
        record = get_object_or_404(product.history.model, history_id=history_id, id=product_id)
        history_url = reverse("admin:catalog_product_history", args=[product_id])
        if request.method == "POST":
            try:
                product_relabel_revert(product_id=product_id, history_id=history_id, user=request.user)
            except HistoryError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                self.message_user(request, f"{product.sku}: relabel reverted.", messages.SUCCESS)
            return HttpResponseRedirect(history_url)
        changes = [
            {"field": name, "old": _label_text(name, old), "new": _label_text(name, new)}
            for name, (old, new) in relabel_changes(record).items()
        ]
        context = {
            **self.admin_site.each_context(request), "opts": Product._meta, "title": f"Revert a relabel of {product}",
            "product": product, "record": record, "changes": changes, "history_url": history_url,
        }
        return TemplateResponse(request, "admin/catalog/revert_relabel.html", context)
