"""The loop's pure parts: the per-epoch example order (what makes a resumed job repeat the same batches)."""

from __future__ import annotations

from training.loop import epoch_order


def test_epoch_order_is_a_permutation_fixed_by_seed_and_epoch() -> None:
    a = epoch_order(20, seed=42, epoch=3)
    assert sorted(a) == list(range(20))
    assert a == epoch_order(20, seed=42, epoch=3)  # a resumed job sees the same order
    assert a != epoch_order(20, seed=42, epoch=4) and a != epoch_order(20, seed=7, epoch=3)
