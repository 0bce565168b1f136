"""Station webhook messages in the Django admin, read-only: what was delivered, what is still being
retried, and what was given up with its error (`manage.py webhook_rerun` sends those again).

The message's body is not shown: it names a stolen bike and where it was seen (rounded), which the
system administrator does not see by being one (accounts.roles).
"""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.admin import ReadOnlyAdmin
from cases.models import WebhookDelivery

DELIVERED = "delivered"
GIVEN_UP = "given_up"
PENDING = "pending"


def delivery_state(row: WebhookDelivery) -> str:
    if row.delivered_at is not None:
        return gettext("delivered")
    if row.gave_up_at is not None:
        return gettext("given up")
    return gettext("being retried") if row.attempts else gettext("waiting")


class DeliveryStateFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(GIVEN_UP, gettext("given up")), (PENDING, gettext("waiting")), (DELIVERED, gettext("delivered"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == GIVEN_UP:
            return queryset.filter(delivered_at__isnull=True, gave_up_at__isnull=False)
        if self.value() == PENDING:
            return queryset.filter(delivered_at__isnull=True, gave_up_at__isnull=True)
        if self.value() == DELIVERED:
            return queryset.filter(delivered_at__isnull=False)
        return queryset


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["id", "state", "station", "event", "created_at", "attempts", "last_attempt_at", "last_error"]
    list_filter = [DeliveryStateFilter, "event", "station"]
    list_select_related = ["station"]
    ordering = ["-id"]
    show_full_result_count = False
    fields = readonly_fields = (
        "state",
        "station",
        "event",
        "url",
        "created_at",
        "attempts",
        "last_attempt_at",
        "last_error",
        "delivered_at",
        "gave_up_at",
        "rerun",
    )

    @admin.display(description=_("state"))
    def state(self, row: WebhookDelivery) -> str:
        return delivery_state(row)

    @admin.display(description=_("how to re-run"))
    def rerun(self, row: WebhookDelivery) -> str:
        if row.gave_up_at is None or row.delivered_at is not None:
            return gettext("Nothing to do.")
        return gettext(
            "Once the cause is fixed, on the server: manage.py webhook_rerun --by NAME --reason REASON %(id)s"
        ) % {"id": row.pk}
