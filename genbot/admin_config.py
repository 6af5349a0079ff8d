from django.contrib.admin.apps import AdminConfig


class GenbotAdminConfig(AdminConfig):
    """The Django admin with genbot's site: a home page with today's figures."""

    default_site = "genbot.admin_site.GenbotAdminSite"
