"""The staff match API: photos in, ranked catalogue products and a decision out."""
from __future__ import annotations

import json

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.imaging import ImageRejected, load_image

from . import conf
from .search import MAX_K, SearchFilters
from .services import DECISION_HELP, MATCH_INPUT_ERRORS, match_image


class IsWarehouseOrCatalogStaff(BasePermission):
    """Both staff roles (warehouse, catalogue) may view the catalogue; shoppers and other accounts may not."""

    message = "Matching is for warehouse and catalogue staff."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_active and user.has_perm("catalog.view_product"))


@extend_schema_field(OpenApiTypes.STR)
class JSONTextField(serializers.Field):
    """A JSON object sent as a multipart text field."""

    def to_internal_value(self, data: object) -> dict | None:
        if isinstance(data, dict):
            return data
        try:
            value = json.loads(data) if data not in (None, "") else None
        except (TypeError, ValueError) as exc:
            raise serializers.ValidationError(f"Not valid JSON: {exc}.") from exc
        if value is not None and not isinstance(value, dict):
            raise serializers.ValidationError("Expected a JSON object.")
        return value

    def to_representation(self, value: dict | None) -> dict | None:
        return value


class CandidateSerializer(serializers.Serializer):
    product_id = serializers.IntegerField()
    sku = serializers.CharField()
    name = serializers.CharField()
    score = serializers.FloatField(help_text="Cosine similarity, higher is better.")
    image_id = serializers.IntegerField()
    image_url = serializers.CharField()
    category_kind = serializers.CharField()
    gender = serializers.CharField()


class MatchApi(APIView):
    permission_classes = [IsAuthenticated, IsWarehouseOrCatalogStaff]
    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        image = serializers.ListField(
            child=serializers.FileField(), min_length=1, max_length=6,
            help_text="One or more photos of ONE item (front, back, label): they form one query.",
        )
        hints = JSONTextField(required=False, allow_null=True,
                              help_text='Cut-out hints for the first photo: {"rect": [x0,y0,x1,y1], "fg": [...], "bg": [...]}')  # noqa: E501
        filters = JSONTextField(required=False, allow_null=True,
                                help_text='{"category_kind": "topwear", "category_id": 3, "gender": "women", "in_stock": true}')  # noqa: E501
        k = serializers.IntegerField(required=False, default=10, min_value=1, max_value=MAX_K)
        segment = serializers.BooleanField(required=False, default=True)

        def validate_filters(self, value: dict | None) -> dict | None:
            try:
                SearchFilters.from_dict(value)
            except (TypeError, ValueError) as exc:
                raise serializers.ValidationError(str(exc)) from exc
            return value or None

    class OutputSerializer(serializers.Serializer):
        candidates = CandidateSerializer(many=True)
        decision = serializers.DictField(help_text=DECISION_HELP)
        timings = serializers.DictField(
            child=serializers.FloatField(), help_text="ms: decode, segment, embed, search, total"
        )
        model_version = serializers.CharField()
        cutouts = serializers.ListField(child=serializers.DictField())

    @extend_schema(
        operation_id="match_create",
        summary="Match photos of one item against the catalogue",
        request={"multipart/form-data": InputSerializer},
        responses={
            200: OutputSerializer,
            400: OpenApiResponse(
                response=inline_serializer("MatchError", {"detail": serializers.CharField(),
                                                          "code": serializers.CharField()}),
                description="Unreadable photo or invalid hints/filters, with the reason.",
            ),
            403: OpenApiResponse(description="Not logged in, or not warehouse/catalogue staff."),
        },
        examples=[OpenApiExample("Rejected photo", status_codes=["400"], response_only=True,
                                 value={"detail": "This file is not a photo Stockmatch can read (JPEG, PNG, WebP or HEIC).",  # noqa: E501
                                        "code": "not_an_image", "field": "image"})],
    )
    def post(self, request: Request) -> Response:
        data = {key: request.data.get(key) for key in ("hints", "filters", "k", "segment") if key in request.data}
        data["image"] = request.FILES.getlist("image")
        serializer = self.InputSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        images = []
        for n, upload in enumerate(values["image"]):
            try:
                images.append(load_image(upload, max_side=conf.working_size()))
            except ImageRejected as exc:
                detail = exc.reason if len(values["image"]) == 1 else f"Photo {n + 1}: {exc.reason}"
                return Response({"detail": detail, "code": exc.code, "field": "image"},
                                status=status.HTTP_400_BAD_REQUEST)
        try:
            result = match_image(images, hints=values.get("hints"), filters=values.get("filters"), k=values["k"],
                                 segment=values["segment"])
        except MATCH_INPUT_ERRORS as exc:  # hints outside the photo, malformed strokes
            return Response({"detail": str(exc), "code": "invalid_hints", "field": "hints"},
                            status=status.HTTP_400_BAD_REQUEST)
        return Response(self.OutputSerializer(result.to_dict()).data)
