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


# Model permissions each role's group receives (app_label, model names or "*").
ROLE_PERMISSIONS = {
    CATALOG: {"catalog": "*", "matching": "*", "segmentation": "*", "warehouse": ("view",)},
    WAREHOUSE: {"catalog": ("view",)},
}


def sync_role_permissions(**kwargs) -> None:
    """post_migrate hook: give each role group its model permissions (idempotent)."""
    from django.contrib.auth.models import Group, Permission

    for role, grants in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for app_label, actions in grants.items():
            perms = Permission.objects.filter(content_type__app_label=app_label)
            if actions != "*":
                perms = [p for p in perms if p.codename.split("_", 1)[0] in actions]
            wanted.extend(perms)
        group.permissions.add(*wanted)
