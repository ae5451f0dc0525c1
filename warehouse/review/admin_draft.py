"""The "came from" panel on a product's admin page: the intake item, worker and candidates behind a draft."""
from __future__ import annotations

from django.urls import reverse
from django.utils.html import format_html, format_html_join

from .selectors import draft_origin


def snapshot_image_url(snapshot_id: int, kind: str, size: int = 160) -> str:
    return reverse("admin:warehouse_reviewitem_thumb", args=[snapshot_id, kind, size])


def draft_origin_html(product) -> str:
    if product is None or not product.pk:
        return "—"
    origin = draft_origin(product)
    if origin is None:
        return "—"
    snapshot = origin.snapshot
    guesses = ""
    if origin.guessed:
        guesses = format_html(
            '<p class="guess" style="color:#92400e">Guessed from the candidates, please check: <strong>{}</strong></p>',
            " and ".join(origin.guessed),
        )
    candidates = format_html_join(
        "", '<li><a href="{}">{}</a> · {} · score {}</li>',
        ((reverse("admin:catalog_product_change", args=[c["product_id"]]), c["sku"], c["name"],
          f"{c['score']:.2f}" if c.get("score") is not None else "—") for c in origin.candidates),
    )
    return format_html(
        '<div class="draft-origin"><a href="{}">'
        '<img src="{}" alt="intake photo" style="height:120px;border-radius:4px">'
        '</a> <img src="{}" alt="cut-out" style="height:120px;border-radius:4px">'
        '<p>Intake item <a href="{}">#{}</a>, photographed by <strong>{}</strong> on {}.</p>{}'
        '<p>Candidates the matcher offered:</p><ol>{}</ol></div>',
        reverse("admin:warehouse_snapshot_change", args=[snapshot.pk]), snapshot_image_url(snapshot.pk, "preview"),
        snapshot_image_url(snapshot.pk, "cutout"), reverse("admin:warehouse_snapshot_change", args=[snapshot.pk]),
        snapshot.pk, origin.worker.get_username(), snapshot.created_at.strftime("%Y-%m-%d %H:%M"), guesses,
        candidates or format_html("<li>none</li>"),
    )
