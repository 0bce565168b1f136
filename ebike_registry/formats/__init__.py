"""Date and time formats of the pages (settings.FORMAT_MODULE_PATH): one per kind in every language,
ISO order as Chinese forms and documents write it: a date 2026-12-06, a date and time
2026-12-06 14:03, a time 14:03. Django's own zh_Hans formats (2026年12月6日) would put a second
format beside the one templates and exports write; what is not set here comes from Django's."""

DATE = "Y-m-d"
TIME = "H:i"
DATETIME = f"{DATE} {TIME}"
YEAR_MONTH = "Y-m"
MONTH_DAY = "m-d"
