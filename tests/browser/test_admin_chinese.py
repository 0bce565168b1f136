"""The admin in Chinese where script writes the text: the two-box selector of a group's permissions
(Django's SelectFilter2.js, from the admin's JavaScript catalogue) and the permission names."""

import re

import pytest

from tests import factories
from tests.browser.conftest import log_in, screenshot
from tests.web.test_zh_hans_walk import stray_words

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_the_group_form_speaks_chinese_in_the_browser(page, live_server):
    root = factories.user("clerk", is_staff=True, is_superuser=True)
    log_in(page, live_server, root)
    page.goto(f"{live_server.url}/admin/auth/group/add/")
    page.wait_for_selector(".selector .selector-available h2, .selector .selector-available label")
    selector = page.locator(".selector").first.inner_text()
    assert "可用" in selector and "选中的" in selector
    assert not re.search(r"\b(Choose|Remove|selected|Available|Chosen|Filter)\b", selector), selector
    assert "全选" in selector
    body = page.locator("body").inner_text()
    assert "Django" not in body and "电动自行车户籍化管理系统" in body
    assert "可查询备案记录" in body  # a permission of ours, by its translated name
    assert stray_words(page.content(), {root.username}) == []
    screenshot(page, "admin-group-permissions-zh")
