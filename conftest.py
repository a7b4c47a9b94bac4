"""Settings shared by tests/ and benches/.

Hypothesis's per-example deadline (200 ms by default) measures the machine, not
the code: on a loaded 2-core CI machine one example can take longer, and the
test then fails as "flaky" although nothing is wrong. Tests must not fail
because the machine is slow, so the deadline is off everywhere; the number of
examples is unchanged.
"""

from hypothesis import settings

settings.register_profile("peerpool", deadline=None)
settings.load_profile("peerpool")
