"""The policy for statistics: the bureau's leadership reads them (counts, no personal data)."""

import rules

from accounts.rules import is_leader

rules.add_perm("stats.view_statistics", is_leader)
