from django.conf import settings
from django.contrib.gis.db import models as gis
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Station, Township
from vehicles.models import Vehicle


class ReportStatus(models.TextChoices):
    RECEIVED = "received", _("received (受理)")
    FILED_CRIMINAL = "filed_criminal", _("filed as a criminal case (刑事立案)")
    FILED_PUBLIC_ORDER = "filed_public_order", _("handled as a public-order case (治安案件)")
    NOT_FILED = "not_filed", _("not filed (不予立案)")
    SOLVED = "solved", _("solved (破案)")
    RECOVERED = "recovered", _("recovered (追回)")
    RETURNED = "returned", _("returned to the owner (发还)")
    CLOSED = "closed", _("closed (结案)")
    WITHDRAWN = "withdrawn", _("withdrawn (撤案)")


# The workflow of docs/domain.md#the-reports-workflow. A report not filed as a case can still end with the bike found.
TRANSITIONS: dict[str, set[str]] = {
    ReportStatus.RECEIVED: {
        ReportStatus.FILED_CRIMINAL,
        ReportStatus.FILED_PUBLIC_ORDER,
        ReportStatus.NOT_FILED,
        ReportStatus.RECOVERED,
        ReportStatus.WITHDRAWN,
    },
    ReportStatus.FILED_CRIMINAL: {ReportStatus.SOLVED, ReportStatus.RECOVERED, ReportStatus.WITHDRAWN},
    ReportStatus.FILED_PUBLIC_ORDER: {ReportStatus.SOLVED, ReportStatus.RECOVERED, ReportStatus.WITHDRAWN},
    ReportStatus.NOT_FILED: {ReportStatus.RECOVERED, ReportStatus.CLOSED, ReportStatus.WITHDRAWN},
    ReportStatus.SOLVED: {ReportStatus.RECOVERED, ReportStatus.CLOSED},
    ReportStatus.RECOVERED: {ReportStatus.RETURNED},
    ReportStatus.RETURNED: {ReportStatus.CLOSED},
    ReportStatus.CLOSED: set(),
    ReportStatus.WITHDRAWN: set(),
}
# While a report is in one of these, its bike is missing: marked stolen in the registry.
MISSING_STATUSES = {
    ReportStatus.RECEIVED,
    ReportStatus.FILED_CRIMINAL,
    ReportStatus.FILED_PUBLIC_ORDER,
    ReportStatus.NOT_FILED,
    ReportStatus.SOLVED,
}
# Open reports keep the bike's positions under legal hold.
CLOSED_STATUSES = {ReportStatus.CLOSED, ReportStatus.WITHDRAWN}


class TheftReport(models.Model):
    """接警登记: every reported theft is accepted, registered bike or not."""

    class Channel(models.TextChoices):
        CALL_110 = "call_110", _("110 call")
        WALK_IN = "walk_in", _("walk-in")
        ONLINE = "online", _("online, by the owner")

    number = models.CharField(_("report number"), max_length=24)
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    station = models.ForeignKey(Station, models.PROTECT, related_name="theft_reports", verbose_name=_("station"))
    receiving_officer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("receiving officer"),
    )
    vehicle = models.ForeignKey(
        Vehicle, models.PROTECT, null=True, blank=True, related_name="theft_reports", verbose_name=_("vehicle")
    )
    # A bike not in the registry is described by hand.
    unregistered_description = models.CharField(_("description of an unregistered bike"), max_length=300, blank=True)
    reporter_name = models.CharField(_("reporting person"), max_length=50)
    reporter_phone = models.CharField(_("reporter's phone"), max_length=11)
    reporter_id_number = models.CharField(_("reporter's ID number"), max_length=18, blank=True)
    last_seen_at = models.DateTimeField(_("last seen at"))
    missing_at = models.DateTimeField(_("found missing at"))
    place_address = models.CharField(_("place"), max_length=200)
    place_point = gis.PointField(_("place on the map"), geography=True, srid=4326, null=True, blank=True)
    # The point was found from the address by the geocoder, not picked on the map by the officer.
    place_geocoded = models.BooleanField(_("place geocoded from the address"), default=False, db_default=False)
    township = models.ForeignKey(
        Township, models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("township")
    )
    locked = models.BooleanField(_("the bike was locked"), null=True)
    narrative = models.TextField(_("circumstances"), max_length=2000, blank=True)
    status = models.CharField(_("status"), max_length=20, choices=ReportStatus.choices, default=ReportStatus.RECEIVED)
    status_changed_at = models.DateTimeField(_("status changed at"), auto_now_add=True)
    # The report's duty (cases.rules): its receiving officer and the officers its station's leader
    # assigns to it. Only they trace the bike on the report's basis.
    assigned_officers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="assigned_reports", verbose_name=_("assigned officers")
    )

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = _("theft report")
        verbose_name_plural = _("theft reports")
        constraints = [
            models.UniqueConstraint(fields=["number"], name="theftreport_number_uniq"),
            # One open report per bike: a second report of the same theft is refused with the first's number.
            models.UniqueConstraint(
                fields=["vehicle"],
                condition=~Q(status__in=["closed", "withdrawn", "returned"]),
                name="theftreport_one_open_per_vehicle",
            ),
            models.CheckConstraint(condition=Q(last_seen_at__lte=models.F("missing_at")), name="theftreport_times"),
        ]
        indexes = [
            models.Index(fields=["station", "received_at"], name="theftreport_station_idx"),  # station lists
            models.Index(fields=["status"], name="theftreport_status_idx"),
            # Statistics: reports of partial months, and those changed since the rollup was built.
            models.Index(fields=["received_at"], name="theftreport_received_idx"),
            models.Index(fields=["status_changed_at"], name="theftreport_changed_idx"),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def registered(self) -> bool:
        return self.vehicle_id is not None


class ReportTransition(models.Model):
    """Every status change of a report, with who, when and why. Append-only."""

    report = models.ForeignKey(TheftReport, models.PROTECT, related_name="transitions", verbose_name=_("report"))
    from_status = models.CharField(_("from"), max_length=20, choices=ReportStatus.choices, blank=True)
    to_status = models.CharField(_("to"), max_length=20, choices=ReportStatus.choices)
    at = models.DateTimeField(_("at"), auto_now_add=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, null=True, related_name="+", verbose_name=_("officer")
    )
    note = models.CharField(_("note"), max_length=500, blank=True)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("report transition")
        verbose_name_plural = _("report transitions")

    def __str__(self) -> str:
        return f"{self.report_id}: {self.from_status} → {self.to_status}"


class Case(models.Model):
    """案件: a filed case; one ring may be behind many reports and vehicles."""

    class Kind(models.TextChoices):
        CRIMINAL = "criminal", _("criminal (刑事)")
        PUBLIC_ORDER = "public_order", _("public order (治安)")

    class Status(models.TextChoices):
        OPEN = "open", _("under investigation")
        SOLVED = "solved", _("solved")
        CLOSED = "closed", _("closed")

    number = models.CharField(_("case number (立案编号)"), max_length=32)
    kind = models.CharField(_("type"), max_length=12, choices=Kind.choices)
    station = models.ForeignKey(Station, models.PROTECT, related_name="cases", verbose_name=_("handling station"))
    officers = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="cases", verbose_name=_("officers"))
    # The day it was entered: a case cannot be backdated (its duty starts at filing).
    filed_on = models.DateField(_("filed on"))
    filed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, null=True, related_name="+", verbose_name=_("filed by")
    )
    # Empty while the case awaits approval (CASE_APPROVAL_BY_ANOTHER): until then it opens no duty.
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("approved by")
    )
    approved_at = models.DateTimeField(_("approved at"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.OPEN)
    solved_with_positioning = models.BooleanField(_("solved with positioning data"), default=False)
    summary = models.TextField(_("summary"), max_length=2000, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-filed_on", "-id"]
        verbose_name = _("case")
        verbose_name_plural = _("cases")
        constraints = [models.UniqueConstraint(fields=["number"], name="case_number_uniq")]
        permissions = [("export_evidence", _("Can export signed evidence bundles of reports and cases (audited)"))]

    def __str__(self) -> str:
        return self.number


class CaseLink(models.Model):
    """A report or a vehicle linked to a case; unlinking keeps the row with who, when and why."""

    case = models.ForeignKey(Case, models.PROTECT, related_name="links", verbose_name=_("case"))
    report = models.ForeignKey(
        TheftReport, models.PROTECT, null=True, blank=True, related_name="case_links", verbose_name=_("report")
    )
    vehicle = models.ForeignKey(
        Vehicle, models.PROTECT, null=True, blank=True, related_name="case_links", verbose_name=_("vehicle")
    )
    linked_at = models.DateTimeField(_("linked at"), auto_now_add=True)
    linked_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.PROTECT, related_name="+")
    unlinked_at = models.DateTimeField(_("unlinked at"), null=True, blank=True)
    unlinked_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.PROTECT, null=True, blank=True, related_name="+")
    unlink_reason = models.CharField(_("reason for unlinking"), max_length=200, blank=True)
    # A bike linked without a report opens its positions to the case's officers: the officer who
    # links it states why (recorded here and in the audit trail).
    reason = models.CharField(_("reason for linking"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("case link")
        verbose_name_plural = _("case links")
        constraints = [
            models.CheckConstraint(
                condition=Q(report__isnull=False, vehicle__isnull=True) | Q(report__isnull=True, vehicle__isnull=False),
                name="caselink_report_xor_vehicle",
            ),
            models.UniqueConstraint(
                fields=["case", "report"],
                condition=Q(unlinked_at__isnull=True, report__isnull=False),
                name="caselink_report_once",
            ),
            models.UniqueConstraint(
                fields=["case", "vehicle"],
                condition=Q(unlinked_at__isnull=True, vehicle__isnull=False),
                name="caselink_vehicle_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.case_id}: report {self.report_id} / vehicle {self.vehicle_id}"


class CaseStep(models.Model):
    """Every step of a case (filed, approved, linked, unlinked, solved, closed), with who, when and
    why: the case's history on its page. Append-only."""

    class Action(models.TextChoices):
        FILE = "file", _("filed (立案)")
        APPROVE = "approve", _("filing approved")
        LINK = "link", _("linked")
        UNLINK = "unlink", _("unlinked")
        SOLVE = "solve", _("solved (破案)")
        CLOSE = "close", _("closed (结案)")

    case = models.ForeignKey(Case, models.PROTECT, related_name="steps", verbose_name=_("case"))
    action = models.CharField(_("action"), max_length=8, choices=Action.choices)
    at = models.DateTimeField(_("at"), auto_now_add=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, null=True, related_name="+", verbose_name=_("officer")
    )
    # What a link step linked or unlinked.
    report = models.ForeignKey(
        TheftReport, models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("report")
    )
    vehicle = models.ForeignKey(
        Vehicle, models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("vehicle")
    )
    note = models.CharField(_("note"), max_length=500, blank=True)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("case step")
        verbose_name_plural = _("case steps")

    def __str__(self) -> str:
        return f"{self.case_id}: {self.action}"


class Sighting(models.Model):
    """A stolen bike seen moving: one row per movement episode, not per ping.

    An episode starts with a position of a bike under an open report and goes on while positions
    keep coming less than SIGHTING_EPISODE_GAP_MINUTES apart; officers on the case are notified once
    when it starts.
    """

    report = models.ForeignKey(TheftReport, models.PROTECT, related_name="sightings", verbose_name=_("report"))
    vehicle = models.ForeignKey(Vehicle, models.PROTECT, related_name="sightings", verbose_name=_("vehicle"))
    terminal_id = models.BigIntegerField(_("terminal"))
    started_at = models.DateTimeField(_("first position"))
    last_at = models.DateTimeField(_("latest position"))
    first_point = gis.PointField(_("first place"), geography=True, srid=4326)
    last_point = gis.PointField(_("latest place"), geography=True, srid=4326)
    positions = models.PositiveIntegerField(_("positions"), default=1)
    # The latest position that showed the bike moving (cases.alerts.services): a bike still for the episode
    # gap that moves again starts a new episode, as does a terminal silent for the gap.
    moved_at = models.DateTimeField(_("last moved at"), null=True, blank=True)
    notified_at = models.DateTimeField(_("officers notified at"), null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        verbose_name = _("sighting")
        verbose_name_plural = _("sightings")
        indexes = [models.Index(fields=["report", "last_at"], name="sighting_report_last_idx")]

    def __str__(self) -> str:
        return f"{self.report_id} {self.started_at:%Y-%m-%d %H:%M}"


class Notification(models.Model):
    """In-app notification for one user (sightings for case officers, alarms for the duty room)."""

    class Kind(models.TextChoices):
        SIGHTING = "sighting", _("stolen bike sighted")
        DISPLACEMENT = "displacement", _("armed bike moved or lost power")
        RESCUE = "rescue", _("rescue call (SOS, fall, collision)")
        CONFLICT = "conflict", _("terminal conflict")
        CLAIM = "claim", _("insurance claim")
        REVIEW = "review", _("looks on a stated reason to review")
        SECURITY = "security", _("security alert")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.CASCADE, related_name="notifications", verbose_name=_("user")
    )
    kind = models.CharField(_("kind"), max_length=14, choices=Kind.choices)
    # What to say, rendered in the reader's language when shown (cases.alerts.notification_texts): a
    # message key and its parameters. Title and body keep the text in the site language, for rows
    # written before messages had keys and for places that show a plain string (admin).
    message = models.CharField(_("message"), max_length=40, blank=True, default="")
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("text"), blank=True)
    link = models.CharField(_("link"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        indexes = [
            models.Index(
                fields=["user", "created_at"], condition=Q(read_at__isnull=True), name="notification_unread_idx"
            )
        ]

    def __str__(self) -> str:
        return self.title


class DutyCall(models.Model):
    """A call in a station's duty room: a displacement of an armed bike, or a rescue (SOS, fall,
    collision). The duty officer acknowledges, dispatches and closes it; the times are kept for the
    response-time statistics.
    """

    class Kind(models.TextChoices):
        DISPLACEMENT = "displacement", _("armed bike moved or lost power")
        RESCUE = "rescue", _("rescue call")
        # Two live gateway sessions of one terminal, or a second JT/T 808 registration: a clone?
        CONFLICT = "conflict", _("terminal conflict (cloned identity?)")

    class Status(models.TextChoices):
        NEW = "new", _("new")
        ACKNOWLEDGED = "acknowledged", _("acknowledged")
        DISPATCHED = "dispatched", _("dispatched")
        CONFIRMED = "confirmed", _("confirmed by the owner")
        DISMISSED = "dismissed", _("dismissed by the owner")
        CLOSED = "closed", _("closed")

    class OwnerAnswer(models.TextChoices):
        CONFIRMED = "confirmed", _("theft confirmed by the owner")
        DISMISSED = "dismissed", _("dismissed by the owner")

    kind = models.CharField(_("kind"), max_length=14, choices=Kind.choices)
    station = models.ForeignKey(Station, models.PROTECT, related_name="duty_calls", verbose_name=_("station"))
    alarm_id = models.BigIntegerField(_("alarm"), unique=True)
    vehicle = models.ForeignKey(Vehicle, models.PROTECT, related_name="duty_calls", verbose_name=_("vehicle"))
    point = gis.PointField(_("position"), geography=True, srid=4326, null=True, blank=True)
    raised_at = models.DateTimeField(_("raised at"))
    status = models.CharField(_("status"), max_length=14, choices=Status.choices, default=Status.NEW)
    acknowledged_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)
    dispatched_at = models.DateTimeField(_("dispatched at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("duty officer"),
    )
    note = models.TextField(_("notes"), blank=True)
    # When the call reached the duty room: response times are measured from here (raised_at is the
    # terminal's own time, late when the message was buffered).
    created_at = models.DateTimeField(_("received in the duty room at"), default=timezone.now, editable=False)
    # The owner's answer to a displacement call (cases.alerts.duty_room): kept even after the duty room closes it.
    owner_answer = models.CharField(_("owner's answer"), max_length=10, choices=OwnerAnswer.choices, blank=True)
    owner_answered_at = models.DateTimeField(_("owner answered at"), null=True, blank=True)

    class Meta:
        ordering = ["status", "-raised_at"]
        verbose_name = _("duty-room call")
        verbose_name_plural = _("duty-room calls")
        indexes = [models.Index(fields=["station", "status", "raised_at"], name="dutycall_queue_idx")]
        constraints = [
            # One open call per bike and kind: more alarms while it is open belong to the same call,
            # also when two workers process batches of the same terminal at once.
            models.UniqueConstraint(
                fields=["vehicle", "kind"],
                condition=Q(status__in=["new", "acknowledged", "confirmed", "dispatched"]),
                name="dutycall_one_open_per_vehicle_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.raised_at:%Y-%m-%d %H:%M}"


class WebhookDelivery(models.Model):
    """A JSON message for a station's webhook, stored with the event that caused it.

    cases.alerts.webhooks delivers it from a Celery task with retries; a row never attempted (the broker was
    down when it was queued) is queued again by the beat sweep, so nothing is lost to an outage.
    """

    station = models.ForeignKey(Station, models.CASCADE, related_name="+", verbose_name=_("station"))
    url = models.URLField(_("URL"))
    event = models.CharField(_("event"), max_length=40)
    payload = models.JSONField(_("payload"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_attempt_at = models.DateTimeField(_("last attempt at"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=300, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    gave_up_at = models.DateTimeField(_("gave up at"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        indexes = [
            # The resend sweep: rows still pending.
            models.Index(
                fields=["created_at"],
                condition=Q(delivered_at__isnull=True, gave_up_at__isnull=True),
                name="webhook_pending_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.station_id}"


class InsuranceClaim(models.Model):
    """A theft-loss claim: eligible once a report stays unrecovered past the scheme's waiting period."""

    class Status(models.TextChoices):
        ELIGIBLE = "eligible", _("eligible")
        SUBMITTED = "submitted", _("submitted")
        APPROVED = "approved", _("approved")
        PAID = "paid", _("paid")
        REJECTED = "rejected", _("rejected")

    class AfterRecovery(models.TextChoices):
        NONE = "", _("—")
        REFUND = "refund", _("owner returns the payout and takes the bike back")
        TO_INSURER = "to_insurer", _("the bike passes to the insurer")

    report = models.ForeignKey(TheftReport, models.PROTECT, related_name="claims", verbose_name=_("report"))
    policy = models.ForeignKey(
        "vehicles.InsurancePolicy", models.PROTECT, related_name="claims", verbose_name=_("policy")
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.ELIGIBLE)
    amount = models.DecimalField(_("amount (CNY)"), max_digits=9, decimal_places=2)
    eligible_at = models.DateTimeField(_("eligible since"))
    submitted_at = models.DateTimeField(_("submitted at"), null=True, blank=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("decided by")
    )
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    rejection_reason = models.CharField(_("reason for rejection"), max_length=300, blank=True)
    documents = models.JSONField(_("evidence presented"), default=list, blank=True)
    after_recovery = models.CharField(
        _("after recovery"), max_length=12, choices=AfterRecovery.choices, default=AfterRecovery.NONE, blank=True
    )
    after_recovery_at = models.DateTimeField(_("settled after recovery at"), null=True, blank=True)

    class Meta:
        verbose_name = _("insurance claim")
        verbose_name_plural = _("insurance claims")
        constraints = [
            models.UniqueConstraint(fields=["report"], condition=~Q(status="rejected"), name="claim_one_per_report"),
            # One live claim per policy: a paid claim stops being live once the recovered bike is
            # settled (refund or handed to the insurer); see cases.claims.services.
            models.UniqueConstraint(
                fields=["policy"],
                condition=~Q(status="rejected") & Q(after_recovery=""),
                name="claim_one_live_per_policy",
            ),
        ]
        indexes = [models.Index(fields=["status", "eligible_at"], name="claim_status_idx")]  # claim queue page
        permissions = [
            ("submit_claim", _("Can submit an insurance claim with the owner's documents")),
            ("decide_claim", _("Can approve or reject insurance claims")),
            ("pay_claim", _("Can record the payment of an insurance claim")),
            ("settle_claim", _("Can record the settlement of a paid claim after the bike is recovered")),
        ]

    def __str__(self) -> str:
        return f"{self.report_id} {self.status}"


class ClaimStep(models.Model):
    """Every step of a claim, with who (null: the eligibility task), when and the note. Append-only."""

    class Action(models.TextChoices):
        ELIGIBLE = "eligible", _("became eligible")
        SUBMIT = "submit", _("submitted")
        APPROVE = "approve", _("approved")
        PAY = "pay", _("paid")
        REJECT = "reject", _("rejected")
        RECOVERED = "recovered", _("bike recovered after payment")
        SETTLE = "settle", _("settled after recovery")

    claim = models.ForeignKey(InsuranceClaim, models.PROTECT, related_name="steps", verbose_name=_("claim"))
    action = models.CharField(_("action"), max_length=10, choices=Action.choices)
    from_status = models.CharField(_("from"), max_length=10, choices=InsuranceClaim.Status.choices, blank=True)
    to_status = models.CharField(_("to"), max_length=10, choices=InsuranceClaim.Status.choices)
    at = models.DateTimeField(_("at"), auto_now_add=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, models.PROTECT, null=True, related_name="+", verbose_name=_("by"))
    note = models.CharField(_("note"), max_length=500, blank=True)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("claim step")
        verbose_name_plural = _("claim steps")

    def __str__(self) -> str:
        return f"{self.claim_id}: {self.action}"
