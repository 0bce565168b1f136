import datetime
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import RegistrationPoint, Station, Township


class Owner(models.Model):
    """车主: a person (resident ID) or an organisation (unified social credit code + agent)."""

    class Kind(models.TextChoices):
        PERSON = "person", _("person")
        ORGANISATION = "organisation", _("organisation")

    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices, default=Kind.PERSON)
    name = models.CharField(_("name"), max_length=100)
    # Resident ID number (GB 11643) for a person, unified social credit code (GB 32100) for an
    # organisation. Both are 18 characters from disjoint check schemes, so one unique column serves.
    id_number = models.CharField(_("ID number"), max_length=18)
    agent_name = models.CharField(_("authorised agent"), max_length=50, blank=True)
    agent_id_number = models.CharField(_("agent ID number"), max_length=18, blank=True)
    phone = models.CharField(_("phone"), max_length=11)
    # Shown to the duty room with a rescue call (SOS, fall, collision); set by the owner.
    # Database defaults too: seed_demo and imports load owners with COPY, naming only their columns.
    emergency_contact_name = models.CharField(
        _("emergency contact"), max_length=50, blank=True, default="", db_default=""
    )
    emergency_contact_phone = models.CharField(
        _("emergency contact phone"), max_length=11, blank=True, default="", db_default=""
    )
    address = models.CharField(_("address"), max_length=200)
    township = models.ForeignKey(
        Township, models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("township")
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="owner_profile",
        verbose_name=_("login"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("owner")
        verbose_name_plural = _("owners")
        # Unique constraints rather than unique=True: the same btree, without the varchar_pattern_ops
        # twin Django adds for LIKE, which no query here uses.
        constraints = [models.UniqueConstraint(fields=["id_number"], name="owner_id_number_uniq")]
        indexes = [
            models.Index(fields=["name"], name="owner_name_idx"),  # search by owner name
            models.Index(fields=["phone"], name="owner_phone_idx"),  # search by phone
        ]

    def __str__(self) -> str:
        return self.name


class Vehicle(models.Model):
    """An e-bike's filing record (备案). Its state is the projection of its RegistrationEvents."""

    class UseType(models.TextChoices):
        SELF_USE = "self_use", _("self-use")
        COMMERCIAL = "commercial", _("commercial")

    class Status(models.TextChoices):
        REGISTERED = "registered", _("registered")
        STOLEN = "stolen", _("reported stolen")
        FROZEN = "frozen", _("frozen (insurance claim open)")
        DEREGISTERED = "deregistered", _("deregistered")

    frame_number = models.CharField(_("frame number"), max_length=17)
    motor_number = models.CharField(_("motor number"), max_length=30)
    manufacturer = models.CharField(_("manufacturer"), max_length=100)
    brand = models.CharField(_("brand"), max_length=50)
    model_name = models.CharField(_("model"), max_length=50)
    colour = models.CharField(_("colour"), max_length=20)
    production_date = models.DateField(_("production date"))
    use_type = models.CharField(_("use type"), max_length=12, choices=UseType.choices, default=UseType.SELF_USE)
    purchase_date = models.DateField(_("purchase date"))
    purchase_price = models.DecimalField(_("purchase price (CNY)"), max_digits=9, decimal_places=2)
    ccc_certificate_no = models.CharField(_("CCC certificate number"), max_length=40, blank=True)
    conforming = models.BooleanField(_("conforms to GB 17761"), default=True)
    # GB/T 47265-2026 electronic identity and the payload of the QR code printed on the plate.
    electronic_id = models.CharField(_("electronic ID"), max_length=64, blank=True)
    qr_payload = models.CharField(_("plate QR payload"), max_length=256, blank=True)

    owner = models.ForeignKey(Owner, models.PROTECT, related_name="vehicles", verbose_name=_("owner"))
    status = models.CharField(_("status"), max_length=14, choices=Status.choices, default=Status.REGISTERED)
    station = models.ForeignKey(Station, models.PROTECT, related_name="vehicles", verbose_name=_("registering station"))
    registered_at = models.DateTimeField(_("registered at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("vehicle")
        verbose_name_plural = _("vehicles")
        permissions = [
            ("register_vehicle", _("Can register, change, transfer and deregister vehicles at a counter")),
            ("search_records", _("Can search filing records")),
            ("view_full_identity", _("Can see full ID numbers and phone numbers (audited)")),
        ]
        constraints = [models.UniqueConstraint(fields=["frame_number"], name="vehicle_frame_number_uniq")]
        indexes = [
            models.Index(fields=["motor_number"], name="vehicle_motor_number_idx"),  # search by motor number
            # Statistics by station and status (plate counts per station).
            models.Index(fields=["station", "status"], name="vehicle_station_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.brand} {self.model_name} {self.frame_number}"


class VehiclePhoto(models.Model):
    class Kind(models.TextChoices):
        BIKE = "bike", _("bike")
        PLATE_FITTED = "plate_fitted", _("plate fitted")
        DOCUMENT = "document", _("document")

    vehicle = models.ForeignKey(Vehicle, models.CASCADE, related_name="photos", verbose_name=_("vehicle"))
    kind = models.CharField(_("kind"), max_length=14, choices=Kind.choices, default=Kind.BIKE)
    image = models.FileField(_("image"), upload_to="vehicle-photos/%Y/%m/")
    uploaded_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)

    class Meta:
        verbose_name = _("vehicle photo")
        verbose_name_plural = _("vehicle photos")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.vehicle_id}"


class PlateKind(models.TextChoices):
    GREEN = "green", _("formal, green (self-use)")
    YELLOW = "yellow", _("formal, yellow (commercial)")
    WHITE = "white", _("temporary, white")


class PlateSeries(models.Model):
    """A block of plate numbers handed to a station. Numbers are issued in order without gaps.

    `next_number` is the only mutable counter; it is advanced under a row lock in the same
    transaction that creates the Plate, so a rolled-back registration gives its number back.
    """

    station = models.ForeignKey(Station, models.PROTECT, related_name="plate_series", verbose_name=_("station"))
    kind = models.CharField(_("kind"), max_length=6, choices=PlateKind.choices)
    prefix = models.CharField(_("prefix"), max_length=8)
    first_number = models.PositiveIntegerField(_("first number"))
    last_number = models.PositiveIntegerField(_("last number"))
    next_number = models.PositiveIntegerField(_("next number"))
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("plate series")
        verbose_name_plural = _("plate series")
        constraints = [
            models.CheckConstraint(
                condition=Q(first_number__lte=models.F("last_number")), name="plateseries_range_ordered"
            ),
            models.CheckConstraint(
                condition=Q(next_number__gte=models.F("first_number"))
                & Q(next_number__lte=models.F("last_number") + 1),
                name="plateseries_next_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.prefix} {self.first_number}-{self.last_number} ({self.get_kind_display()})"

    @property
    def remaining(self) -> int:
        return self.last_number - self.next_number + 1


class Plate(models.Model):
    """A physical plate. Numbers never move to another vehicle; a voided plate stays on record."""

    class Status(models.TextChoices):
        ISSUED = "issued", _("issued")
        VOID = "void", _("void")
        RECOVERED = "recovered", _("recovered")

    # btree for exact lookups (Meta.indexes); a trigram GIN index (migration 0002) serves partial search.
    number = models.CharField(_("number"), max_length=16)
    series = models.ForeignKey(PlateSeries, models.PROTECT, related_name="plates", verbose_name=_("series"))
    kind = models.CharField(_("kind"), max_length=6, choices=PlateKind.choices)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.ISSUED)
    vehicle = models.ForeignKey(Vehicle, models.PROTECT, related_name="plates", verbose_name=_("vehicle"))
    issued_at = models.DateTimeField(_("issued at"), default=timezone.now)
    expires_on = models.DateField(_("expires on"), null=True, blank=True)
    ended_at = models.DateTimeField(_("voided or recovered at"), null=True, blank=True)

    class Meta:
        verbose_name = _("plate")
        verbose_name_plural = _("plates")
        constraints = [
            # One plate in use per number, and one plate in use per vehicle.
            models.UniqueConstraint(fields=["number"], condition=Q(status="issued"), name="plate_number_issued_uniq"),
            models.UniqueConstraint(fields=["vehicle"], condition=Q(status="issued"), name="plate_vehicle_issued_uniq"),
            models.CheckConstraint(
                condition=Q(kind="white", expires_on__isnull=False) | ~Q(kind="white"),
                name="plate_temporary_has_expiry",
            ),
        ]
        indexes = [models.Index(fields=["number"], name="plate_number_idx")]

    def __str__(self) -> str:
        return self.number

    def is_expired(self, today: datetime.date | None = None) -> bool:
        if self.expires_on is None:
            return False
        return self.expires_on < (today or timezone.localdate())


class InsuranceScheme(models.Model):
    """Terms of the free theft-loss insurance: configuration, not code (docs/domain.md#insurance)."""

    code = models.CharField(_("code"), max_length=20, unique=True)
    name = models.CharField(_("name"), max_length=100)
    insurer = models.CharField(_("insurer"), max_length=100, blank=True)
    term_months = models.PositiveSmallIntegerField(_("term (months)"), default=36)
    waiting_days = models.PositiveSmallIntegerField(_("waiting period after filing (days)"), default=60)
    deductible_percent = models.DecimalField(_("deductible (%)"), max_digits=5, decimal_places=2, default=Decimal(0))
    # [{"max_age_months": 12, "amount": "1200.00"}, …, {"max_age_months": null, "amount": "600.00"}]
    # ordered by age; null means "any older bike". The payout is the amount of the first band the
    # bike's age (from its purchase date) falls in, less the deductible.
    payout_bands = models.JSONField(_("payout by age band"), default=list)
    is_default = models.BooleanField(_("default scheme"), default=False)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("insurance scheme")
        verbose_name_plural = _("insurance schemes")
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True), name="one_default_scheme"),
        ]

    def __str__(self) -> str:
        return self.name


class InsurancePolicy(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        CANCELLED = "cancelled", _("cancelled")
        CLAIMED = "claimed", _("claimed")

    number = models.CharField(_("policy number"), max_length=24, unique=True)
    vehicle = models.ForeignKey(Vehicle, models.PROTECT, related_name="policies", verbose_name=_("vehicle"))
    owner = models.ForeignKey(Owner, models.PROTECT, related_name="policies", verbose_name=_("insured owner"))
    scheme = models.ForeignKey(InsuranceScheme, models.PROTECT, related_name="policies", verbose_name=_("scheme"))
    starts_on = models.DateField(_("starts on"))
    ends_on = models.DateField(_("ends on"))
    consent_at = models.DateTimeField(_("owner consent recorded at"))
    consent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, related_name="+", verbose_name=_("consent recorded by")
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)

    class Meta:
        verbose_name = _("insurance policy")
        verbose_name_plural = _("insurance policies")
        constraints = [
            models.UniqueConstraint(fields=["vehicle"], condition=Q(status="active"), name="one_active_policy"),
        ]

    def __str__(self) -> str:
        return self.number

    def is_in_force(self, today: datetime.date | None = None) -> bool:
        day = today or timezone.localdate()
        return self.status == self.Status.ACTIVE and self.starts_on <= day <= self.ends_on


class RegistrationEvent(models.Model):
    """One registration operation. Append-only (a trigger rejects UPDATE and DELETE).

    `changes` maps each field the operation touched to [old, new], so the vehicle's state at any
    point can be replayed from its events (see selectors.vehicle_state_from_events).
    """

    class Kind(models.TextChoices):
        REGISTER = "register", _("registration")
        CHANGE = "change", _("change")
        TRANSFER = "transfer", _("transfer")
        REPLACE_PLATE = "replace_plate", _("plate replacement")
        DEREGISTER = "deregister", _("deregistration")
        CORRECTION = "correction", _("correction")
        MARK_STOLEN = "mark_stolen", _("reported stolen")
        CLEAR_STOLEN = "clear_stolen", _("theft report closed")
        FREEZE = "freeze", _("frozen: recovered after an insurance payout")
        UNFREEZE = "unfreeze", _("unfrozen: insurance payout settled")

    vehicle = models.ForeignKey(Vehicle, models.PROTECT, related_name="events", verbose_name=_("vehicle"))
    kind = models.CharField(_("kind"), max_length=14, choices=Kind.choices)
    at = models.DateTimeField(_("at"), default=timezone.now)
    clerk = models.ForeignKey(settings.AUTH_USER_MODEL, models.PROTECT, related_name="+", verbose_name=_("clerk"))
    station = models.ForeignKey(Station, models.PROTECT, related_name="+", verbose_name=_("station"))
    registration_point = models.ForeignKey(
        RegistrationPoint, models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("registration point")
    )
    owner = models.ForeignKey(Owner, models.PROTECT, related_name="+", verbose_name=_("owner after the event"))
    plate = models.ForeignKey(
        Plate, models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("plate after the event")
    )
    changes = models.JSONField(_("changes"), default=dict, blank=True)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    documents = models.JSONField(_("documents presented"), default=list, blank=True)
    # A transfer's record of the previous owner's consent: in person, or an agent holding a power of
    # attorney (the letter of authority is among `documents`). Blank for other operations.
    previous_owner_consent = models.CharField(
        _("previous owner's consent"),
        max_length=10,
        blank=True,
        default="",
        db_default="",  # rows inserted by code that predates the field (a rolling deploy) stay valid
        choices=[("in_person", _("in person")), ("agent", _("through an agent with a power of attorney"))],
    )
    consent_agent_name = models.CharField(
        _("agent of the previous owner"), max_length=50, blank=True, default="", db_default=""
    )
    consent_agent_id_number = models.CharField(
        _("agent's ID number"), max_length=24, blank=True, default="", db_default=""
    )

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("registration event")
        verbose_name_plural = _("registration events")
        indexes = [
            models.Index(fields=["vehicle", "at"], name="regevent_vehicle_at_idx"),  # history page
            models.Index(fields=["station", "kind", "at"], name="regevent_station_kind_at_idx"),  # stats
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.vehicle_id} {self.at:%Y-%m-%d}"
