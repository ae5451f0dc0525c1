"""The shipped weights in models/segmenter/ were replaced by tiramisu_light-160b (tiramisu_light-160 trained 110
minutes more at 160 px): register them and move an installation whose active version was the shipped file onto
them; a version trained here stays active (``versions.shipped_adopt``)."""

from django.db import migrations


def adopt_new_shipped(apps, schema_editor):
    from segmentation.versions import shipped_adopt

    shipped_adopt(apps.get_model("segmentation", "SegmenterModel"))


class Migration(migrations.Migration):
    dependencies = [("segmentation", "0005_register_160px_shipped_segmenter")]

    operations = [migrations.RunPython(adopt_new_shipped, migrations.RunPython.noop)]
