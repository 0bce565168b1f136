"""The ingestion outbox in the Django admin: batches not yet processed, read-only.

Derived work that keeps failing (tracking.derived) is set aside as dead with its error; the system
administrator sees it here and runs it again with `manage.py outbox_rerun` once the cause is fixed.
Processed batches are not listed (they are many, and nothing is left to do with them).
"""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.admin import ReadOnlyAdmin
from tracking.models import IngestOutbox

DEAD = "dead"
RETRYING = "retrying"
WAITING = "waiting"


def outbox_state(row: IngestOutbox) -> str:
    if row.processed_at is not None:
        return gettext("processed")
    if row.dead_at is not None:
        return gettext("set aside (dead)")
    if row.attempts:
        return gettext("failed, waiting for a retry")
    return gettext("waiting")


class OutboxStateFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [
            (DEAD, gettext("set aside (dead)")),
            (RETRYING, gettext("failed, waiting for a retry")),
            (WAITING, gettext("waiting")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == DEAD:
            return queryset.filter(dead_at__isnull=False)
        if self.value() == RETRYING:
            return queryset.filter(dead_at__isnull=True, attempts__gt=0)
        if self.value() == WAITING:
            return queryset.filter(dead_at__isnull=True, attempts=0)
        return queryset


@admin.register(IngestOutbox)
class IngestOutboxAdmin(ReadOnlyAdmin):
    list_display = ["id", "state", "created_at", "terminal_count", "attempts", "next_attempt_at", "dead_at", "error"]
    list_filter = [OutboxStateFilter]
    ordering = ["id"]
    show_full_result_count = False
    fields = readonly_fields = (
        "state",
        "created_at",
        "first_device_time",
        "last_device_time",
        "terminal_ids",
        "attempts",
        "next_attempt_at",
        "dead_at",
        "last_error",
        "rerun",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[IngestOutbox]:
        # outbox_pending_idx: the unprocessed rows only.
        return super().get_queryset(request).filter(processed_at__isnull=True)

    @admin.display(description=_("state"))
    def state(self, row: IngestOutbox) -> str:
        return outbox_state(row)

    @admin.display(description=_("terminals"))
    def terminal_count(self, row: IngestOutbox) -> int:
        return len(row.terminal_ids)

    @admin.display(description=_("last error"))
    def error(self, row: IngestOutbox) -> str:
        return row.last_error.splitlines()[0][:120] if row.last_error else ""

    @admin.display(description=_("how to re-run"))
    def rerun(self, row: IngestOutbox) -> str:
        if row.dead_at is None:
            return gettext("Retried automatically; nothing to do.")
        return gettext(
            "Once the cause is fixed, on the server: manage.py outbox_rerun --by NAME --reason REASON %(id)s"
        ) % {"id": row.pk}
