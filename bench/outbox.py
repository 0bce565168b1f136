"""Outbox benchmark: how long derived work takes when one terminal's fix poisons a handler.

    .venv/bin/python bench/outbox.py [--scale small|full]

Bench outbox rows (terminal ids no terminal has; deleted at the end) run through the real
settings.INGEST_HANDLERS plus a handler that raises for one terminal in the middle row, as
outbox_process runs them. Alternating rounds: clean_ms (nothing poisoned, the baseline) and
poisoned_ms (until every other fix is committed and the bad row narrowed to its terminal).
small = 10 rows x 100 terminals, full = 50 x 1,000. Details: docs/benchmarks.md#outbox.
"""

import datetime

import _common as bench

SCALES = {"small": {"rows": 10, "terminals": 100, "rounds": 5}, "full": {"rows": 50, "terminals": 1_000, "rounds": 5}}
FIRST_TERMINAL = 9_000_000_000
MARK = datetime.datetime(2001, 1, 1, tzinfo=datetime.UTC)  # the bench's rows: first_device_time
POISONED: set[int] = set()


def poison(batch) -> None:  # type: ignore[no-untyped-def]
    if POISONED & set(batch.terminal_ids):
        raise ValueError("poisoned fix (bench)")


def main() -> None:
    args = bench.parse_args("derived work with one poisoned fix among many")
    bench.setup_django()
    from django.conf import settings
    from django.db import transaction
    from django.test import override_settings

    from tracking.derived import outbox_rows_run
    from tracking.models import IngestOutbox

    scale = SCALES[args.scale]
    per_row = scale["terminals"]
    ids = list(range(FIRST_TERMINAL, FIRST_TERMINAL + scale["rows"] * per_row))
    bad = ids[len(ids) // 2]

    def clean() -> None:
        IngestOutbox.objects.filter(first_device_time=MARK).delete()

    def make_rows() -> list[int]:
        clean()
        made = IngestOutbox.objects.bulk_create(
            IngestOutbox(
                terminal_ids=ids[i : i + per_row],
                first_device_time=MARK,
                last_device_time=MARK + datetime.timedelta(seconds=10),
                attempts=0,
                last_error="",
            )
            for i in range(0, len(ids), per_row)
        )
        return [row.pk for row in made]

    def run(row_ids: list[int]) -> tuple[float, int]:
        with bench.Stopwatch() as watch, transaction.atomic():
            rows = list(IngestOutbox.objects.select_for_update().filter(pk__in=row_ids).order_by("id"))
            runs = outbox_rows_run(rows)
        return watch.seconds * 1000, runs

    handlers = [*settings.INGEST_HANDLERS, "__main__.poison"]
    samples: dict[str, list[float]] = {"clean": [], "poisoned": []}
    runs_poisoned = 0
    others_handled = 0
    try:
        with override_settings(INGEST_HANDLERS=handlers):
            run(make_rows())  # warm-up
            for round_ in range(scale["rounds"]):
                for case in ("clean", "poisoned") if round_ % 2 == 0 else ("poisoned", "clean"):
                    POISONED.clear()
                    if case == "poisoned":
                        POISONED.add(bad)
                    row_ids = make_rows()
                    ms, runs = run(row_ids)
                    samples[case].append(ms)
                    if case == "poisoned":
                        runs_poisoned = runs
                        done = IngestOutbox.objects.filter(pk__in=row_ids, processed_at__isnull=False)
                        others_handled = sum(len(t) for t in done.values_list("terminal_ids", flat=True))
                        waiting = IngestOutbox.objects.get(pk__in=row_ids, processed_at__isnull=True)
                        if waiting.terminal_ids != [bad] or waiting.attempts != 1:
                            raise SystemExit(f"the bad row was not narrowed to its terminal: {waiting.terminal_ids}")
                        others_handled += per_row - 1  # the bad row's other terminals
                bench.log(
                    f"round {round_ + 1}: clean {samples['clean'][-1]:.0f} ms, "
                    f"poisoned {samples['poisoned'][-1]:.0f} ms"
                )
    finally:
        POISONED.clear()
        clean()

    clean_p50, poisoned_p50 = bench.p50(samples["clean"]), bench.p50(samples["poisoned"])
    bench.emit(
        "outbox",
        args.scale,
        {
            "rows": scale["rows"],
            "fixes": len(ids),
            "clean_ms_p50": round(clean_p50, 1),
            "poisoned_ms_p50": round(poisoned_p50, 1),
            "poisoned_ms_max": round(max(samples["poisoned"]), 1),
            "poisoned_handler_runs": runs_poisoned,
            "poisoned_over_clean": round(poisoned_p50 / clean_p50, 2) if clean_p50 else None,
            "others_handled": others_handled,
            "others_expected": len(ids) - 1,
        },
    )


if __name__ == "__main__":
    main()
