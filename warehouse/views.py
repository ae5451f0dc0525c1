"""Phone pages for warehouse intake (under /intake/). They render a shell; the JavaScript talks to the API."""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse

from catalog.imaging import max_bytes

from . import conf, selectors, services
from .api import SnapshotDetailSerializer
from .models import SnapshotStatus
from .roles import WAREHOUSE, has_role

ViewFunc = Callable[..., HttpResponse]

IMAGE_KINDS = {"original", "preview", "cutout", "mask"}


def warehouse_required(
    view: ViewFunc | None = None, *, or_perm: str | None = None
) -> ViewFunc | Callable[[ViewFunc], ViewFunc]:
    """Signed-in members of the warehouse group (or holders of ``or_perm``) only.

    Others go to the login page, or get a page that says which role is missing.
    """

    def decorate(view: ViewFunc) -> ViewFunc:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            allowed = has_role(request.user, WAREHOUSE) or (or_perm and request.user.has_perm(or_perm))
            if not allowed:
                return render(request, "warehouse/forbidden.html", status=403)
            get_token(request)  # the pages' JavaScript sends it back as X-CSRFToken
            services.snapshots_sweep_if_due()  # in-process mode has no beat: recover dead runs on page loads
            return view(request, *args, **kwargs)

        return wrapper

    return decorate(view) if view is not None else decorate


def _page_settings() -> dict:
    return {
        "max_upload_bytes": max_bytes(),
        "undo_minutes": int(conf.undo_window().total_seconds() // 60),
    }


@warehouse_required
def capture(request: HttpRequest) -> HttpResponse:
    recent = selectors.snapshot_list(user=request.user, since=selectors.start_of_today())[:5]
    return render(request, "warehouse/capture.html", {"recent": recent, "page": _page_settings()})


@warehouse_required
def snapshot_page(request: HttpRequest, snapshot_id: int) -> HttpResponse:
    snapshot = selectors.snapshot_get(user=request.user, snapshot_id=snapshot_id)
    head = snapshot.group_head or snapshot
    data = SnapshotDetailSerializer(head, context={"request": request}).data
    return render(request, "warehouse/snapshot.html", {"snapshot": head, "data": data, "page": _page_settings()})


@warehouse_required
def fix_page(request: HttpRequest, snapshot_id: int) -> HttpResponse:
    snapshot = selectors.snapshot_get(user=request.user, snapshot_id=snapshot_id)
    head = snapshot.group_head or snapshot
    if not head.preview:
        raise Http404("This photo has no preview.")
    if not selectors.snapshot_actions(head, user=request.user)["fix"]:
        return redirect("intake:snapshot", snapshot_id=head.pk)  # decided meanwhile: show what happened
    mask_url = reverse("intake:image", kwargs={"snapshot_id": head.pk, "kind": "mask"}) if head.mask else ""
    context = {
        "snapshot": head,
        "photo_url": reverse("intake:image", kwargs={"snapshot_id": head.pk, "kind": "preview"}),
        "mask_url": mask_url,
        "fix": {"id": head.pk, "width": head.width, "height": head.height, "hints": head.hints, "mask_url": mask_url},
    }
    return render(request, "warehouse/fix.html", context)


@warehouse_required
def today(request: HttpRequest) -> HttpResponse:
    arrivals = list(selectors.arrival_list()[:200])
    for arrival in arrivals:
        arrival.can_undo = selectors.arrival_can_undo(arrival, user=request.user)
    waiting = list(selectors.snapshots_waiting(user=request.user)[:100])
    for snapshot in waiting:
        snapshot.actions = selectors.snapshot_actions(snapshot, user=request.user)
    context = {
        "arrivals": arrivals,
        "waiting": [s for s in waiting if s.status != SnapshotStatus.MATCHED],
        "undecided": [s for s in waiting if s.status == SnapshotStatus.MATCHED],
        "page": _page_settings(),
    }
    return render(request, "warehouse/today.html", context)


@warehouse_required(or_perm="warehouse.view_snapshot")  # admin thumbnails for supervisors
def snapshot_image(request: HttpRequest, snapshot_id: int, kind: str) -> FileResponse:
    """A snapshot's photo, cut-out or mask, to its owner or a supervisor (these are not public media)."""
    if kind not in IMAGE_KINDS:
        raise Http404("Unknown image.")
    snapshot = selectors.snapshot_get(user=request.user, snapshot_id=snapshot_id)
    field = getattr(snapshot, kind)
    if not field:
        raise Http404("Not made yet.")
    try:
        handle = field.open("rb")
    except FileNotFoundError as exc:
        raise Http404("The file is missing.") from exc
    response = FileResponse(handle, filename=field.name.rsplit("/", 1)[-1])
    response["Cache-Control"] = "private, max-age=86400"  # file names are unique per version
    return response
