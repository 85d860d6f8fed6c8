"""Layer adaptation: LAMB's trust ratio on any base optimizer ("6个派生优化器")."""

from __future__ import annotations

from collections.abc import Sequence

from keras import ops

from blogml.optimizers import kernels


def trust_ratios(thetas: Sequence, deltas: Sequence, learning_rates: Sequence,
                 rows: Sequence | None = None, scales: Sequence[float] | None = None) -> list:
    """r = ‖θ‖ / ‖Δ/η‖ = η‖θ‖ / ‖Δ‖ of each variable, and 1 where either norm is 0 (a fresh
    zero bias, a zero step, a zero learning rate at the start of a warm-up).

    Δ/η is the base optimizer's step direction with the learning rate taken out, so the
    rescaled step Δ·r has norm η‖θ‖: each variable moves by the same relative amount.
    With a row mask in `rows` (lazy updates; None for the others) both norms of that
    variable are taken over those rows only. All variables share the same dtype. With
    `scales`, each ratio comes multiplied by its scale (a sign and a paramwise multiplier of
    the step it will rescale), in the same stacked ops.

    The scalar arithmetic runs on the stacked norms, a few ops for all the variables: on
    TensorFlow without XLA each scalar op of each variable would be a kernel launch.
    """
    rows = rows if rows is not None else [None] * len(thetas)
    theta_sums = ops.stack([kernels.half_sum_of_squares(theta, mask)
                            for theta, mask in zip(thetas, rows)])
    delta_sums = ops.stack([kernels.half_sum_of_squares(delta, mask)
                            for delta, mask in zip(deltas, rows)])
    # ‖θ‖/‖Δ‖ as √(½Σθ² / ½ΣΔ²): one square root, and the halves cancel exactly. Both
    # sums > 0 as one comparison; where Δ is 0 the quotient is inf or nan and never selected.
    defined = ops.minimum(theta_sums, delta_sums) > 0
    etas, otherwise = ops.stack(learning_rates), 1.0
    if scales is not None:
        otherwise = ops.convert_to_tensor(scales, theta_sums.dtype)
        etas = etas * otherwise
    ratio = ops.where(defined, etas * ops.sqrt(theta_sums / delta_sums), otherwise)
    return ops.unstack(ratio, num=len(thetas))
