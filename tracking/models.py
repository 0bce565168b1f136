from django.conf import settings
from django.contrib.gis.db import models as gis
from django.contrib.postgres.indexes import GistIndex
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Now
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.models import Station
from vehicles.models import Vehicle


class Terminal(models.Model):
    """An anti-theft GPS terminal (车载定位终端), identified by its IMEI."""

    class Protocol(models.TextChoices):
        GT06 = "gt06", "GT06 / Concox"
        JT808 = "jt808", "JT/T 808"
        OSMAND = "osmand", "OsmAnd (Traccar Client)"

    class Source(models.TextChoices):
        AFTERMARKET = "aftermarket", _("fitted at the counter")
        BUILT_IN = "built_in", _("built into the bike (GB 17761-2024)")

    imei = models.CharField(_("IMEI"), max_length=15, unique=True)
    protocol = models.CharField(_("protocol"), max_length=8, choices=Protocol.choices)
    source = models.CharField(_("source"), max_length=12, choices=Source.choices, default=Source.AFTERMARKET)
    sim_iccid = models.CharField(_("SIM ICCID"), max_length=20, blank=True)
    # JT/T 808 identifies a terminal by its "terminal phone" (BCD digits in every header).
    phone = models.CharField(_("JT/T 808 terminal phone"), max_length=20, blank=True)
    # The JT/T 808 auth code is issued once, by the gateway, in its reply to the terminal's first
    # register whose terminal ID (and maker and model, where recorded) match this record; only its
    # SHA-256 is kept. Empty: none issued, the next matching register gets one (after fitting, or
    # after a clerk reset it). A later register is refused and raises a `terminal_conflict` alarm.
    auth_code_digest = models.CharField(_("JT/T 808 auth code (SHA-256)"), max_length=64, blank=True)
    auth_code_issued_at = models.DateTimeField(_("JT/T 808 auth code issued at"), null=True, blank=True)
    # What a JT/T 808 register must name. Terminal ID empty: the IMEI or its last 7 digits (the
    # 2013 field has 7 bytes); maker and model empty: not checked.
    jt808_device_id = models.CharField(_("JT/T 808 terminal ID"), max_length=30, blank=True, default="", db_default="")
    maker = models.CharField(_("maker ID (JT/T 808)"), max_length=11, blank=True, default="", db_default="")
    model_code = models.CharField(_("terminal model (JT/T 808)"), max_length=30, blank=True, default="", db_default="")
    # OsmAnd (Traccar Client): when set, every request must carry the key (`?key=` in the server URL
    # the app is given); only its SHA-256 is kept, the key is shown once when it is generated.
    osmand_key_digest = models.CharField(
        _("OsmAnd key (SHA-256)"), max_length=64, blank=True, default="", db_default=""
    )
    heartbeat_interval_s = models.PositiveIntegerField(_("expected heartbeat interval (s)"), default=300)
    positioning_enabled = models.BooleanField(_("positioning switched on by the owner"), default=True)
    # 设防: the owner armed the bike from the owner pages or API (`armed`), or with the terminal's
    # own remote (its defence bit, reported in GT06 heartbeats and status: `device_armed`, kept
    # apart so that a heartbeat saying "not in defence" never disarms what the owner armed here).
    # A bike that moves or loses power while armed either way raises a displacement call in the
    # station's duty room.
    armed = models.BooleanField(_("armed by the owner"), default=False)
    armed_changed_at = models.DateTimeField(_("armed or disarmed at"), null=True, blank=True)
    device_armed = models.BooleanField(_("terminal in defence mode"), default=False, db_default=False)
    device_armed_changed_at = models.DateTimeField(_("defence mode changed at"), null=True, blank=True)
    consent_at = models.DateTimeField(_("owner's consent to positioning"), null=True, blank=True)
    # Current binding; the installation history is in TerminalInstallation. Written together.
    vehicle = models.OneToOneField(
        Vehicle, models.PROTECT, null=True, blank=True, related_name="terminal", verbose_name=_("vehicle")
    )
    active = models.BooleanField(_("active"), default=True)
    # Written once per ingestion batch for every terminal heard from (positions or heartbeats).
    last_seen_at = models.DateTimeField(_("last heard from"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("terminal")
        verbose_name_plural = _("terminals")
        constraints = [
            models.UniqueConstraint(fields=["phone"], condition=~Q(phone=""), name="terminal_phone_uniq"),
        ]

    def __str__(self) -> str:
        return self.imei


class TerminalInstallation(models.Model):
    """Who fitted (or removed) which terminal on which bike, when and where."""

    terminal = models.ForeignKey(Terminal, models.PROTECT, related_name="installations", verbose_name=_("terminal"))
    vehicle = models.ForeignKey(Vehicle, models.PROTECT, related_name="installations", verbose_name=_("vehicle"))
    installed_at = models.DateTimeField(_("installed at"))
    installed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, related_name="+", verbose_name=_("installed by")
    )
    station = models.ForeignKey(Station, models.PROTECT, related_name="+", verbose_name=_("station"))
    removed_at = models.DateTimeField(_("removed at"), null=True, blank=True)
    removed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("removed by")
    )
    removal_reason = models.CharField(_("removal reason"), max_length=200, blank=True)

    class Meta:
        ordering = ["-installed_at"]
        verbose_name = _("terminal installation")
        verbose_name_plural = _("terminal installations")
        constraints = [
            models.UniqueConstraint(
                fields=["terminal"], condition=Q(removed_at__isnull=True), name="installation_terminal_current_uniq"
            ),
            models.UniqueConstraint(
                fields=["vehicle"], condition=Q(removed_at__isnull=True), name="installation_vehicle_current_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.terminal_id} → {self.vehicle_id}"


class Ping(models.Model):
    """A stored position. The table is partitioned by day of device time (migration 0002), written
    only by tracking.ingest with COPY; this model is for reading.
    """

    pk = models.CompositePrimaryKey("terminal_id", "device_time")
    terminal = models.ForeignKey(Terminal, models.DO_NOTHING, db_constraint=False, related_name="+")
    device_time = models.DateTimeField()
    received_at = models.DateTimeField()
    point = gis.PointField(geography=True, srid=4326)
    speed_kmh = models.FloatField(null=True)
    course = models.FloatField(null=True)
    altitude = models.FloatField(null=True)
    satellites = models.SmallIntegerField(null=True)
    valid = models.BooleanField()
    battery = models.SmallIntegerField(null=True)
    alarms = models.JSONField(default=list)
    outlier = models.BooleanField(default=False)
    # The gateway connection the position came in on (TerminalSession: its remote address); null for
    # positions stored through the HTTP ingestion API, the simulator's direct path or before sessions.
    session_id = models.BigIntegerField(null=True)

    class Meta:
        managed = False
        db_table = "tracking_ping"

    def __str__(self) -> str:
        return f"{self.terminal_id}@{self.device_time:%Y-%m-%d %H:%M:%S}"


class PingCell(models.Model):
    """Where a terminal was, coarsely: one row per terminal, UTC hour and grid cell (tracking.cells)
    it sent a plausible fix from, written with the pings. Spatial questions over the pings (which
    bikes were near a place in a window; which stolen bikes came to a stop) find their terminals
    here with a B-tree range scan, then read only those terminals' pings by primary key and test
    the exact distance. The ping table has no spatial index: keeping a GiST entry per ping cost
    ingestion several times what its primary key does, while a bike adds a row here only when it
    reaches another cell or another hour.
    """

    pk = models.CompositePrimaryKey("cell", "hour", "terminal_id")
    cell = models.BigIntegerField()
    hour = models.DateTimeField()
    terminal_id = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["hour"], name="pingcell_hour_idx")]  # retention

    def __str__(self) -> str:
        return f"{self.terminal_id}@{self.cell}/{self.hour:%Y-%m-%d %H}h"


class LastPosition(models.Model):
    """One row per terminal: its newest plausible fix. "Where are they now" reads only this table."""

    terminal = models.OneToOneField(Terminal, models.CASCADE, primary_key=True, related_name="last_position")
    device_time = models.DateTimeField()
    received_at = models.DateTimeField()
    # No spatial index over every terminal: each position rewrites this row, and a GiST entry per
    # update cost ingestion more than any query gained (they all look rows up by terminal). The
    # one spatial question asked here, stolen bikes near a place, has its partial index below.
    point = gis.PointField(geography=True, srid=4326, spatial_index=False)
    speed_kmh = models.FloatField(null=True)
    course = models.FloatField(null=True)
    valid = models.BooleanField()
    battery = models.SmallIntegerField(null=True)
    # `point` again while the terminal is fitted to a bike reported stolen now, else NULL: whether
    # the bike is missing, and where, for "stolen bikes near here" (its partial index below). Kept by
    # last_positions_flag_missing() on every change of a bike's stolen state or of a terminal's
    # fitting, set by ingestion when a terminal's first position arrives and moved with each later
    # one. No index names `point` itself, so moving a bike that is not missing is a HOT update (no
    # index entry written; the table keeps room for it, fillfactor 80, migration 0010).
    missing_point = gis.PointField(geography=True, srid=4326, null=True, spatial_index=False)

    class Meta:
        verbose_name = _("last position")
        verbose_name_plural = _("last positions")
        indexes = [
            GistIndex(
                fields=["missing_point"], name="lastposition_missing_gist", condition=Q(missing_point__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.terminal_id}@{self.device_time:%Y-%m-%d %H:%M:%S}"


class Alarm(models.Model):
    """An alarm a terminal raised, or one the system derived (offline, displacement, sighting)."""

    class Source(models.TextChoices):
        TERMINAL = "terminal", _("terminal")
        DERIVED = "derived", _("derived")

    class Status(models.TextChoices):
        NEW = "new", _("new")
        ACKNOWLEDGED = "acknowledged", _("acknowledged")
        CLOSED = "closed", _("closed")

    terminal = models.ForeignKey(Terminal, models.PROTECT, related_name="alarms", verbose_name=_("terminal"))
    vehicle = models.ForeignKey(
        Vehicle, models.PROTECT, null=True, blank=True, related_name="alarms", verbose_name=_("vehicle")
    )
    kind = models.CharField(_("kind"), max_length=40)
    source = models.CharField(_("source"), max_length=10, choices=Source.choices, default=Source.TERMINAL)
    at = models.DateTimeField(_("at"))
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)
    point = gis.PointField(_("position"), geography=True, srid=4326, null=True, blank=True)
    status = models.CharField(_("status"), max_length=14, choices=Status.choices, default=Status.NEW)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("handled by")
    )
    handled_at = models.DateTimeField(_("handled at"), null=True, blank=True)
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        ordering = ["-at"]
        verbose_name = _("alarm")
        verbose_name_plural = _("alarms")
        constraints = [
            # A retried message must not raise the same alarm twice.
            models.UniqueConstraint(fields=["terminal", "kind", "at"], name="alarm_once_per_terminal_kind_time"),
        ]
        indexes = [models.Index(fields=["status", "at"], name="alarm_status_at_idx")]  # duty-room queue

    def __str__(self) -> str:
        return f"{self.kind} {self.terminal_id} {self.at:%Y-%m-%d %H:%M:%S}"


class IngestOutbox(models.Model):
    """One row per committed ingestion batch, written in the batch's own transaction.

    Derived work (sightings, notifications, displacement alarms) is driven from these rows by a
    Celery task, so a batch committed while Redis was down is still processed once it is back.
    A batch whose handlers fail for some terminals keeps only those terminals and is retried with
    backoff (`attempts`, `next_attempt_at`, `last_error`), then set aside as dead (`dead_at`) until
    `manage.py outbox_rerun` (tracking.derived). The writers (ingestion, the gateway's SQL) insert
    only the first four columns: the others have database defaults.
    """

    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    terminal_ids = models.JSONField(_("terminals"), default=list)
    first_device_time = models.DateTimeField(_("first position time"))
    last_device_time = models.DateTimeField(_("last position time"))
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("failed attempts"), db_default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    last_error = models.TextField(_("last error"), db_default="", blank=True)
    dead_at = models.DateTimeField(_("set aside at"), null=True, blank=True)

    class Meta:
        verbose_name = _("ingestion batch (outbox)")
        verbose_name_plural = _("ingestion batches (outbox)")
        indexes = [
            # outbox_process's claim, the backlog on /healthz and the admin's list: unprocessed rows by id.
            models.Index(fields=["id"], condition=Q(processed_at__isnull=True), name="outbox_pending_idx"),
        ]

    def __str__(self) -> str:
        return gettext("ingestion batch %(id)s") % {"id": self.pk}


class IngestToken(models.Model):
    """Bearer token for POST /api/v1/pings: for one terminal, or for an integration (any terminal).

    Only the SHA-256 of the token is stored; the token itself is shown once, when it is created.
    """

    name = models.CharField(_("name"), max_length=100)
    token_sha256 = models.CharField(max_length=64, unique=True)
    terminal = models.ForeignKey(
        Terminal,
        models.CASCADE,
        null=True,
        blank=True,
        related_name="ingest_tokens",
        verbose_name=_("terminal (empty: an integration for any terminal)"),
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("ingestion token")
        verbose_name_plural = _("ingestion tokens")

    def __str__(self) -> str:
        return self.name


class LegalHold(models.Model):
    """Keeps a vehicle's positions of the theft window past the retention period (tracking.retention).

    The window runs from `held_from` (the report's last-seen time; retention subtracts
    LEGAL_HOLD_MARGIN_MINUTES) to the release (open-ended while the hold is open). The cases app
    creates a hold when it takes a theft report for a registered bike and releases it at closing.
    A hold without `held_from` (made before windows existed) keeps the bike's whole history.
    """

    vehicle = models.ForeignKey(Vehicle, models.PROTECT, related_name="legal_holds", verbose_name=_("vehicle"))
    reason = models.CharField(_("reason"), max_length=200)
    held_from = models.DateTimeField(_("positions kept from"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    released_at = models.DateTimeField(_("released at"), null=True, blank=True)

    class Meta:
        verbose_name = _("legal hold")
        verbose_name_plural = _("legal holds")
        indexes = [models.Index(fields=["vehicle"], condition=Q(released_at__isnull=True), name="legalhold_open_idx")]

    def __str__(self) -> str:
        return f"{self.vehicle_id}: {self.reason}"


class GatewayNode(models.Model):
    """A running gateway worker process and its lease, renewed while it lives (tracking.gateway.leases).

    The sessions of a node whose lease ran out are not alive, whatever they say: the node died
    without closing them. Another node then ends them (end reason "node_lost") and removes the row.
    One lease per node, not per session: renewing ten thousand sessions' leases cost the database
    more than storing their positions.
    """

    node = models.CharField(_("gateway node"), max_length=80, primary_key=True)
    started_at = models.DateTimeField(_("started at"))
    lease_until = models.DateTimeField(_("lease until"))

    class Meta:
        verbose_name = _("gateway node")
        verbose_name_plural = _("gateway nodes")

    def __str__(self) -> str:
        return self.node


class TerminalSessionQuerySet(models.QuerySet):
    def alive(self) -> "TerminalSessionQuerySet":
        """Not ended, on a node whose lease runs."""
        nodes = GatewayNode.objects.filter(node=OuterRef("node"), lease_until__gt=Now())
        return self.filter(ended_at__isnull=True).filter(Exists(nodes))


class TerminalSession(models.Model):
    """One logged-in gateway connection of a terminal: where it came from, on which gateway node,
    and when it was heard.

    The gateway writes it (tracking.gateway.leases): opened at login, ended when the connection
    closes. A session is alive while it is not ended and its node's lease (GatewayNode) runs, so the
    other nodes and workers see which sessions are alive without asking the node that holds them.
    Pings name their session (Ping.session_id): the evidence of a position says which address sent
    it. `remote_address` is the terminal's own address; behind a proxy speaking PROXY protocol v2 it
    is the address the proxy reports, and `via_address` is the proxy's. `last_heard_at` is written
    at the end, and while the session is watched for a cloned identity.
    """

    id = models.BigAutoField(primary_key=True)
    # No foreign-key constraint, as for pings: the gateway's session writes then take no lock on the
    # terminal rows (terminals are never deleted, only deactivated).
    terminal = models.ForeignKey(
        Terminal, models.PROTECT, db_constraint=False, related_name="sessions", verbose_name=_("terminal")
    )
    protocol = models.CharField(_("protocol"), max_length=8, choices=Terminal.Protocol.choices)
    remote_address = models.GenericIPAddressField(_("remote address"))
    remote_port = models.PositiveIntegerField(_("remote port"))
    via_address = models.GenericIPAddressField(_("proxy address"), null=True, blank=True)
    node = models.CharField(_("gateway node"), max_length=80)
    started_at = models.DateTimeField(_("logged in at"))
    last_heard_at = models.DateTimeField(_("last heard at"))
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    end_reason = models.CharField(_("end reason"), max_length=24, blank=True)

    objects = TerminalSessionQuerySet.as_manager()

    class Meta:
        verbose_name = _("terminal session")
        verbose_name_plural = _("terminal sessions")
        indexes = [
            models.Index(fields=["terminal", "started_at"], name="terminalsession_terminal_idx"),
            models.Index(fields=["terminal"], condition=Q(ended_at__isnull=True), name="terminalsession_open_idx"),
            # The sessions opened since a node's last look (a cloned identity elsewhere?), and a dead
            # node's sessions to end.
            models.Index(fields=["started_at"], condition=Q(ended_at__isnull=True), name="terminalsession_recent_idx"),
            models.Index(fields=["node"], condition=Q(ended_at__isnull=True), name="terminalsession_node_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.terminal_id} {self.remote_address}:{self.remote_port} @ {self.started_at:%Y-%m-%d %H:%M:%S}"
