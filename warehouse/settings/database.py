"""Database: any PostgreSQL with pgvector through DATABASE_URL, or the embedded server by default."""
import dj_database_url

from .env import DATA_DIR, env_int, env_str

DATABASE_URL = env_str("DATABASE_URL", "")

if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
else:
    DATABASES = {
        "default": {
            "ENGINE": "warehouse.embedded_db",
            "NAME": env_str("STOCKMATCH_DB_NAME", "stockmatch"),
            "PGDATA": str(DATA_DIR / "pgdata"),
            "CONN_MAX_AGE": 0,
        }
    }
DATABASES["default"].setdefault("TEST", {})
# Parallel test runs on one server (several developers, CI) can keep their test databases apart.
DATABASES["default"]["TEST"].setdefault("NAME", env_str("STOCKMATCH_TEST_DB_NAME", "") or None)
