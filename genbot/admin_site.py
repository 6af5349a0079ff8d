from django.contrib import admin

from billing.money import format_amount

from . import dashboard


class GenbotAdminSite(admin.AdminSite):
    site_header = "genbot"
    site_title = "genbot admin"
    index_title = "Back office"

    def index(self, request, extra_context=None):
        figures = dashboard.today_figures()
        days = dashboard.last_days(30)
        context = {
            "figures": figures,
            "figures_money": {k: format_amount(figures[k], "en") for k in ("topups", "revenue")},
            "chart": dashboard.chart_series(days),
            "chart_first": days[0].day,
            "chart_last": days[-1].day,
            "chart_money_top": format_amount(dashboard.chart_series(days)["money_top"], "en"),
            "models": [
                {"key": row.offer_key, "jobs": row.jobs, "revenue": format_amount(row.revenue, "en"),
                 "cost": format_amount(row.provider_cost, "en"), "margin": format_amount(row.margin, "en")}
                for row in dashboard.model_figures(30)
            ],
            "rq_dashboard": request.user.is_superuser,
            **(extra_context or {}),
        }
        return super().index(request, context)
