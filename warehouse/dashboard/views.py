"""The dashboard page: catalogue role and superusers, inside the admin's frame."""
from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.safestring import mark_safe

from warehouse.review.admin import is_reviewer
from warehouse.review.selectors import QUEUE_REASON_LABELS

from . import charts
from .selectors import dashboard_data

STATUS_REASON = {"new": "draft", "failed": "failed", "matched": "not_in_catalogue", "confirmed": "low_score"}


def dashboard(request: HttpRequest) -> HttpResponse:
    if not is_reviewer(request):
        raise PermissionDenied
    try:
        days = min(max(int(request.GET.get("days", 30)), 7), 180)
    except ValueError:
        days = 30
    data = dashboard_data(days=days)
    volume = charts.bars_per_day(data.days, {"snapshots": data.snapshots_per_day, "arrivals": data.arrivals_per_day},
                                 title="Items photographed and arrivals booked per day")
    auto = charts.share_per_day(data.days, data.auto_share_per_day, title="Decided automatically (% of decided items)")
    ages = charts.horizontal_bars(data.queue_ages, title="Review queue by age")
    findings = (charts.horizontal_bars(sorted(data.findings.items()), title="Open cleanup findings by kind")
                if data.findings else "")
    context = {
        **admin.site.each_context(request), "title": "Dashboard", "data": data, "days": days,
        "volume_svg": mark_safe(volume), "auto_svg": mark_safe(auto), "ages_svg": mark_safe(ages),  # noqa: S308
        "findings_svg": mark_safe(findings),  # noqa: S308 - matplotlib's own SVG, no user text in it
        "queue_reasons": [(QUEUE_REASON_LABELS[STATUS_REASON[s]], n) for s, n in sorted(data.queue_by_status.items())
                          if s in STATUS_REASON],
    }
    return TemplateResponse(request, "admin/dashboard.html", context)
