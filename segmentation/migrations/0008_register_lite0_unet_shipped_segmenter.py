"""The shipped segmenter is now ``lite0_unet`` (an EfficientNet-Lite0 encoder with a U-Net decoder, 256 px) in
models/segmenter/lite0_unet.pt; the Tiramisu it replaces moved to models/segmenter/reference/, where it stays the
reference the new network is judged against. The new weights are registered and an installation whose active version was the
shipped file moves onto them, while a version trained here stays active (``versions.shipped_adopt``); then rows
that named the Tiramisu's old path follow the file."""

from django.db import migrations

OLD_PATH = "models/segmenter/tiramisu_light.pt"
NEW_PATH = "models/segmenter/reference/tiramisu_light.pt"


def adopt_new_shipped(apps, schema_editor):
    from segmentation.versions import shipped_adopt

    model = apps.get_model("segmentation", "SegmenterModel")
    shipped_adopt(model)
    model.objects.filter(weights_path=OLD_PATH).update(weights_path=NEW_PATH)


def back_to_old_path(apps, schema_editor):
    apps.get_model("segmentation", "SegmenterModel").objects.filter(weights_path=NEW_PATH).update(
        weights_path=OLD_PATH
    )


class Migration(migrations.Migration):
    dependencies = [("segmentation", "0007_register_160c_shipped_segmenter")]

    operations = [migrations.RunPython(adopt_new_shipped, back_to_old_path)]
