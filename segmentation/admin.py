from django.contrib import admin, messages

from .models import SegmentationExample, SegmenterModel
from .versions import segmenter_activate


@admin.register(SegmentationExample)
class SegmentationExampleAdmin(admin.ModelAdmin):
    list_display = ("id", "source", "split", "kind", "origin", "created")
    search_fields = ("origin",)
    list_filter = ("source", "split", "kind")


@admin.register(SegmenterModel)
class SegmenterModelAdmin(admin.ModelAdmin):
    """Versions are registered by training commands and switched by the action; the active one is never deleted."""

    list_display = ("name", "architecture", "active", "val_iou", "created")
    list_filter = ("active", "architecture")
    readonly_fields = ("name", "architecture", "weights_path", "weights_sha256", "active", "metrics", "training_data",
                       "config", "created")
    actions = ["activate"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj: SegmenterModel | None = None) -> bool:
        return super().has_delete_permission(request, obj) and not (obj is not None and obj.active)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # one at a time, from a version's page, never the active one
        return actions

    @admin.action(permissions=["change"], description="Activate: serve this segmenter from now on")
    def activate(self, request, queryset) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Choose exactly one version to activate.", messages.WARNING)
            return
        row = segmenter_activate(model_id=queryset.get().pk)
        self.message_user(request, f"{row.name} is the active segmenter.", messages.SUCCESS)
