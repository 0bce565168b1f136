"""Demo data for a development machine, a demonstration or a benchmark: never part of a deployment's
own records. `manage.py seed_demo` fills the registry (owners, bikes, plates, policies) at any scale;
`manage.py seed_demo_activity` adds what the statistics dashboard shows beyond it."""
