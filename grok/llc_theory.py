"""The learning coefficient of reduced-rank regression in closed form (docs/formulas.md §8.3):
Aoyagi & Watanabe, *Stochastic complexities of reduced rank regression in Bayesian estimation*,
Neural Networks 18 (2005), main theorem. Pure Python; the reference the LLC estimator is tested against.
"""

from __future__ import annotations


def reduced_rank_lambda(input_dim: int, hidden: int, output_dim: int, rank: int = 0) -> float:
    """λ of a two-layer linear network x ↦ x A B (A [M, H], B [H, N]) whose true map has rank r ≤ H.

    >>> lam = grok.reduced_rank_lambda(5, 3, 5)      # 6.5: case 1, M + H + N + r odd

    With M = `input_dim`, N = `output_dim`, H = `hidden`, r = `rank`:
    case 2, M + H < N + r: (HM − Hr + Nr)/2; case 3, N + H < M + r: (HN − Hr + Mr)/2;
    case 4, M + N < H + r: MN/2; otherwise (case 1) [2(H + r)(M + N) − (M − N)² − (H + r)²]/8,
    plus 1/8 when M + H + N + r is odd (the parity term)."""
    m, h, n, r = input_dim, hidden, output_dim, rank
    for name, value in (("input_dim", m), ("hidden", h), ("output_dim", n)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number ≥ 1, got {value!r}")
    if not isinstance(r, int) or not 0 <= r <= min(m, h, n):
        raise ValueError(f"rank must be a whole number from 0 to min(M, H, N) = {min(m, h, n)}, got {r!r}")
    if m + h < n + r:
        return (h * m - h * r + n * r) / 2
    if n + h < m + r:
        return (h * n - h * r + m * r) / 2
    if m + n < h + r:
        return m * n / 2
    parity = (m + h + n + r) % 2
    return (2 * (h + r) * (m + n) - (m - n) ** 2 - (h + r) ** 2 + parity) / 8
