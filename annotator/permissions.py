"""Who may do what on the dashboard: one Django permission per kind of act, and the two groups a lab
hands out. A staff account holds none of them until it is given a group or a permission; a superuser
holds them all. Every dashboard page and action names the permission it needs (`dashboard_permission`)."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

VIEW = "annotator.view_dashboard"
REVIEW = "annotator.review_answers"
PAY = "annotator.pay_workers"
MODERATE = "annotator.moderate_workers"
MANAGE_HITS = "annotator.manage_hits"

GROUPS = {
    "reviewer": ("view_dashboard", "review_answers", "moderate_workers"),
    "paymaster": ("view_dashboard", "pay_workers", "manage_hits"),
}


def groups_ensure(**kwargs) -> None:
    """Create the groups with their permissions (after every migrate; re-running changes nothing, and
    permissions a lab added to a group by hand stay)."""
    from django.contrib.auth.models import Group, Permission

    for name, codenames in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(*Permission.objects.filter(content_type__app_label="annotator", codename__in=codenames))


def _label(permission: str) -> str:
    from django.contrib.auth.models import Permission

    codename = permission.split(".", 1)[1]
    row = Permission.objects.filter(content_type__app_label="annotator", codename=codename).first()
    return row.name if row else codename


def dashboard_permission(permission: str):
    """Security behavior: anyone not signed in as staff goes to the admin login; a staff account without
    `permission` gets a 403 page that names it and the groups that hold it, and nothing changes."""

    def decorate(view):
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            user = request.user
            if not (user.is_active and user.is_staff):
                return redirect_to_login(request.get_full_path(), "admin:login")
            if not user.has_perm(permission):
                codename = permission.split(".", 1)[1]
                groups = [name for name, codenames in GROUPS.items() if codename in codenames]
                return render(
                    request,
                    "dashboard/forbidden.html",
                    {"permission": _label(permission), "groups": groups},
                    status=403,
                )
            return view(request, *args, **kwargs)

        return wrapped

    return decorate
