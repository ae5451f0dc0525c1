"""The mirror API (device keys only) and the fitting room's staff API.

Responses are rendered through the serializers below, which declare every field a shopper may see:
anything else a service might carry is dropped here.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.imaging import ImageRejected, load_image
from matching.apis import IsWarehouseOrCatalogStaff

from . import selectors, services
from .auth import MirrorApiMixin
from .models import Shortlist

if TYPE_CHECKING:
    from rest_framework.request import Request

NO_STORE = {"Cache-Control": "no-store"}
ErrorSerializer = inline_serializer("MirrorError", {"detail": serializers.CharField(), "code": serializers.CharField()})


def image_url_builder(request: Request) -> selectors.ImageUrl:
    def build(sha256: str) -> str:
        return request.build_absolute_uri(reverse("mirror-image", args=[sha256]))

    return build


class DealSerializer(serializers.Serializer):
    label = serializers.CharField()
    price = serializers.CharField(allow_null=True, help_text="The price during the deal.")
    percent_off = serializers.FloatField(allow_null=True)
    ends_at = serializers.DateTimeField()


class ShopperProductSerializer(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField()
    brand = serializers.CharField(allow_blank=True)
    price = serializers.CharField(allow_null=True)
    currency = serializers.CharField()
    deal = DealSerializer(allow_null=True)
    sizes = serializers.ListField(child=serializers.CharField(), help_text="Sizes in stock now.")
    image_urls = serializers.ListField(child=serializers.URLField())


class PredictionSerializer(serializers.Serializer):
    label = serializers.CharField()
    confidence = serializers.FloatField()


class GarmentSerializer(serializers.Serializer):
    kind = PredictionSerializer(
        allow_null=True, help_text="topwear, bottomwear, full-body, footwear, outerwear, accessory"
    )
    gender = PredictionSerializer(allow_null=True, help_text="men, women, unisex, boys, girls")
    region = serializers.ListField(child=serializers.FloatField(), help_text="x0, y0, x1, y1 as shares of the frame.")
    similar = ShopperProductSerializer(many=True)
    complete_the_look = ShopperProductSerializer(many=True)


class RecommendationSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "no_person", "no_garment"])
    message = serializers.CharField(
        allow_blank=True, help_text='"Hold the garment up to the mirror." when nothing was found.'
    )
    garments = GarmentSerializer(many=True)


class MirrorFrameSerializer(serializers.Serializer):
    frame = serializers.FileField(help_text="One camera frame: JPEG, PNG or HEIC.")


class RecommendationsApi(MirrorApiMixin, APIView):
    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="mirror_recommendations",
        summary="Recommendations for the garment(s) in one camera frame",
        request={"multipart/form-data": MirrorFrameSerializer},
        responses={
            200: RecommendationSerializer,
            400: OpenApiResponse(ErrorSerializer, description="No frame, or a corrupt / non-image file."),
            401: OpenApiResponse(description="No mirror key, or a revoked or expired one."),
            413: OpenApiResponse(ErrorSerializer, description="The frame is too large."),
            429: OpenApiResponse(description="Too many requests for this mirror key."),
        },
    )
    def post(self, request: Request) -> Response:
        upload = request.FILES.get("frame")
        if upload is None:
            return Response({"detail": "Send one camera frame as the multipart field 'frame'.", "code": "no_frame"},
                            status=status.HTTP_400_BAD_REQUEST)
        try:
            loaded = load_image(
                upload, limit_bytes=int(selectors.mirror_setting("MAX_FRAME_BYTES", 10 * 1024 * 1024))
            )
        except ImageRejected as exc:
            code = (status.HTTP_413_REQUEST_ENTITY_TOO_LARGE if exc.code in ("too_large", "too_many_pixels")
                    else status.HTTP_400_BAD_REQUEST)
            return Response({"detail": exc.reason, "code": exc.code}, status=code)
        answer = services.mirror_recommend(image=loaded.image)
        services.mirror_frame_store(image=loaded.image)
        image_url = image_url_builder(request)
        payload = {
            "status": answer.status, "message": answer.message,
            "garments": [
                {
                    "kind": garment.kind, "gender": garment.gender, "region": list(garment.region),
                    "similar": selectors.products_for_shoppers(product_ids=garment.similar, image_url=image_url),
                    "complete_the_look": selectors.products_for_shoppers(
                        product_ids=garment.complete_the_look, image_url=image_url),
                }
                for garment in answer.garments
            ],
        }
        return Response(RecommendationSerializer(payload).data, headers=NO_STORE)


class ProductApi(MirrorApiMixin, APIView):
    @extend_schema(
        operation_id="mirror_product",
        summary="A product as shoppers see it: price, live deal, sizes in stock, photos",
        responses={200: ShopperProductSerializer, 401: OpenApiResponse(description="No valid mirror key."),
                   404: OpenApiResponse(description="No such product on sale.")},
    )
    def get(self, request: Request, sku: str) -> Response:
        product = selectors.product_for_shoppers(sku=sku, image_url=image_url_builder(request))
        if product is None:
            return Response({"detail": "No such product.", "code": "not_found"}, status=status.HTTP_404_NOT_FOUND)
        return Response(ShopperProductSerializer(product).data, headers=NO_STORE)


class ShortlistItemSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    size = serializers.CharField(max_length=20)


class ShortlistRequestSerializer(serializers.Serializer):
    items = ShortlistItemSerializer(many=True)


class ShortlistSentSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Tell the fitting room this code.")
    expires_at = serializers.DateTimeField()
    items = ShortlistItemSerializer(many=True)


class ShortlistApi(MirrorApiMixin, APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="mirror_shortlist_send",
        summary="Send the shopper's picks (product and size) to the fitting room",
        request=ShortlistRequestSerializer,
        responses={201: ShortlistSentSerializer,
                   400: OpenApiResponse(ErrorSerializer, description="Unknown product or size."),
                   401: OpenApiResponse(description="No valid mirror key.")},
    )
    def post(self, request: Request) -> Response:
        serializer = ShortlistRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            shortlist = services.shortlist_send(device=request.auth, items=serializer.validated_data["items"])
        except services.ShortlistError as exc:
            return Response({"detail": str(exc), "code": "invalid_shortlist"}, status=status.HTTP_400_BAD_REQUEST)
        payload = {
            "code": shortlist.code, "expires_at": shortlist.expires_at,
            "items": [
                {"sku": item.product.sku, "size": item.size} for item in shortlist.items.select_related("product")
            ],
        }
        return Response(ShortlistSentSerializer(payload).data, status=status.HTTP_201_CREATED, headers=NO_STORE)


# -- fitting room (staff) -------------------------------------------------------------------------------

class FittingRoomItemSerializer(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField()
    size = serializers.CharField()
    in_stock = serializers.BooleanField(help_text="Checked now, not when the shopper picked it.")
    stock = serializers.IntegerField()
    image = serializers.CharField(allow_null=True)


class FittingRoomShortlistSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    items = FittingRoomItemSerializer(many=True)


class FittingRoomShortlistsApi(APIView):
    permission_classes = [IsAuthenticated, IsWarehouseOrCatalogStaff]

    @extend_schema(operation_id="fitting_room_shortlists", summary="Open shortlists sent from the mirrors",
                   responses={200: FittingRoomShortlistSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response(FittingRoomShortlistSerializer(selectors.shortlists_open(), many=True).data)


class FittingRoomDoneApi(APIView):
    permission_classes = [IsAuthenticated, IsWarehouseOrCatalogStaff]

    @extend_schema(operation_id="fitting_room_shortlist_done", summary="Mark a shortlist as handled", request=None,
                   responses={204: None, 404: OpenApiResponse(description="No such shortlist.")})
    def post(self, request: Request, shortlist_id: int) -> Response:
        try:
            services.shortlist_mark_done(shortlist_id=shortlist_id)
        except Shortlist.DoesNotExist:
            return Response({"detail": "No such shortlist."}, status=status.HTTP_404_NOT_FOUND)
        return Response(status=status.HTTP_204_NO_CONTENT)
