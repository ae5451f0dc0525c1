from django.contrib import admin

from .models import SegmentationExample, SegmenterModel


@admin.register(SegmentationExample)
class SegmentationExampleAdmin(admin.ModelAdmin):
    list_display = ("id", "source", "split", "kind", "origin", "created")
    search_fields = ("origin",)
    list_filter = ("source", "split", "kind")


@admin.register(SegmenterModel)
class SegmenterModelAdmin(admin.ModelAdmin):
    list_display = ("name", "architecture", "active", "val_iou", "created")
    list_filter = ("active", "architecture")
    readonly_fields = ("weights_sha256", "metrics", "training_data", "config", "created")
