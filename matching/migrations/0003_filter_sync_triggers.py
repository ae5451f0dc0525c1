from django.db import migrations

# The filter columns of matching_productembedding repeat product data. Triggers keep them right whatever
# writes the catalogue: admin saves, services, queryset update() (which sends no signals), raw SQL.
FORWARD = """
CREATE OR REPLACE FUNCTION matching_sync_in_stock() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE ids bigint[];
BEGIN
    IF TG_OP = 'DELETE' THEN ids := ARRAY[OLD.product_id];
    ELSIF TG_OP = 'INSERT' THEN ids := ARRAY[NEW.product_id];
    ELSE ids := ARRAY[OLD.product_id, NEW.product_id];
    END IF;
    UPDATE matching_productembedding AS e
       SET in_stock = EXISTS (SELECT 1 FROM catalog_variant v WHERE v.product_id = e.product_id AND v.stock_quantity > 0)
     WHERE e.product_id = ANY(ids)
       AND e.in_stock IS DISTINCT FROM
           EXISTS (SELECT 1 FROM catalog_variant v WHERE v.product_id = e.product_id AND v.stock_quantity > 0);
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION matching_sync_product() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE matching_productembedding AS e
       SET status = NEW.status, gender = NEW.gender, category_id = NEW.category_id,
           category_kind = (SELECT c.kind FROM catalog_category c WHERE c.id = NEW.category_id)
     WHERE e.product_id = NEW.id;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION matching_sync_category() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE matching_productembedding SET category_kind = NEW.kind WHERE category_id = NEW.id;
    RETURN NULL;
END $$;

CREATE TRIGGER matching_variant_stock AFTER INSERT OR DELETE OR UPDATE OF stock_quantity, product_id
    ON catalog_variant FOR EACH ROW EXECUTE FUNCTION matching_sync_in_stock();
CREATE TRIGGER matching_product_filters AFTER UPDATE OF status, gender, category_id ON catalog_product
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.gender IS DISTINCT FROM NEW.gender
                       OR OLD.category_id IS DISTINCT FROM NEW.category_id)
    EXECUTE FUNCTION matching_sync_product();
CREATE TRIGGER matching_category_kind AFTER UPDATE OF kind ON catalog_category
    FOR EACH ROW WHEN (OLD.kind IS DISTINCT FROM NEW.kind) EXECUTE FUNCTION matching_sync_category();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS matching_variant_stock ON catalog_variant;
DROP TRIGGER IF EXISTS matching_product_filters ON catalog_product;
DROP TRIGGER IF EXISTS matching_category_kind ON catalog_category;
DROP FUNCTION IF EXISTS matching_sync_in_stock();
DROP FUNCTION IF EXISTS matching_sync_product();
DROP FUNCTION IF EXISTS matching_sync_category();
"""


class Migration(migrations.Migration):
    dependencies = [("matching", "0002_embeddings"), ("catalog", "0001_initial")]
    operations = [migrations.RunSQL(FORWARD, reverse_sql=BACKWARD)]
