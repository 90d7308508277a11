"""The ordered rule base: which lines of a CI log name which kind of failure.

Order is priority: single-line patterns that name a cause come first, then multi-line
rules, then catch-alls. Among the rules that fire in the failing step, the first in this
order wins. The runner's own messages (timeouts, lost runners) and resource exhaustion come
first; then what the code did (compile, lint, test failures); then the environment (rate
limits, auth, 5xx, network), because tests print such errors on purpose far more often than
they fail from them; dependency resolution after the network errors that often cause it.
A test failure whose report line itself names a network/service error is called flaky.

Each rule has two patterns:
- `prefilter`: a case-insensitive pattern in the subset shared by grep -E, RE2, Hyperscan
  and Python (literals, `[...]`, `( | )`, `?*+{m,n}`, `\\b`; no `\\d`, `\\s`, lookaround,
  nothing that can match a newline). The scanner runs all prefilters at once over the raw
  bytes; it must match every raw line (timestamps and ANSI included) that `pattern` matches.
- `pattern`: a Python regex checked on the cleaned line (no timestamp, no ANSI).
"""

from __future__ import annotations

from contexten.analysis.logs.rules_base import Role, Rule
from contexten.analysis.logs.rules_code import CODE_RULES
from contexten.analysis.logs.rules_environment import ENVIRONMENT_RULES
from contexten.analysis.logs.rules_runner import RUNNER_RULES
from contexten.analysis.logs.rules_signals import SIGNAL_RULES

__all__ = ["JOB_LEVEL_RULES", "RULES", "RULES_BY_ID", "Role", "Rule", "vocabulary"]

# The order of the tables, and of the rules in each, is the priority described above.
RULES: tuple[Rule, ...] = (
    *RUNNER_RULES,  # steps, timeouts, infrastructure, strong configuration, resources
    *CODE_RULES,  # compile, lint, tests
    *ENVIRONMENT_RULES,  # a cancelled step, rate limits, auth, 5xx, network, dependencies
    *SIGNAL_RULES,  # details, flaky, weak configuration, multi-line, markers, catch-alls
)

RULES_BY_ID: dict[str, Rule] = {rule.id: rule for rule in RULES}


def vocabulary() -> list[str]:
    """The prefilter patterns, in rule order (for the scanner and the grep comparison)."""
    return [rule.prefilter for rule in RULES]


# Rules whose lines come from the runner or the CI system itself: they count wherever they
# appear, not only inside the failing step, and they prove on their own that the job failed.
JOB_LEVEL_RULES: frozenset[str] = frozenset(
    {
        "gha-job-timeout",
        "gha-action-timeout",
        "ci-no-output-timeout",
        "gha-runner-lost",
        "gha-runner-shutdown",
        "gha-runner-disk",
        "gha-concurrency-cancel",
        "gha-provisioning",
        "gha-canceled",
    }
)
