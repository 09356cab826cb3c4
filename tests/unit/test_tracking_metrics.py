"""CLEAR-MOT / IDF1 implementation on hand-checked cases."""

from __future__ import annotations

import numpy as np
import pytest

from autonomy.tracking.metrics import evaluate_mot, iou_matrix, optimal_pairs


def _f(ids, boxes):
    return np.array(ids, dtype=np.int64), np.array(boxes, dtype=float).reshape(-1, 4)


A = [0, 0, 10, 10]
B = [100, 100, 110, 110]


def test_iou():
    assert iou_matrix(np.array([A]), np.array([[5, 0, 15, 10]]))[0, 0] == pytest.approx(50 / 150)
    assert iou_matrix(np.array([A]), np.array([B]))[0, 0] == 0


def test_perfect_tracking():
    gt = [_f([1, 2], [A, B])] * 5
    r = evaluate_mot(gt, [_f([7, 8], [A, B])] * 5)
    assert (r.mota, r.idf1, r.id_switches, r.false_positives, r.misses) == (1.0, 1.0, 0, 0, 0)


def test_id_switch_fp_fn_and_idf1():
    gt = [_f([1], [A])] * 4
    hyp = [_f([7], [A]), _f([7], [A]), _f([8], [A]), _f([8, 9], [A, B])]
    r = evaluate_mot(gt, hyp)
    assert r.id_switches == 1 and r.false_positives == 1 and r.misses == 0
    assert r.mota == pytest.approx(1 - 2 / 4)
    # best one-to-one identity match covers 2 of 4 gt frames; 5 hypothesis boxes
    assert r.idf1 == pytest.approx(2 * 2 / (4 + 5))
    r2 = evaluate_mot([_f([1], [A])] * 2, [_f([], []), _f([3], [B])])
    assert r2.misses == 2 and r2.false_positives == 1 and r2.mota == pytest.approx(1 - 3 / 2)


def test_optimal_pairs_any_shape():
    c = np.array([[1.0, 2.0, 3.0], [1.0, 5.0, 1e30]])
    assert sorted(optimal_pairs(c)) == [(0, 1), (1, 0)]
    assert sorted(optimal_pairs(c.T)) == [(0, 1), (1, 0)]
