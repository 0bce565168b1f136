"""seed_demo_activity: demo records for the dashboard, added once, topped up, refused without bikes."""

import pytest
from django.core.management import CommandError, call_command

from cases.models import Case, CaseLink, TheftReport
from demo.activity import DEMO_NOTE
from stats import selectors
from stats.models import PlateEstimate
from stats.params import parse_filters
from tracking.models import Alarm

pytestmark = pytest.mark.django_db


def test_refused_before_there_are_bikes():
    with pytest.raises(CommandError, match="seed_demo"):
        call_command("seed_demo_activity", reports=10)
    assert not TheftReport.objects.exists()


def test_seeds_once_and_tops_up(capsys):
    call_command("seed_demo", vehicles=400, no_vacuum=True)
    call_command("seed_demo_activity", reports=60, seed=3)
    out = capsys.readouterr().out
    assert "added 60 theft reports" in out and "20 alarms" in out  # 5 per 100 of 400 bikes
    reports = TheftReport.objects.filter(narrative=DEMO_NOTE)
    assert reports.count() == 60
    assert Alarm.objects.count() == 20
    assert PlateEstimate.objects.filter(note=DEMO_NOTE).count() > 0
    assert Case.objects.filter(summary=DEMO_NOTE).count() == 6
    assert CaseLink.objects.filter(case__summary=DEMO_NOTE).count() >= 6
    # Every report has its received step; recovered ones end in a recovery step.
    for report in reports:
        steps = list(report.transitions.order_by("at").values_list("to_status", flat=True))
        assert steps[0] == "received"
        assert (report.status == "recovered") == (steps[-1] == "recovered")

    call_command("seed_demo_activity", reports=80, seed=4)
    assert "added 20 theft reports, 0 alarms, 0 cases" in capsys.readouterr().out
    assert TheftReport.objects.filter(narrative=DEMO_NOTE).count() == 80

    # The dashboard figures see them (the rollups were rebuilt by the command).
    filters = parse_filters({"start": "2020-01-01"})
    totals = [r for r in selectors.thefts_monthly(filters).rows if r["month"] is None and r["station"] is None]
    assert totals[0]["reported"] == 80


def test_reports_must_not_be_negative():
    with pytest.raises(CommandError, match="--reports"):
        call_command("seed_demo_activity", reports=-1)
