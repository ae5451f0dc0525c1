"""History of catalogue rows (django-simple-history): records for writes that bypass ``save()``, and reverts."""
from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth.models import AbstractBaseUser
from django.db import models, transaction
from django.utils import timezone

from .models import Product

if TYPE_CHECKING:
    from simple_history.models import HistoricalChanges

# A relabel is a change of these product fields; it can be reverted from the history.
RELABEL_FIELDS = ("category", "gender")


class HistoryError(Exception):
    """A revert that cannot be done; ``message`` is shown to the catalogue manager as is."""

    def __init__(self, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def history_record_create(
    instance: models.Model, *, user: AbstractBaseUser | None, reason: str, history_type: str = "~"
) -> None:
    """A history row for ``instance`` as it is now; for queryset updates (F expressions), which send no signals."""
    history_model = instance.history.model
    values = {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}
    history_model.objects.create(
        history_date=timezone.now(), history_type=history_type, history_user=user if user and user.pk else None,
        history_change_reason=reason or None, **values,
    )


def relabel_changes(record: HistoricalChanges) -> dict[str, tuple]:
    """``{field: (old_id_or_value, new_id_or_value)}`` for the relabel fields a product history record changed."""
    previous = record.prev_record
    if previous is None or record.history_type != "~":
        return {}
    changes = {}
    for name in RELABEL_FIELDS:
        attname = Product._meta.get_field(name).attname
        old, new = getattr(previous, attname), getattr(record, attname)
        if old != new:
            changes[name] = (old, new)
    return changes


def product_relabel_revert(*, product_id: int, history_id: int, user: AbstractBaseUser) -> Product:
    """Put back the category and/or gender a history record changed, if nobody changed them again since."""
    with transaction.atomic():
        product = Product.objects.select_for_update().get(pk=product_id)
        record = product.history.filter(history_id=history_id).first()
        if record is None:
            raise HistoryError("That history entry does not belong to this product.", code="not_found")
        changes = relabel_changes(record)
        if not changes:
            raise HistoryError("That change did not touch the category or gender.", code="not_a_relabel")
        for name, (old, new) in changes.items():
            attname = Product._meta.get_field(name).attname
            if getattr(product, attname) != new:
                raise HistoryError(
                    f"The {name} was changed again since; revert the later change first.", code="changed_since"
                )
            setattr(product, attname, old)
        product._change_reason = f"revert relabel (history #{record.history_id})"
        product._history_user = user
        product.save()
        return product
