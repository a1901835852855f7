"""Property-based tests (hypothesis) of every parser and of the webhooks' inputs.

CI runs them with a small count (ZOUFANG_FUZZ_EXAMPLES, default 200 per property); the full run is
`ZOUFANG_FUZZ_EXAMPLES=10000 pytest tests/fuzz`. No example database is written (the runs stay independent);
a failure prints the smallest input that breaks the property, which belongs in a unit test next to the parser.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("ZOUFANG_FUZZ_EXAMPLES", "200"))

settings.register_profile(
    "zoufang",
    max_examples=EXAMPLES,
    deadline=None,  # a shared, noisy machine: speed is for the benchmarks
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("zoufang")
