"""The policy for what proves a terminal's identity (JT/T 808 auth code, OsmAnd key).

The staff who fit terminals at the counter (clerks, and leaders, who hold the counter's rights)
reset a JT/T 808 terminal's auth code and issue or remove an OsmAnd key; each change states a
reason and is audited (tracking.services).
"""

import rules

from accounts.rules import is_clerk, is_leader

# obj: the terminal (unused: any terminal at the counter).
rules.add_perm("tracking.change_terminal_identity", is_clerk | is_leader)
