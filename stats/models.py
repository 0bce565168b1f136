"""Statistics: plate-count estimates entered by admins, station areas, and the rollup tables that
keep the dashboard fast at county scale. Most rollups are derived data: `stats.rollups` rebuilds
them from the source tables at any time. AlarmDay and RescueDay also keep the daily counts of
alarms and rescue calls after retention has removed the rows themselves.
"""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Station, Township


class EstimateMethod(models.TextChoices):
    SURVEY = "survey", _("household survey (摸底)")
    PER_CAPITA = "per_capita", _("per-capita ratio")
    PRIOR_YEAR = "prior_year", _("prior year carried over")
    OTHER = "other", _("other")


class PlateEstimate(models.Model):
    """How many e-bikes are in use in a township in a year: the denominator of the plate rate.

    No rule fixes it (docs/domain.md#statistics), so each figure is dated (its year) and says how it was made.
    """

    class Source(models.TextChoices):
        FORM = "form", _("form")
        API = "api", _("API")
        CSV = "csv", _("CSV import")

    township = models.ForeignKey(Township, models.PROTECT, related_name="+", verbose_name=_("township"))
    year = models.PositiveSmallIntegerField(_("year"), validators=[MinValueValidator(2000), MaxValueValidator(2100)])
    estimated_bikes = models.PositiveIntegerField(_("estimated bikes in use"))
    method = models.CharField(_("estimation method"), max_length=12, choices=EstimateMethod.choices)
    note = models.CharField(_("note"), max_length=200, blank=True)
    source = models.CharField(_("entered through"), max_length=4, choices=Source.choices, default=Source.FORM)
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, related_name="+", verbose_name=_("entered by")
    )
    entered_at = models.DateTimeField(_("entered at"), auto_now=True)

    class Meta:
        ordering = ["-year", "township_id"]
        verbose_name = _("plate-rate estimate")
        verbose_name_plural = _("plate-rate estimates")
        constraints = [
            models.UniqueConstraint(fields=["township", "year"], name="plateestimate_township_year_uniq"),
            models.CheckConstraint(condition=models.Q(estimated_bikes__gt=0), name="plateestimate_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.township_id} {self.year}: {self.estimated_bikes}"


class StationArea(models.Model):
    """Assigns a township to the station whose area it belongs to.

    Without a row, a township belongs to the station located in it (Station.township); a township
    with no station of its own needs a row here, or it is in no station's area.
    """

    township = models.OneToOneField(
        Township, models.CASCADE, primary_key=True, related_name="+", verbose_name=_("township")
    )
    station = models.ForeignKey(Station, models.CASCADE, related_name="+", verbose_name=_("station"))

    class Meta:
        verbose_name = _("station area")
        verbose_name_plural = _("station areas")

    def __str__(self) -> str:
        return f"{self.township_id} → {self.station_id}"


class RegistrationDay(models.Model):
    """Registration events per county day, kind and registering station (the vehicle's station).

    Days before `RollupState.complete_through` are final (events are append-only and stamped with
    the time they happen); later days are read live from the events.
    """

    day = models.DateField()
    station = models.ForeignKey(Station, models.CASCADE, related_name="+")
    kind = models.CharField(max_length=14)
    events = models.PositiveIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "station", "kind"], name="registrationday_uniq")]

    def __str__(self) -> str:
        return f"{self.day} {self.station_id} {self.kind}: {self.events}"


class PlatedCount(models.Model):
    """Bikes holding an issued plate now, by the owner's township and the registering station.

    A snapshot: rebuilt whole by the beat task (owners move, bikes change hands), stamped in
    RollupState so pages say how fresh it is.
    """

    township = models.ForeignKey(Township, models.CASCADE, null=True, related_name="+")
    station = models.ForeignKey(Station, models.CASCADE, related_name="+")
    plated = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["township", "station"], name="platedcount_uniq", nulls_distinct=False)
        ]

    def __str__(self) -> str:
        return f"{self.township_id} {self.station_id}: {self.plated}"


class TheftMonth(models.Model):
    """Theft reports per month of receipt (county time) and station, with their outcome so far and
    every recovered report's days from receipt to recovery (for exact pooled medians).

    Rebuilt whole by the beat task; readers take from it only whole months with no report received
    or moved along its workflow since the rebuild, and compute the rest live (stats.selectors).
    """

    month = models.DateField()
    station = models.ForeignKey(Station, models.CASCADE, related_name="+")
    reported = models.PositiveIntegerField()
    filed = models.PositiveIntegerField()
    solved = models.PositiveIntegerField()
    recovered = models.PositiveIntegerField()
    recovery_days = ArrayField(models.FloatField(), default=list)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["month", "station"], name="theftmonth_uniq")]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.station_id}: {self.reported}"


class AlarmDay(models.Model):
    """Alarms per county day of the alarm, kind and the bike's registering station (none: an alarm
    of no registered bike), with those handled (acknowledged or closed). Counts only: no position,
    no bike, no person.

    Not derived data like the rollups above: retention removes alarms after ALARM_RETENTION_DAYS,
    and from then on this is the only record of a day's figures. The beat task recounts the days
    whose alarms are all still kept; older days are final (`RollupState.final_before`).
    """

    day = models.DateField()
    # PROTECT: the counts outlive the alarms; a station with history is not deleted with them.
    station = models.ForeignKey(Station, models.PROTECT, null=True, related_name="+")
    kind = models.CharField(max_length=40)
    alarms = models.PositiveIntegerField()
    handled = models.PositiveIntegerField()

    class Meta:
        constraints = [
            # The refresh upserts on it (stats.rollups.ALARM_DAYS_UPSERT); readers take a period's days.
            models.UniqueConstraint(fields=["day", "station", "kind"], name="alarmday_uniq", nulls_distinct=False)
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.station_id} {self.kind}: {self.alarms}"


class RescueDay(models.Model):
    """Rescue duty calls per county day they were raised and station: how many, how many answered
    (acknowledged), and every answered call's minutes to answer (for exact pooled medians). Counts
    only, like AlarmDay, and like it the only record of a day once retention removed its calls
    (DUTY_CALL_RETENTION_DAYS)."""

    day = models.DateField()
    station = models.ForeignKey(Station, models.PROTECT, related_name="+")
    calls = models.PositiveIntegerField()
    answered = models.PositiveIntegerField()
    answer_minutes = ArrayField(models.FloatField(), default=list)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "station"], name="rescueday_uniq")]

    def __str__(self) -> str:
        return f"{self.day} {self.station_id}: {self.calls}"


class RollupState(models.Model):
    """One row per rollup: what it covers and when it was last rebuilt."""

    name = models.CharField(max_length=40, primary_key=True)
    complete_through = models.DateField(null=True)
    refreshed_at = models.DateTimeField(null=True)
    # Daily counts of a table that retention trims (AlarmDay, RescueDay): days before this one are
    # final, never lowered by a recount, since retention may already have removed some of their
    # rows. It only moves forward, also when the table's period is raised.
    final_before = models.DateField(null=True)

    def __str__(self) -> str:
        return self.name
