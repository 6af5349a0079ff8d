from functools import partial

from django.contrib import admin

from billing.money import format_amount

from . import dashboard

# The admin home shows money one way (its figures are read by staff of every language).
money = partial(format_amount, language="en")


class GenbotAdminSite(admin.AdminSite):
    site_header = "genbot"
    site_title = "genbot admin"
    index_title = "Back office"

    def index(self, request, extra_context=None):
        figures = dashboard.today_figures()
        days = dashboard.last_days(30)
        context = {
            "figures": figures,
            "figures_money": {k: money(figures[k]) for k in ("topups", "revenue")},
            "chart": dashboard.chart_series(days),
            "chart_first": days[0].day,
            "chart_last": days[-1].day,
            "chart_money_top": money(dashboard.chart_series(days)["money_top"]),
            "models": _job_rows(dashboard.model_figures(30)),
            "ai_providers": _job_rows(dashboard.model_figures(30, by="provider")),
            "funnel": dashboard.funnel(30),
            "topups": [
                {"label": row.label, "payments": row.payments, "paid": money(row.paid), "refunded": money(row.refunded),
                 "net": money(row.net)}
                for row in dashboard.topups_by_provider(30)
            ],
            "growth": _growth_context(dashboard.growth_figures(30)),
            "rq_dashboard": request.user.is_superuser,
            **(extra_context or {}),
        }
        return super().index(request, context)


def _job_rows(rows: list[dashboard.ModelFigures]) -> list[dict]:
    return [
        {"key": row.offer_key, "jobs": row.jobs, "revenue": money(row.revenue), "cost": money(row.provider_cost),
         "margin": money(row.margin)}
        for row in rows
    ]


def _growth_context(growth: dashboard.GrowthFigures) -> dict:
    return {
        "referrals": growth.referrals, "referees_paid": growth.referees_paid,
        "referral_bonus": money(growth.referral_bonus), "bonus_credited": money(growth.bonus_credited),
        "bonus_by_source": [(source or "—", money(total)) for source, total in growth.bonus_by_source.items()],
        "taken_back": money(growth.taken_back), "written_off": money(growth.written_off),
        "redemptions": [
            {"code": row["code"], "n": row["n"], "amount": money(row["amount"] or 0)} for row in growth.redemptions
        ],
    }
