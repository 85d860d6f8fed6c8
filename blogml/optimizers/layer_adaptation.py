"""Layer adaptation: LAMB's trust ratio on any base optimizer ("6个派生优化器")."""

from __future__ import annotations

from keras import ops


def trust_ratio(theta, delta, learning_rate):
    """r = ‖θ‖ / ‖Δ/η‖ = η‖θ‖ / ‖Δ‖, and 1 where either norm is 0 (a fresh zero bias, a
    zero step, a zero learning rate at the start of a warm-up).

    Δ/η is the base optimizer's step direction with the learning rate taken out, so the
    rescaled step Δ·r has norm η‖θ‖: each variable moves by the same relative amount.
    """
    theta_norm = ops.sqrt(ops.sum(ops.square(theta)))
    delta_norm = ops.sqrt(ops.sum(ops.square(delta)))
    # Both norms > 0 as one comparison (without XLA every scalar op of every variable is a
    # kernel launch); where Δ is 0 the quotient is inf or nan and never selected.
    defined = ops.minimum(theta_norm, delta_norm) > 0
    return ops.where(defined, learning_rate * theta_norm / delta_norm, 1.0)
