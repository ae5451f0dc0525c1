from django.db import migrations


class Migration(migrations.Migration):
    """pgvector must exist before any vector column; every vector migration depends on this one."""

    initial = True
    dependencies = []
    operations = [
        migrations.RunSQL("CREATE EXTENSION IF NOT EXISTS vector", reverse_sql=migrations.RunSQL.noop),
    ]
