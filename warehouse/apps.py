from django.apps import AppConfig
from django.db.models.signals import post_migrate


class WarehouseConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "warehouse"
    verbose_name = "Warehouse intake"

    def ready(self) -> None:
        from matching.training.data import register_pair_provider

        from . import tasks  # noqa: F401 - registers the tasks that warehouse.queue sends by name
        from .roles import sync_role_permissions
        from .selectors import training_groups

        register_pair_provider("confirmed snapshots", training_groups)
        post_migrate.connect(sync_role_permissions, sender=self, dispatch_uid="stockmatch-role-permissions")
