"""The autoregressive prior: causal, shifted right, sampling follows its own distribution."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from blogml.models.prior import bits_per_code, build_prior, sample, shift_right

pytestmark = [pytest.mark.backend_neutral, pytest.mark.models]


def test_inputs_are_the_codes_shifted_right_after_a_start_token():
    codes = np.array([[[1, 2], [3, 0]]])
    np.testing.assert_array_equal(shift_right(codes, num_codes=4), [[4, 1, 2, 3]])


def test_a_prediction_never_sees_its_own_or_later_codes():
    keras.utils.set_random_seed(0)
    prior = build_prior(num_codes=5, grid=3, hidden=16, layers=2, heads=2, dropout=0.0)
    tokens = np.random.default_rng(0).integers(0, 6, size=(2, 9)).astype("int32")
    changed = tokens.copy()
    changed[:, 6] = (changed[:, 6] + 1) % 6
    a = keras.ops.convert_to_numpy(prior(tokens))
    b = keras.ops.convert_to_numpy(prior(changed))
    np.testing.assert_allclose(a[:, :6], b[:, :6], atol=1e-6)  # earlier positions: untouched
    assert not np.allclose(a[:, 6:], b[:, 6:])


def test_nll_in_bits_of_an_uninformed_prior_is_log2_k():
    assert bits_per_code(math.log(512)) == pytest.approx(9.0)


def test_cold_sampling_follows_the_most_likely_code_step_by_step():
    keras.utils.set_random_seed(1)
    prior = build_prior(num_codes=4, grid=2, hidden=8, layers=1, heads=1, dropout=0.0)
    codes = sample(prior.predict_on_batch, count=3, num_codes=4, grid=2, temperature=1e-4, seed=0)
    tokens = shift_right(codes, 4)
    logits = keras.ops.convert_to_numpy(prior(tokens))
    np.testing.assert_array_equal(codes.reshape(3, -1), np.argmax(logits, axis=-1))
