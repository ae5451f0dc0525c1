"""Staff roles. Each is a Django group; pages and APIs check membership (superusers pass all)."""
from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

WAREHOUSE = "warehouse"
CATALOG = "catalog"
ALL_ROLES = (WAREHOUSE, CATALOG)


def has_role(user: AbstractBaseUser | AnonymousUser | None, role: str) -> bool:
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return user.groups.filter(name=role).exists()
