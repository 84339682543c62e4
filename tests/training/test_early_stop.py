"""Early stopping: patience on the validation accuracy, the best epoch kept (ties → lower loss), resumable."""

from __future__ import annotations

from training.early_stop import EarlyStopping


def test_stops_after_patience_epochs_without_a_better_accuracy() -> None:
    es = EarlyStopping(patience=2)
    assert es.update(1, 0.5, 2.0) and es.update(2, 0.7, 1.0)
    assert not es.update(3, 0.6, 0.9) and not es.should_stop
    assert not es.update(4, 0.7, 1.1) and es.should_stop  # equal accuracy, higher loss: not better
    assert (es.best_epoch, es.best_accuracy) == (2, 0.7)


def test_ties_keep_the_surer_model_but_do_not_reset_patience() -> None:
    es = EarlyStopping(patience=2)
    es.update(1, 0.9, 0.5)
    assert es.update(2, 0.9, 0.3)  # same accuracy, lower loss: these weights are kept
    assert es.best_epoch == 2 and es.bad_epochs == 1
    es.update(3, 0.9, 0.2)
    assert es.should_stop and es.best_epoch == 3


def test_patience_zero_never_stops_and_min_delta() -> None:
    es = EarlyStopping(patience=0)
    for epoch in range(1, 10):
        es.update(epoch, 0.5, 1.0)
    assert not es.should_stop and es.best_epoch == 1
    strict = EarlyStopping(patience=1, min_delta=0.05)
    strict.update(1, 0.5, 1.0)
    strict.update(2, 0.52, 0.9)  # better, but not by min_delta: patience runs out
    assert strict.should_stop and strict.best_epoch == 2


def test_state_round_trips_through_a_checkpoint() -> None:
    es = EarlyStopping(patience=3)
    assert EarlyStopping.from_dict(es.to_dict()) == es  # inf best loss survives JSON (as None)
    es.update(1, 0.4, 1.5)
    es.update(2, 0.3, 1.6)
    again = EarlyStopping.from_dict(es.to_dict())
    assert again == es and again.bad_epochs == 1
    assert "keeping epoch 1" in es.summary()
    assert "no validation" in EarlyStopping(patience=2).summary()


def test_accuracies_within_the_tolerance_are_ties_the_lower_loss_decides() -> None:
    """One validation token is noise: epoch 4, one token under epoch 2 and surer, is kept (a demo run)."""
    curve = [(1, 0.854, 0.6994), (2, 0.951, 0.1565), (3, 0.939, 0.2050), (4, 0.939, 0.1551)]
    strict, tolerant = EarlyStopping(patience=0), EarlyStopping(patience=0, tolerance=1.001 / 82)
    for epoch, acc, loss in curve:
        strict.update(epoch, acc, loss)
        tolerant.update(epoch, acc, loss)
    assert strict.best_epoch == 2
    assert (tolerant.best_epoch, tolerant.best_accuracy, tolerant.top_accuracy) == (4, 0.939, 0.951)
    # patience counts improvements over the highest accuracy, not over the kept epoch's
    es = EarlyStopping(patience=1, tolerance=0.05)
    es.update(1, 0.9, 0.5)
    assert es.update(2, 0.88, 0.4) and es.best_epoch == 2 and es.should_stop


def test_a_checkpoint_from_before_the_tolerance_resumes() -> None:
    old = {"patience": 2, "min_delta": 0.0, "best_accuracy": 0.8, "best_loss": 0.3, "best_epoch": 2}
    es = EarlyStopping.from_dict({**old, "bad_epochs": 0, "stopped_epoch": 0})
    assert es.top_accuracy == 0.8 and es.tolerance == 0.0
    assert not es.update(3, 0.79, 0.2)  # no tolerance: lower accuracy is not kept
