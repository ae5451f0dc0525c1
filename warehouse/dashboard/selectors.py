"""The dashboard's figures, read from snapshots, arrivals, review decisions and model versions."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from matching.models import EmbeddingModel
from segmentation.models import SegmenterModel
from warehouse.models import Arrival, Snapshot, SnapshotStatus
from warehouse.review.models import LabelledPair
from warehouse.review.selectors import review_queue_stats

if TYPE_CHECKING:
    from collections.abc import Iterable

# Review-queue age buckets (hours): label, upper bound.
AGE_BUCKETS = (("< 1 h", 1), ("1–4 h", 4), ("4–24 h", 24), ("1–3 d", 72), ("> 3 d", float("inf")))


def open_findings_by_kind() -> dict[str, int] | None:
    """Open catalogue-cleanup findings per kind; None while there are no cleanup scans.

    When the cleanup app's findings model is merged, this is one line, e.g.
    ``return dict(Finding.objects.filter(state="open").values_list("kind").annotate(n=Count("id")))``.
    """
    return None


@dataclass
class Dashboard:
    days: list[date]
    snapshots_per_day: list[int]
    arrivals_per_day: list[int]
    pieces_per_day: list[int]
    auto_share_per_day: list[float | None]
    auto_share: float | None
    decided: int
    top1_precision: float | None
    top1_judged: int
    queue_size: int
    queue_oldest_hours: float | None
    queue_ages: list[tuple[str, int]]
    queue_by_status: dict[str, int]
    findings: dict[str, int] | None
    models: list[dict] = field(default_factory=list)

    @property
    def has_data(self) -> bool:
        return any(self.snapshots_per_day) or any(self.arrivals_per_day) or self.queue_size > 0


def _per_day(rows: Iterable[dict], days: list[date], key: str = "n") -> list[int]:
    counts = {row["day"]: row[key] or 0 for row in rows}
    return [int(counts.get(day, 0)) for day in days]


def _right_product(snapshot: Snapshot, reviewed: dict[int, int | None]) -> int | None:
    if snapshot.pk in reviewed:
        return reviewed[snapshot.pk]
    return snapshot.product_id if snapshot.status == SnapshotStatus.CONFIRMED else None


def dashboard_data(*, days: int = 30, now: datetime | None = None) -> Dashboard:
    now = now or timezone.now()
    today = timezone.localdate(now)
    day_list = [today - timedelta(days=n) for n in range(days - 1, -1, -1)]
    since = timezone.make_aware(datetime.combine(day_list[0], datetime.min.time()))

    heads = Snapshot.objects.filter(group_head__isnull=True, created_at__gte=since)
    snapshots = _per_day(heads.annotate(day=TruncDate("created_at")).values("day").annotate(n=Count("id")), day_list)
    arrivals = Arrival.objects.filter(created_at__gte=since, undone_at__isnull=True).annotate(
        day=TruncDate("created_at")).values("day").annotate(n=Count("id"), pieces=Sum("quantity"))
    arrivals = list(arrivals)

    # Decided automatically: the matcher was sure and the worker booked exactly its answer.
    decided_rows = list(heads.filter(status__in=[SnapshotStatus.CONFIRMED, SnapshotStatus.NEW])
                        .values("pk", "created_at", "decision", "product_id", "status", "candidates"))
    per_day_total: dict[date, int] = {}
    per_day_auto: dict[date, int] = {}
    for row in decided_rows:
        day = timezone.localdate(row["created_at"])
        per_day_total[day] = per_day_total.get(day, 0) + 1
        decision = row["decision"] or {}
        if (row["status"] == SnapshotStatus.CONFIRMED and decision.get("in_catalogue")
                and decision.get("product_id") == row["product_id"]):
            per_day_auto[day] = per_day_auto.get(day, 0) + 1
    auto_share_per_day = [per_day_auto.get(d, 0) / per_day_total[d] if per_day_total.get(d) else None for d in day_list]
    total_decided = sum(per_day_total.values())
    auto_share = sum(per_day_auto.values()) / total_decided if total_decided else None

    # Precision of the top suggestion, judged by confirmations (a review overrides the worker).
    reviewed = dict(
        LabelledPair.objects.filter(snapshot__created_at__gte=since).values_list("snapshot_id", "product_id")
    )
    judged = hits = 0
    for snapshot in heads.filter(status__in=[SnapshotStatus.CONFIRMED, SnapshotStatus.NEW, SnapshotStatus.MATCHED,
                                             SnapshotStatus.FAILED]).only("pk", "status", "product_id", "candidates"):
        right = _right_product(snapshot, reviewed)
        candidates = [c for c in snapshot.candidates or [] if c.get("product_id")]
        if right is None or not candidates:
            continue
        judged += 1
        hits += int(candidates[0]["product_id"] == right)

    stats = review_queue_stats(now=now)
    buckets = []
    lower = 0.0
    for label, upper in AGE_BUCKETS:
        buckets.append((label, sum(1 for age in stats["ages_hours"] if lower <= age < upper)))
        lower = upper
    return Dashboard(
        days=day_list, snapshots_per_day=snapshots, arrivals_per_day=_per_day(arrivals, day_list),
        pieces_per_day=_per_day(arrivals, day_list, key="pieces"), auto_share_per_day=auto_share_per_day,
        auto_share=auto_share, decided=total_decided, top1_precision=hits / judged if judged else None,
        top1_judged=judged, queue_size=stats["size"], queue_oldest_hours=stats["oldest_hours"], queue_ages=buckets,
        queue_by_status=stats["by_status"], findings=open_findings_by_kind(), models=active_models(),
    )


def active_models() -> list[dict]:
    """The model versions serving now, with the figures they were promoted on."""
    rows = []
    for model in EmbeddingModel.objects.filter(active=True):
        default = (model.thresholds or {}).get("default") or {}
        rows.append({"kind": "embedder", "name": model.name, "since": model.activated_at,
                     "metrics": {**_flat(model.metrics),
                                 **({"threshold": default["score"]} if "score" in default else {}),
                                 **({"open_set_alpha": model.open_set_alpha} if model.open_set_alpha else {})},
                     "vectors": model.embeddings.count()})
    for model in SegmenterModel.objects.filter(active=True):
        rows.append({"kind": "segmenter", "name": model.name, "since": model.created, "metrics": _flat(model.metrics),
                     "vectors": None})
    return rows


def _flat(metrics: dict | None, *, limit: int = 12) -> dict[str, object]:
    """The scalar figures of a metrics dict (nested one level), rounded, at most ``limit``."""
    flat: dict[str, object] = {}
    for key, value in (metrics or {}).items():
        if isinstance(value, dict):
            for inner, item in value.items():
                if isinstance(item, int | float) and not isinstance(item, bool):
                    flat[f"{key}.{inner}"] = round(item, 4)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[key] = round(value, 4)
        elif isinstance(value, str) and len(value) <= 40:
            flat[key] = value
    return dict(list(flat.items())[:limit])
