from django.contrib import admin, messages
from django.utils.html import format_html

from .heads import head_activate, head_deactivate
from .models import ClassifierHead, EmbeddingModel, ModelState
from .services import embedding_model_activate


@admin.register(EmbeddingModel)
class EmbeddingModelAdmin(admin.ModelAdmin):
    list_display = ["name", "active", "state", "progress_display", "vectors", "threshold_display", "created_at"]
    list_filter = ["state", "active", "backbone"]
    readonly_fields = [
        "name", "embedder", "backbone", "weights_checksum", "dimension", "preprocessing", "metrics", "thresholds",
        "active", "state", "progress", "progress_display", "created_at", "activated_at",
    ]
    actions = ["activate"]

    def has_add_permission(self, request) -> bool:  # noqa: ANN001
        return False  # versions are created from settings.EMBEDDERS by the services

    def has_delete_permission(self, request, obj: EmbeddingModel | None = None) -> bool:
        # Deleting a version deletes its vectors: never the one serving (nor one being built into).
        if obj is not None and (obj.active or obj.state == ModelState.BUILDING):
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # one at a time, from a version's page, never the active one
        return actions

    @admin.display(description="re-embedding")
    def progress_display(self, obj: EmbeddingModel) -> str:
        progress = obj.progress or {}
        if obj.state != ModelState.BUILDING or not progress.get("total"):
            return "—"
        done, total = int(progress.get("done", 0)), int(progress["total"])
        return format_html("{} / {} ({}%)", done, total, round(100 * done / total))

    @admin.display(description="vectors")
    def vectors(self, obj: EmbeddingModel) -> int:
        return obj.embeddings.count()

    @admin.display(description="threshold")
    def threshold_display(self, obj: EmbeddingModel) -> str:
        default = (obj.thresholds or {}).get("default")
        if not default:
            return "not calibrated"
        alpha = obj.open_set_alpha
        scale = f" on top − {alpha:g}·mean(2–10)" if alpha else ""
        return f"{default['score']:.3f}{scale} (+{default['margin']:.3f})"

    @admin.action(permissions=["change"], description="Activate: re-embed the catalogue, then switch")
    def activate(self, request, queryset) -> None:  # noqa: ANN001
        for model in queryset:
            started = embedding_model_activate(embedder_name=model.embedder)
            if started.active:
                self.message_user(request, f"{started.name} is already active.", messages.INFO)
            else:
                self.message_user(
                    request, f"{started.name}: re-embedding started; {started.name} serves once it is done. "
                    f"The current version keeps serving meanwhile.", messages.SUCCESS,
                )


@admin.register(ClassifierHead)
class ClassifierHeadAdmin(admin.ModelAdmin):
    """Versions made by ``manage.py train_heads``; activation there follows held-out figures, here it is manual."""

    list_display = ["name", "attribute", "embedding_model", "active", "val_accuracy", "baseline_display", "created_at"]
    list_filter = ["attribute", "active", "embedding_model"]
    readonly_fields = [
        "name", "attribute", "embedding_model", "architecture", "labels", "input_dimension", "appearance",
        "weights_path", "weights_sha256", "metrics", "training", "active", "created_at", "activated_at",
    ]
    actions = ["activate", "deactivate"]

    def has_add_permission(self, request) -> bool:
        return False  # heads are trained by `manage.py train_heads`

    @admin.display(description="held-out accuracy")
    def val_accuracy(self, obj: ClassifierHead):
        return (obj.metrics.get("val") or {}).get("accuracy")

    @admin.display(description="baseline")
    def baseline_display(self, obj: ClassifierHead) -> str:
        baseline = obj.metrics.get("baseline") or {}
        return f"{baseline.get('source', '—')}: {baseline.get('accuracy')}"

    @admin.action(
        permissions=["change"], description="Activate (replaces the active head of that version and attribute)"
    )
    def activate(self, request, queryset) -> None:
        for head in queryset:
            head_activate(head_id=head.pk)
        self.message_user(request, f"{queryset.count()} head(s) activated.", messages.SUCCESS)

    @admin.action(permissions=["change"], description="Deactivate (kNN voting answers until another head is active)")
    def deactivate(self, request, queryset) -> None:
        for head in queryset:
            head_deactivate(head_id=head.pk)
        self.message_user(request, f"{queryset.count()} head(s) deactivated.", messages.SUCCESS)
