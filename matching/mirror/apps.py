from django.apps import AppConfig


class MirrorConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "matching.mirror"
    label = "mirror"
    verbose_name = "Smart mirror"
