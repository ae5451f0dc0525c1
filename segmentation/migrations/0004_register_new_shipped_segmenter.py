"""The shipped weights in models/segmenter/ were replaced by better ones (tiramisu_light-mix8, eight classes):
register them, and move an installation whose active version was the shipped file onto them, since the file
it names no longer holds the weights its checksum records. A version trained here stays active."""

from django.db import migrations


def adopt_new_shipped(apps, schema_editor):
    from segmentation.versions import shipped_adopt

    shipped_adopt(apps.get_model("segmentation", "SegmenterModel"))


class Migration(migrations.Migration):
    dependencies = [("segmentation", "0003_segmentation_example_origin")]

    operations = [migrations.RunPython(adopt_new_shipped, migrations.RunPython.noop)]
