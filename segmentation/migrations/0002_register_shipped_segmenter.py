"""Register the weights shipped in models/segmenter/ as a SegmenterModel version (idempotent, by checksum).

Active only when no other version is. The runtime does not depend on this row: without it, the shipped
file is used directly."""

from django.db import migrations


def register_shipped(apps, schema_editor):
    from segmentation.versions import shipped_register

    shipped_register(apps.get_model("segmentation", "SegmenterModel"))


class Migration(migrations.Migration):
    dependencies = [("segmentation", "0001_initial")]

    operations = [migrations.RunPython(register_shipped, migrations.RunPython.noop)]
