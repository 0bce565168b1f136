"""`make lint` refuses untranslated and fuzzy entries in our catalogues (scripts/check_translations.py)."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "check_translations.py"
HEADER = 'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'


def catalogue(root: Path, where: str, body: str) -> Path:
    po = root / where
    po.parent.mkdir(parents=True)
    po.write_text(HEADER + body, encoding="utf-8")
    return po


def check(root: Path) -> subprocess.CompletedProcess:
    args = [sys.executable, str(SCRIPT), str(root)]
    return subprocess.run(args, capture_output=True, text=True, check=False)  # noqa: S603 (our script)


def test_untranslated_and_fuzzy_entries_fail_and_are_named(tmp_path):
    catalogue(
        tmp_path,
        "locale/zh_Hans/LC_MESSAGES/django.po",
        '#: cases/views.py:12\nmsgid "Station cases"\nmsgstr ""\n\n'
        '#: cases/views.py:13\n#, fuzzy\nmsgid "My cases"\nmsgstr "我的报案"\n\n'
        'msgid "Case"\nmsgstr "案件"\n',
    )
    catalogue(tmp_path, "stats/locale/zh_Hans/LC_MESSAGES/django.po", 'msgid ""\n"alarms by "\n"kind"\nmsgstr ""\n')
    result = check(tmp_path)
    assert result.returncode == 1
    assert "untranslated (cases/views.py:12): 'Station cases'" in result.stderr
    assert "fuzzy (cases/views.py:13): 'My cases'" in result.stderr
    assert "untranslated: 'alarms by kind'" in result.stderr  # a message written over several lines
    assert "'Case'" not in result.stderr


def test_english_may_leave_entries_untranslated_but_not_fuzzy(tmp_path):
    catalogue(tmp_path, "locale/en/LC_MESSAGES/django.po", 'msgid "Station cases"\nmsgstr ""\n')
    assert check(tmp_path).returncode == 0
    catalogue(tmp_path, "locale/zh_Hans/LC_MESSAGES/django.po", 'msgid "Case"\nmsgstr "案件"\n')
    assert check(tmp_path).returncode == 0
    (tmp_path / "locale/en/LC_MESSAGES/django.po").write_text(
        HEADER + '#, fuzzy\nmsgid "vibration"\nmsgstr "Operation"\n', encoding="utf-8"
    )
    result = check(tmp_path)
    assert result.returncode == 1 and "fuzzy: 'vibration'" in result.stderr


def test_a_translation_that_drops_a_placeholder_fails(tmp_path):
    catalogue(
        tmp_path,
        "locale/zh_Hans/LC_MESSAGES/django.po",
        '#, python-format\nmsgid "duty on case %(number)s"\nmsgstr "承办案件"\n',
    )
    result = check(tmp_path)
    assert result.returncode == 1 and "number" in result.stderr


def test_the_virtualenv_is_not_ours(tmp_path):
    catalogue(tmp_path, ".venv/locale/zh_Hans/LC_MESSAGES/django.po", 'msgid "x"\nmsgstr ""\n')
    assert check(tmp_path).returncode == 0
