"""The one exponential back-off formula.

Retry number `attempt` (1-based) waits `base · 2^(attempt-1)`, capped at `cap`. Callers
add what is theirs on top: the HTTP retry loop draws full jitter below this ceiling
(`integrations.http.RetryPolicy`), recovery adds a drawn share and honours Retry-After
(`recovery.policy.backoff_delay`), the webhook dispatcher re-queues after it, and each
workflow's Prefect retries are spaced by it (`WorkflowSpec.retry_delays`).
"""

from __future__ import annotations

import math

MAX_DOUBLINGS = 62  # 2**62 seconds is beyond any cap; keeps the power bounded


def exponential_backoff(attempt: int, base: float, cap: float = math.inf) -> float:
    """Seconds before retry number `attempt` (an attempt below 1 counts as 1)."""
    return min(cap, base * 2 ** min(max(0, attempt - 1), MAX_DOUBLINGS))
