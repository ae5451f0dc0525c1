import django.contrib.postgres.indexes
import django.db.models.functions.comparison
import pgvector.django.halfvec
import pgvector.django.indexes
import pgvector.django.vector
from django.db import migrations, models

# Frozen copies (a migration never imports app code): the sizes with HNSW graphs, with the type each graph
# stores and its ef_construction (search.INDEXED_DIMENSIONS), and the category kinds.
DIMENSIONS = {256: ("vector", 128), 1280: ("halfvec", 64)}
KINDS = ("topwear", "bottomwear", "full-body", "footwear", "outerwear", "accessory")
OLD_INDEXES = ("productembedding_vector_hnsw", *(f"pe_hnsw_{kind.replace('-', '_')}" for kind in KINDS))

# Vectors of smaller models were zero-padded to 1280: cut each back to its model's dimension. A padded
# tail that is not zero means the row's model records the wrong dimension; stop rather than guess.
CUT_BACK = """
DO $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM matching_productembedding e JOIN matching_embeddingmodel m ON m.id = e.model_id
         WHERE m.dimension < vector_dims(e.vector)
           AND vector_norm(subvector(e.vector, m.dimension + 1, vector_dims(e.vector) - m.dimension)) > 1e-6
    ) THEN
        RAISE EXCEPTION 'Vectors longer than their model''s dimension with a non-zero tail: delete or re-embed them'
            ' (matching_productembedding rows whose model_id has the wrong EmbeddingModel.dimension).';
    END IF;
END $$;
UPDATE matching_productembedding e SET vector = subvector(e.vector, 1, m.dimension)
  FROM matching_embeddingmodel m WHERE m.id = e.model_id AND m.dimension < vector_dims(e.vector);
"""
PAD_AGAIN = """
UPDATE matching_productembedding
   SET vector = vector || array_fill(0::real, ARRAY[1280 - vector_dims(vector)])::vector
 WHERE vector_dims(vector) < 1280;
"""
# ALTER COLUMN ... TYPE resets the column's storage to the type's default (EXTERNAL): 0004 explains PLAIN.
PLAIN = "ALTER TABLE matching_productembedding ALTER COLUMN vector SET STORAGE PLAIN"


FIELDS = {"vector": pgvector.django.vector.VectorField, "halfvec": pgvector.django.halfvec.HalfVectorField}


def hnsw(dimension: int, kind: str | None) -> pgvector.django.indexes.HnswIndex:
    graph_type, ef_construction = DIMENSIONS[dimension]
    condition = models.Q(dimensions=dimension) & (models.Q(category_kind=kind) if kind else models.Q())
    suffix = f"_{kind.replace('-', '_')}" if kind else ""
    return pgvector.django.indexes.HnswIndex(
        django.contrib.postgres.indexes.OpClass(
            django.db.models.functions.comparison.Cast("vector", FIELDS[graph_type](dimensions=dimension)),
            name=f"{graph_type}_cosine_ops",
        ),
        condition=condition, ef_construction=ef_construction, m=16, name=f"pe_hnsw_{dimension}{suffix}",
    )


class Migration(migrations.Migration):
    """Each model's vectors at their own dimension: an untyped ``vector`` column, a generated ``dimensions``
    column, and per-size expression HNSW indexes (main + one per kind) replacing the ``vector(1280)`` ones."""

    dependencies = [("matching", "0007_merge_20261202_0607")]

    operations = [
        *(migrations.RemoveIndex(model_name="productembedding", name=name) for name in OLD_INDEXES),
        migrations.RunSQL(migrations.RunSQL.noop, reverse_sql=PLAIN),  # after the type goes back to vector(1280)
        migrations.AlterField(
            model_name="productembedding", name="vector", field=pgvector.django.vector.VectorField(),
        ),
        migrations.RunSQL(CUT_BACK, reverse_sql=PAD_AGAIN),
        migrations.RunSQL(PLAIN, reverse_sql=migrations.RunSQL.noop),
        migrations.AddField(
            model_name="productembedding",
            name="dimensions",
            field=models.GeneratedField(
                db_persist=True,
                expression=models.Func(models.F("vector"), function="vector_dims",
                                       output_field=models.SmallIntegerField()),
                output_field=models.SmallIntegerField(),
            ),
        ),
        *(migrations.AddIndex(model_name="productembedding", index=hnsw(dimension, kind))
          for dimension in DIMENSIONS for kind in (None, *KINDS)),
    ]
