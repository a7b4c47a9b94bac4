"""Pure-Python references of the Rust kernels: the oracle in tests, the baseline in benches.

They favour obviousness over speed and share no code with the kernels they check.
"""
