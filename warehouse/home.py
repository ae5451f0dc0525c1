from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from .roles import WAREHOUSE, has_role


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send each person to their screen: the phone intake for warehouse staff, the admin for the rest."""
    user = request.user
    if has_role(user, WAREHOUSE) and not user.is_superuser:
        return redirect("/intake/")
    if user.is_staff:
        return redirect("admin:index")
    return redirect("/intake/")
