"""Django admin pages that show personal data: masked, and every list and record opened audited.

The admin is for reference data and accounts; a filing record's full identity is read on the record
page, which asks the policy. Here ID numbers and phones are always masked, and each changelist
(with what was searched) and each record opened leaves an audit row, like every other look.
"""

from typing import Any

from django.http import HttpRequest, HttpResponse

from accounts.admin import ReadOnlyAdmin
from accounts.audit import audit_record


class PersonalDataAdmin(ReadOnlyAdmin):
    audit_object_type = ""

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        if response.status_code == 200:
            audit_record(
                action="admin.list",
                object_type=self.audit_object_type,
                query={key: value[:100] for key, value in request.GET.items()},
                result_count=getattr(getattr(response, "context_data", {}).get("cl"), "result_count", None),
                request=request,
            )
        return response

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        if response.status_code == 200:
            audit_record(
                action="admin.view",
                object_type=self.audit_object_type,
                object_id=object_id[:40],
                request=request,
            )
        return response
