from django.contrib.auth.models import AbstractUser
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils.translation import gettext_lazy as _


class Township(models.Model):
    """乡镇: a township-level division, identified by its 9-digit statistical code."""

    code = models.CharField(_("code"), max_length=9, primary_key=True)
    name = models.CharField(_("name"), max_length=64)
    county_code = models.CharField(_("county code"), max_length=6)

    class Meta:
        ordering = ["code"]
        verbose_name = _("township")
        verbose_name_plural = _("townships")

    def __str__(self) -> str:
        return self.name


class Station(models.Model):
    """派出所: a police station, the unit that owns plate series and handles cases in its area."""

    code = models.CharField(_("code"), max_length=12, unique=True)
    name = models.CharField(_("name"), max_length=64, unique=True)
    township = models.ForeignKey(Township, models.PROTECT, related_name="stations", verbose_name=_("township"))
    address = models.CharField(_("address"), max_length=200, blank=True)
    phone = models.CharField(_("duty phone"), max_length=20, blank=True)
    # Optional: sightings and duty-room calls are also POSTed here as JSON (a station's own system).
    webhook_url = models.URLField(_("webhook URL"), blank=True)
    is_demo = models.BooleanField(_("demo data"), default=False)

    class Meta:
        ordering = ["code"]
        verbose_name = _("police station")
        verbose_name_plural = _("police stations")

    def __str__(self) -> str:
        return self.name


class RegistrationPoint(models.Model):
    """A counter where bikes are registered: the station itself, a township hall, a dealer, a bank."""

    class Kind(models.TextChoices):
        STATION = "station", _("police station counter")
        TOWNSHIP_HALL = "township_hall", _("township hall")
        DEALER = "dealer", _("dealer")
        PARTNER = "partner", _("police-post / bank / insurer point")

    station = models.ForeignKey(Station, models.PROTECT, related_name="points", verbose_name=_("station"))
    name = models.CharField(_("name"), max_length=100, unique=True)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.STATION)

    class Meta:
        ordering = ["station__code", "name"]
        verbose_name = _("registration point")
        verbose_name_plural = _("registration points")

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    """Staff and owners. Roles are the groups in accounts.roles; staff belong to a station."""

    station = models.ForeignKey(
        Station, models.PROTECT, null=True, blank=True, related_name="staff", verbose_name=_("station")
    )
    registration_point = models.ForeignKey(
        RegistrationPoint,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="clerks",
        verbose_name=_("registration point"),
    )
    phone = models.CharField(_("phone"), max_length=20, blank=True)

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")


class AuditEntry(models.Model):
    """Who looked at or changed personal data, when, why and with what result.

    Rows are append-only: a database trigger (migration 0003) rejects UPDATE and DELETE, so not even
    an administrator with SQL access through the application role can rewrite the trail.
    """

    at = models.DateTimeField(_("at"), auto_now_add=True, db_index=True)
    user = models.ForeignKey(User, models.PROTECT, null=True, related_name="+", verbose_name=_("user"))
    action = models.CharField(_("action"), max_length=40)
    object_type = models.CharField(_("object type"), max_length=40, blank=True)
    object_id = models.CharField(_("object id"), max_length=40, blank=True)
    query = models.JSONField(_("query"), default=dict, blank=True)
    result_count = models.IntegerField(_("result count"), null=True)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")
        indexes = [
            # "What did this user look at" and "who looked at this record" (audit review pages).
            models.Index(fields=["user", "at"]),
            models.Index(fields=["object_type", "object_id"]),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.user_id} {self.action} {self.object_type}:{self.object_id}"


class AuditSeal(models.Model):
    """One audit entry sealed into the hash chain (accounts.audit_chain), in seal order (id).

    `content_hash` is the SHA-256 of the entry's `fields` as canonical JSON; `chain_hash` the SHA-256
    over the previous seal's chain hash, the entry id and the content hash. Append-only like the
    trail itself, written by the maintenance worker as the owner role; `verify_audit` recomputes it.
    """

    entry_id = models.BigIntegerField(_("audit entry"), unique=True)
    # The entry's columns the content hash covers (a column added later is not in older seals).
    fields = ArrayField(models.CharField(max_length=63), verbose_name=_("fields"))
    content_hash = models.CharField(_("content hash"), max_length=64)
    # Unique: two seals can never follow the same predecessor, so the chain cannot fork.
    previous_hash = models.CharField(_("previous hash"), max_length=64, unique=True)
    chain_hash = models.CharField(_("chain hash"), max_length=64, unique=True)
    sealed_at = models.DateTimeField(_("sealed at"))

    class Meta:
        ordering = ["id"]
        verbose_name = _("audit seal")
        verbose_name_plural = _("audit seals")

    def __str__(self) -> str:
        return f"seal {self.pk}: entry {self.entry_id} {self.chain_hash[:12]}"
