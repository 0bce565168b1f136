import hashlib

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_otp.models import Device, ThrottlingMixin, TimestampMixin


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


class User(AbstractUser):  # type: ignore[django-manager-missing]  # django-otp (untyped) declares Device.user
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

    def get_full_name(self) -> str:
        """Family name first: a Chinese name is written family name, then given name, with no space
        (李娜); a name in Latin letters keeps Django's given name first (Anna Li)."""
        given, family = self.first_name.strip(), self.last_name.strip()
        if any(_is_cjk(char) for char in given + family):
            return f"{family}{given}"
        return f"{given} {family}".strip()


def _is_cjk(char: str) -> bool:
    return "\u3400" <= char <= "\u9fff" or "\uf900" <= char <= "\ufaff" or "\U00020000" <= char <= "\U0003134f"


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


# The bounds within which the security administrator sets the policy (inclusive).
FAILURE_LIMIT_BOUNDS = (3, 10)
COOLOFF_MINUTES_BOUNDS = (5, 1440)  # five minutes to a day
RETENTION_DAYS_BOUNDS = (7, 3650)  # a week to ten years


class SecurityPolicy(models.Model):
    """One version of the security policy the security administrator sets (accounts.security_policy):
    lockout, the roles that sign in with a second factor, and the retention periods.

    Append-only like the audit trail (a trigger refuses UPDATE and DELETE, migration 0006): a change
    is a new row, the newest row is the policy, and with no row the settings are the defaults.
    """

    set_at = models.DateTimeField(_("set at"), auto_now_add=True)
    set_by = models.ForeignKey(User, models.PROTECT, related_name="+", verbose_name=_("set by"))
    reason = models.CharField(_("reason"), max_length=200)
    login_failure_limit = models.PositiveSmallIntegerField(_("failed sign-ins before a lockout"))
    lockout_cooloff_minutes = models.PositiveSmallIntegerField(_("lockout cool-off (minutes)"))
    # Beyond the floor of settings.OTP_REQUIRED_ROLES, which applies whatever a row says.
    second_factor_roles = ArrayField(models.CharField(max_length=150), verbose_name=_("roles with a second factor"))
    # Retention setting name (as the apps' retention declarations name it) -> days.
    retention_days = models.JSONField(_("retention periods (days)"), default=dict)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("security policy")
        verbose_name_plural = _("security policies")
        constraints = [
            # The bounds are checked by accounts.security_policy with a message; kept here too.
            models.CheckConstraint(
                condition=models.Q(
                    login_failure_limit__gte=FAILURE_LIMIT_BOUNDS[0], login_failure_limit__lte=FAILURE_LIMIT_BOUNDS[1]
                ),
                name="securitypolicy_failure_limit_bounds",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    lockout_cooloff_minutes__gte=COOLOFF_MINUTES_BOUNDS[0],
                    lockout_cooloff_minutes__lte=COOLOFF_MINUTES_BOUNDS[1],
                ),
                name="securitypolicy_cooloff_bounds",
            ),
            models.CheckConstraint(condition=~models.Q(reason=""), name="securitypolicy_reason_given"),
        ]

    def __str__(self) -> str:
        return f"security policy {self.pk} ({self.set_at:%Y-%m-%d %H:%M})"


def recovery_code_digest(code: str) -> str:
    """SHA-256 (hex) of a recovery code as typed: spaces and dashes dropped, case ignored."""
    plain = "".join(code.split()).replace("-", "").lower()
    return hashlib.sha256(plain.encode()).hexdigest()


class RecoveryCodeDevice(TimestampMixin, ThrottlingMixin, Device):
    """An account's single-use recovery codes (accounts.signin), which stand in for a lost phone.

    The database keeps only each code's SHA-256 (RecoveryCode.digest), never the code. The digest is
    plain, not keyed: a code issued here is 16 random base32 characters (80 bits), far too many to
    find from its digest by trying them all, so no secret is needed, and none whose rotation or loss
    would void every account's codes. Codes carried over from django-otp's clear-text tokens
    (migration 0008) are 8 characters (40 bits): their digests could be brute-forced from a copy of
    the database, so those accounts should issue new codes.
    """

    class Meta:
        verbose_name = _("recovery codes")
        verbose_name_plural = _("recovery codes")
        constraints = [
            # One set per account: issuing new codes replaces the device (accounts.signin).
            models.UniqueConstraint(fields=["user"], name="recoverycodedevice_one_per_user"),
        ]

    def get_throttle_factor(self) -> int:
        return getattr(settings, "OTP_RECOVERY_CODE_THROTTLE_FACTOR", 1)

    def verify_token(self, token: str) -> bool:
        """A matching code is used up (deleted; of two sign-ins with one code only one deletes it)."""
        allowed, _details = self.verify_is_allowed()
        if not allowed:
            return False
        used, _deleted = RecoveryCode.objects.filter(device=self, digest=recovery_code_digest(token)).delete()
        if used:
            self.throttle_reset(commit=False)
            self.set_last_used_timestamp(commit=False)
            self.save()
        else:
            self.throttle_increment()
        return bool(used)


class RecoveryCode(models.Model):
    """One unused recovery code, as its SHA-256 digest (RecoveryCodeDevice says why a plain one)."""

    device = models.ForeignKey(RecoveryCodeDevice, models.CASCADE, related_name="codes", verbose_name=_("device"))
    digest = models.CharField(_("SHA-256 of the code"), max_length=64)

    class Meta:
        verbose_name = _("recovery code")
        verbose_name_plural = _("recovery codes")
        constraints = [
            # Also the index of the lookup in RecoveryCodeDevice.verify_token.
            models.UniqueConstraint(fields=["device", "digest"], name="recoverycode_unique_per_device"),
        ]

    def __str__(self) -> str:
        return f"recovery code of device {self.device_id}"
