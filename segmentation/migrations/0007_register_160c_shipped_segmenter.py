"""The shipped weights in models/segmenter/ were replaced by tiramisu_light-160c (tiramisu_light-160b trained 100
minutes more at 160 px, learning rate 0.0007): register them and move an installation whose active version was the
shipped file onto them; a version trained here stays active (``versions.shipped_adopt``)."""

from django.db import migrations


def adopt_new_shipped(apps, schema_editor):
    from segmentation.versions import shipped_adopt

    shipped_adopt(apps.get_model("segmentation", "SegmenterModel"))


class Migration(migrations.Migration):
    dependencies = [("segmentation", "0006_register_160b_shipped_segmenter")]

    operations = [migrations.RunPython(adopt_new_shipped, migrations.RunPython.noop)]
