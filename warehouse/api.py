"""Intake REST API (under /api/v1/intake/): thin views over ``warehouse.services`` and ``selectors``."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import ErrorDetail, NotAuthenticated
from rest_framework.generics import ListAPIView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.imaging import ImageRejected, max_bytes
from catalog.models import Product, Variant
from matching.services import DECISION_HELP

from . import selectors, services
from .models import Arrival, ConfirmSource, PhotoRole, Snapshot, SnapshotStatus
from .roles import WAREHOUSE, has_role

if TYPE_CHECKING:
    from django.db.models import QuerySet

TAG = "intake"


class IsWarehouseWorker(BasePermission):
    message = "This needs the warehouse role. Ask an administrator to add you to the 'warehouse' group."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return has_role(request.user, WAREHOUSE)


class IntakeErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="A sentence for the worker.")
    code = serializers.CharField(help_text="Machine-readable: invalid, not_an_image, already_booked, …")
    field = serializers.CharField(required=False, help_text="The first input field at fault, if any.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.JSONField()), required=False,
        help_text="Invalid input: the messages per field.",
    )


PLAIN_INTEGER_RE = re.compile(r"-?[0-9]{1,18}")


class PlainIntegerField(serializers.IntegerField):
    """A whole number as people type it: a JSON integer or ASCII digits. "1.0", " 2 ", "٣" and true are refused
    (DRF's IntegerField takes all four)."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not (
            isinstance(data, int) or (isinstance(data, str) and PLAIN_INTEGER_RE.fullmatch(data))
        ):
            self.fail("invalid")
        return super().to_internal_value(data)


ERRORS = {
    400: OpenApiResponse(IntakeErrorSerializer, description="Invalid input; `detail` says what to change."),
    403: OpenApiResponse(IntakeErrorSerializer, description="Not signed in, or without the warehouse role."),
    404: OpenApiResponse(IntakeErrorSerializer, description="No such snapshot (or not yours)."),
    409: OpenApiResponse(IntakeErrorSerializer, description="The item is not in a state that allows this."),
}
UPLOAD_ERRORS = {**ERRORS, 413: OpenApiResponse(IntakeErrorSerializer, description="The photo is too large.")}
IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER,
    description="A fresh UUID per photo. Sending the same key again returns the same snapshot. "
    "The form field `idempotency_key` works too; without either, the photo's SHA-256 is the key.",
)


def error_response(message: str, code: str, http_status: int) -> Response:
    return Response({"detail": message, "code": code}, status=http_status)


class IntakeAPIView(APIView):
    """Base for intake endpoints: the warehouse role, and service errors as ``{detail, code}``."""

    permission_classes = [IsAuthenticated, IsWarehouseWorker]

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, services.IntakeError):
            return error_response(exc.message, exc.code, exc.status_code)
        if isinstance(exc, ImageRejected):
            code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE if exc.code == "too_large" else status.HTTP_400_BAD_REQUEST
            return error_response(exc.reason, exc.code, code)
        if isinstance(exc, NotAuthenticated):
            exc.detail = ErrorDetail("Sign in first.", code="not_authenticated")
        return super().handle_exception(exc)  # then warehouse.api_errors gives DRF's errors {detail, code}

    def snapshot(self, snapshot_id: int) -> Snapshot:
        return selectors.snapshot_get(user=self.request.user, snapshot_id=snapshot_id)


# --- output ----------------------------------------------------------------------------------------------


class IntakeSizeSerializer(serializers.Serializer):
    variant_id = serializers.IntegerField()
    size = serializers.CharField()
    stock = serializers.IntegerField()


class IntakeProductFoundSerializer(serializers.Serializer):
    product_id = serializers.IntegerField()
    sku = serializers.CharField()
    name = serializers.CharField()
    image_url = serializers.CharField()
    category = serializers.CharField()
    category_kind = serializers.CharField()
    gender = serializers.CharField()
    status = serializers.CharField()
    sizes = IntakeSizeSerializer(many=True)


class IntakeCandidateSerializer(IntakeProductFoundSerializer):
    rank = serializers.IntegerField()
    score = serializers.FloatField(allow_null=True, help_text="Cosine similarity, higher is better.")


class IntakeProductSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    sku = serializers.CharField()
    name = serializers.CharField()
    status = serializers.CharField()


class ArrivalOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    snapshot_id = serializers.IntegerField(allow_null=True)
    product = IntakeProductSerializer(source="variant.product")
    variant_id = serializers.IntegerField()
    size = serializers.CharField(source="variant.size")
    stock = serializers.IntegerField(source="variant.stock_quantity", help_text="Stock of the variant now.")
    quantity = serializers.IntegerField()
    bin_location = serializers.CharField()
    user = serializers.CharField(source="user.get_username")
    created_at = serializers.DateTimeField()
    undone_at = serializers.DateTimeField(allow_null=True)
    can_undo = serializers.SerializerMethodField()
    undo_until = serializers.SerializerMethodField()

    def get_can_undo(self, arrival: Arrival) -> bool:
        return selectors.arrival_can_undo(arrival, user=self.context["request"].user)

    def get_undo_until(self, arrival: Arrival) -> str:
        return selectors.arrival_undo_deadline(arrival).isoformat()


class IntakePhotoSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    photo_role = serializers.CharField()
    status = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    photo_url = serializers.SerializerMethodField()
    cutout_url = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def _url(self, snapshot: Snapshot, kind: str) -> str | None:
        field = getattr(snapshot, kind)
        if not field:
            return None
        return reverse("intake:image", kwargs={"snapshot_id": snapshot.pk, "kind": kind})

    def get_photo_url(self, snapshot: Snapshot) -> str | None:
        return self._url(snapshot, "preview")

    def get_cutout_url(self, snapshot: Snapshot) -> str | None:
        return self._url(snapshot, "cutout")


class IntakeActionsSerializer(serializers.Serializer):
    confirm = serializers.BooleanField()
    mark_new = serializers.BooleanField()
    fix = serializers.BooleanField()
    add_photo = serializers.BooleanField()
    retry = serializers.BooleanField()
    discard = serializers.BooleanField()
    reopen = serializers.BooleanField()


class IntakeTopCandidateSerializer(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField()
    score = serializers.FloatField(allow_null=True)


class SnapshotListSerializer(IntakePhotoSerializer):
    status_label = serializers.CharField(source="get_status_display")
    group_head_id = serializers.IntegerField(allow_null=True)
    product = IntakeProductSerializer(allow_null=True)
    top_candidate = serializers.SerializerMethodField()
    error = serializers.CharField()
    attempts = serializers.IntegerField()
    updated_at = serializers.DateTimeField()

    @extend_schema_field(IntakeTopCandidateSerializer(allow_null=True))
    def get_top_candidate(self, snapshot: Snapshot) -> dict | None:
        top = (snapshot.candidates or [None])[0]
        return {"sku": top.get("sku", ""), "name": top.get("name", ""), "score": top.get("score")} if top else None


class SnapshotDetailSerializer(SnapshotListSerializer):
    mask_url = serializers.SerializerMethodField()
    hints = serializers.JSONField()
    candidates = serializers.SerializerMethodField()
    decision = serializers.JSONField(help_text=DECISION_HELP)
    timings = serializers.JSONField(help_text="Milliseconds per stage, and upload_to_candidates_ms.")
    model_version = serializers.CharField()
    processed_at = serializers.DateTimeField(allow_null=True)
    group_photos = serializers.SerializerMethodField()
    arrivals = serializers.SerializerMethodField()
    actions = serializers.SerializerMethodField()

    def get_mask_url(self, snapshot: Snapshot) -> str | None:
        return self._url(snapshot, "mask")

    @extend_schema_field(IntakeCandidateSerializer(many=True))
    def get_candidates(self, snapshot: Snapshot) -> list[dict]:
        return selectors.candidates_with_stock(snapshot)

    @extend_schema_field(IntakePhotoSerializer(many=True))
    def get_group_photos(self, snapshot: Snapshot) -> list[dict]:
        photos = snapshot.group_photos.order_by("created_at", "id")
        return IntakePhotoSerializer(photos, many=True, context=self.context).data

    @extend_schema_field(ArrivalOutputSerializer(many=True))
    def get_arrivals(self, snapshot: Snapshot) -> list[dict]:
        arrivals = snapshot.arrivals.select_related("variant__product", "user").order_by("created_at")
        return ArrivalOutputSerializer(arrivals, many=True, context=self.context).data

    @extend_schema_field(IntakeActionsSerializer)
    def get_actions(self, snapshot: Snapshot) -> dict[str, bool]:
        return selectors.snapshot_actions(snapshot, user=self.context["request"].user)


def snapshot_data(snapshot: Snapshot, request: Request) -> dict:
    head = snapshot.group_head or snapshot
    head.refresh_from_db()
    return SnapshotDetailSerializer(head, context={"request": request}).data


# --- snapshots -------------------------------------------------------------------------------------------


class SnapshotListCreateApi(IntakeAPIView, ListAPIView):
    serializer_class = SnapshotListSerializer
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema_serializer(component_name="SnapshotListCreateFilter")
    class FilterSerializer(serializers.Serializer):
        status = serializers.CharField(required=False, help_text="Comma-separated statuses, e.g. processing,failed")
        today = serializers.BooleanField(required=False, default=False, help_text="Only photos taken today.")

        def validate_status(self, value: str) -> list[str]:
            statuses = [part.strip() for part in value.split(",") if part.strip()]
            unknown = set(statuses) - set(SnapshotStatus.values)
            if unknown:
                raise serializers.ValidationError(f"Unknown status: {', '.join(sorted(unknown))}.")
            return statuses

    @extend_schema_serializer(component_name="SnapshotListCreateInput")
    class InputSerializer(serializers.Serializer):
        photo = serializers.FileField(help_text="JPEG, PNG, WebP or HEIC; at most STOCKMATCH_MAX_UPLOAD_BYTES.")
        idempotency_key = serializers.CharField(required=False, allow_blank=True, max_length=100)
        photo_role = serializers.ChoiceField(choices=PhotoRole.choices, default=PhotoRole.FRONT)

    def get_queryset(self) -> QuerySet[Snapshot]:
        filters = self.FilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        since = selectors.start_of_today() if filters.validated_data["today"] else None
        return selectors.snapshot_list(
            user=self.request.user, statuses=filters.validated_data.get("status"), since=since
        )

    @extend_schema(tags=[TAG], summary="My photographed items", parameters=[FilterSerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.snapshots_sweep_if_due()  # in-process mode has no beat: recover dead runs here
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=[TAG], summary="Upload a photo of an arriving item", request=InputSerializer,
        parameters=[IDEMPOTENCY_HEADER],
        responses={202: SnapshotDetailSerializer, **UPLOAD_ERRORS},
        description="Stores the photo and queues matching. Poll the snapshot until `status` is `matched` "
        "(or `failed`). The same Idempotency-Key returns the same snapshot (header `Idempotent-Replayed: true`).",
    )
    def post(self, request: Request) -> Response:
        return upload(request, head=None)


def upload(request: Request, *, head: Snapshot | None) -> Response:
    too_large = request_too_large(request)
    if too_large is not None:
        return too_large
    serializer = SnapshotListCreateApi.InputSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    key = request.headers.get("Idempotency-Key") or data.get("idempotency_key")
    if head is None:
        snapshot, created = services.snapshot_create(
            uploaded_by=request.user, photo=data["photo"], idempotency_key=key, photo_role=data["photo_role"]
        )
    else:
        role = data["photo_role"] if "photo_role" in request.data else PhotoRole.BACK
        snapshot, created = services.snapshot_add_photo(
            snapshot=head, uploaded_by=request.user, photo=data["photo"], idempotency_key=key, photo_role=role
        )
    response = Response(snapshot_data(snapshot, request), status=status.HTTP_202_ACCEPTED)
    response["Idempotent-Replayed"] = "false" if created else "true"
    item_id = snapshot.group_head_id or snapshot.pk
    response["Location"] = reverse("api-intake-snapshot", kwargs={"snapshot_id": item_id})
    return response


def request_too_large(request: Request) -> Response | None:
    """Refuse an oversized upload from its Content-Length, before the body is read."""
    limit = max_bytes()
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit + 64 * 1024:  # room for the multipart envelope and form fields
        return error_response(
            f"The photo is larger than {limit // (1024 * 1024)} MB. Take it again at a lower resolution.",
            "too_large", status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    return None


class SnapshotDetailApi(IntakeAPIView):
    @extend_schema(tags=[TAG], summary="A photographed item: status, cut-out, candidates, decision",
                   responses={200: SnapshotDetailSerializer, **ERRORS})
    def get(self, request: Request, snapshot_id: int) -> Response:
        services.snapshots_sweep_if_due()  # the phone polls this: a dead run is taken over on its next poll
        return Response(snapshot_data(self.snapshot(snapshot_id), request))


class SnapshotPhotosApi(IntakeAPIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        tags=[TAG], summary="Add another photo (back, label) of the same item",
        request=SnapshotListCreateApi.InputSerializer, parameters=[IDEMPOTENCY_HEADER],
        responses={202: SnapshotDetailSerializer, **UPLOAD_ERRORS},
        description="The item is matched again with all its photos; the response is the item (group head).",
    )
    def post(self, request: Request, snapshot_id: int) -> Response:
        return upload(request, head=self.snapshot(snapshot_id))


class SnapshotConfirmApi(IntakeAPIView):
    @extend_schema_serializer(component_name="SnapshotConfirmInput")
    class InputSerializer(serializers.Serializer):
        variant_id = PlainIntegerField(required=False, min_value=1)
        product_id = PlainIntegerField(required=False, min_value=1)
        size = serializers.CharField(required=False, allow_blank=True, max_length=20,
                                     help_text="A size the product lacks is added: ≤ 10 of A–Z 0–9 space . , / -")
        quantity = PlainIntegerField(min_value=1)
        bin_location = serializers.CharField(required=False, allow_blank=True, max_length=50, default="")
        idempotency_key = serializers.CharField(required=False, allow_blank=True, max_length=100, default="",
                                                help_text="A fresh UUID per booking; a resend books nothing twice.")
        add_another = serializers.BooleanField(
            default=False, help_text="Book another size of an item that already has an arrival. Without it, an "
            "item books one arrival: the same request again returns it, a different one is refused (409).",
        )
        source = serializers.ChoiceField(
            choices=ConfirmSource.choices, default=ConfirmSource.CANDIDATES,
            help_text="`search` when the worker found the product by SKU, name or barcode (recorded in the events).",
        )

        def validate(self, attrs: dict) -> dict:
            if not attrs.get("variant_id") and not (attrs.get("product_id") and attrs.get("size")):
                raise serializers.ValidationError("Give variant_id, or product_id and size.")
            return attrs

    @extend_schema(tags=[TAG], summary="Confirm the product and book the arrival", request=InputSerializer,
                   responses={201: ArrivalOutputSerializer, **ERRORS})
    def post(self, request: Request, snapshot_id: int) -> Response:
        snapshot = self.snapshot(snapshot_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        variant = get_object_or_404(Variant, pk=data["variant_id"]) if data.get("variant_id") else None
        product = get_object_or_404(Product, pk=data["product_id"]) if variant is None else None
        arrival = services.snapshot_confirm(
            snapshot=snapshot, user=request.user, variant=variant, product=product, size=data.get("size", ""),
            quantity=data["quantity"], bin_location=data["bin_location"],
            idempotency_key=request.headers.get("Idempotency-Key") or data["idempotency_key"],
            add_another=data["add_another"], source=data["source"],
        )
        arrival = selectors.arrival_list(since=arrival.created_at).get(pk=arrival.pk)
        return Response(ArrivalOutputSerializer(arrival, context={"request": request}).data, status=201)


class SnapshotMarkNewApi(IntakeAPIView):
    @extend_schema_serializer(component_name="SnapshotMarkNewInput")
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
        category = serializers.CharField(required=False, allow_blank=True, max_length=100, default="",
                                         help_text="Free text (T-Shirt, jeans…); default: the candidates' majority.")
        gender = serializers.CharField(required=False, allow_blank=True, max_length=10, default="")
        size = serializers.CharField(required=False, allow_blank=True, max_length=20, default="")
        quantity = PlainIntegerField(required=False, min_value=1, allow_null=True, default=None,
                                     help_text="Book this many pieces on the draft at once.")
        bin_location = serializers.CharField(required=False, allow_blank=True, max_length=50, default="")

    @extend_schema_serializer(component_name="SnapshotMarkNewOutput")
    class OutputSerializer(serializers.Serializer):
        product = IntakeProductSerializer()
        snapshot = SnapshotDetailSerializer()

    @extend_schema(tags=[TAG], summary="Not in the catalogue: make a draft product", request=InputSerializer,
                   responses={201: OutputSerializer, **ERRORS})
    def post(self, request: Request, snapshot_id: int) -> Response:
        snapshot = self.snapshot(snapshot_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        product = services.snapshot_mark_new(snapshot=snapshot, user=request.user, **serializer.validated_data)
        product_data = {"id": product.pk, "sku": product.sku, "name": product.name, "status": product.status}
        return Response({"product": product_data, "snapshot": snapshot_data(snapshot, request)}, status=201)


def _strokes(help_text: str) -> serializers.ListField:
    point = serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2)
    return serializers.ListField(child=serializers.ListField(child=point), required=False, help_text=help_text)


class SnapshotFixApi(IntakeAPIView):
    @extend_schema_serializer(component_name="SnapshotFixInput")
    class InputSerializer(serializers.Serializer):
        rect = serializers.ListField(child=serializers.FloatField(), min_length=4, max_length=4, required=False,
                                     help_text="[x0, y0, x1, y1] in the upright photo's pixels (width × height).")
        fg = _strokes("Strokes over the garment: a list of polylines [[x, y], …].")
        bg = _strokes("Strokes over the background: a list of polylines [[x, y], …].")

    @extend_schema(tags=[TAG], summary="Fix the cut-out with a rectangle or strokes, and match again",
                   request=InputSerializer, responses={202: SnapshotDetailSerializer, **ERRORS})
    def post(self, request: Request, snapshot_id: int) -> Response:
        snapshot = self.snapshot(snapshot_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        hints = {key: value for key, value in serializer.validated_data.items() if value}
        snapshot = services.snapshot_fix(snapshot=snapshot, user=request.user, hints=hints)
        return Response(snapshot_data(snapshot, request), status=status.HTTP_202_ACCEPTED)


def _simple_action(service_name: str, summary: str, http_status: int) -> type[IntakeAPIView]:
    """A POST endpoint without input that calls ``services.<service_name>(snapshot=, user=)``."""

    class ActionApi(IntakeAPIView):
        @extend_schema(tags=[TAG], summary=summary, request=None,
                       responses={http_status: SnapshotDetailSerializer, **ERRORS})
        def post(self, request: Request, snapshot_id: int) -> Response:
            snapshot = getattr(services, service_name)(snapshot=self.snapshot(snapshot_id), user=request.user)
            return Response(snapshot_data(snapshot, request), status=http_status)

    ActionApi.__name__ = ActionApi.__qualname__ = "".join(p.title() for p in service_name.split("_")) + "Api"
    return ActionApi


SnapshotRetryApi = _simple_action("snapshot_retry", "Queue a failed or stuck item again", status.HTTP_202_ACCEPTED)
SnapshotDiscardApi = _simple_action("snapshot_discard", "Discard a photo (it can be restored)", status.HTTP_200_OK)
SnapshotReopenApi = _simple_action(
    "snapshot_reopen", "Take back 'not in catalogue', or restore a discarded photo", status.HTTP_200_OK
)


# --- finding a product by hand -----------------------------------------------------------------------------


class ProductSearchApi(IntakeAPIView):
    @extend_schema_serializer(component_name="IntakeProductSearchFilter")
    class FilterSerializer(serializers.Serializer):
        q = serializers.CharField(max_length=100, help_text="SKU, barcode, or part of the name (2+ characters).")

    @extend_schema(
        tags=[TAG], summary="Find a product by SKU, name or barcode (when recognition failed)",
        parameters=[FilterSerializer], responses={200: IntakeProductFoundSerializer(many=True), **ERRORS},
        description="Active and draft products, exact SKU or barcode first, at most 20. Confirm one with "
        "`POST snapshots/{id}/confirm/` and `source: search`: it becomes a labelled pair like any other.",
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        products = selectors.product_search(query=filters.validated_data["q"])
        return Response(IntakeProductFoundSerializer(products, many=True).data)


# --- arrivals --------------------------------------------------------------------------------------------


class ArrivalListApi(IntakeAPIView, ListAPIView):
    serializer_class = ArrivalOutputSerializer

    @extend_schema_serializer(component_name="ArrivalListFilter")
    class FilterSerializer(serializers.Serializer):
        mine = serializers.BooleanField(required=False, default=False, help_text="Only my arrivals.")

    def get_queryset(self) -> QuerySet[Arrival]:
        filters = self.FilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return selectors.arrival_list(user=self.request.user if filters.validated_data["mine"] else None)

    @extend_schema(tags=[TAG], summary="Today's arrivals", parameters=[FilterSerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class ArrivalUndoApi(IntakeAPIView):
    @extend_schema(tags=[TAG], summary="Undo an arrival (its author, within the undo window)", request=None,
                   responses={200: ArrivalOutputSerializer, **ERRORS})
    def post(self, request: Request, arrival_id: int) -> Response:
        arrival = services.arrival_undo(arrival=get_object_or_404(Arrival, pk=arrival_id), user=request.user)
        arrival = Arrival.objects.select_related("variant__product", "user").get(pk=arrival.pk)
        return Response(ArrivalOutputSerializer(arrival, context={"request": request}).data)

