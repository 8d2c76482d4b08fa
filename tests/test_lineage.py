"""Stable ids: matching a new clustering to the current model's segments (no Spark needed)."""

import numpy as np

from segmentation.train import lineage


def _labels(*blocks):
    return np.concatenate([np.full(n, v) for v, n in blocks])


def test_renumbered_segments_keep_their_ids():
    previous = _labels((0, 300), (1, 200), (2, 100))
    new = _labels((2, 290), (1, 10), (0, 200), (1, 100))  # the clusterer numbered them afresh
    m = lineage.match(new, previous, "v1", previous_next_id=3)
    assert m.mapping == {2: 0, 0: 1, 1: 2}
    assert (m.relabel(new) == previous)[:290].all() and m.next_id == 3
    assert sorted(e["relation"] for e in m.events) == ["kept"] * 3
    assert m.kept == {0: 0, 1: 1, 2: 2}


def test_one_more_segment_gets_a_new_id_and_the_split_is_recorded():
    previous = _labels((0, 400), (1, 300), (2, 300))
    new = _labels((5, 240), (6, 160), (7, 300), (8, 300))  # old 0 splits 60/40 into 5 and 6
    m = lineage.match(new, previous, "v1", previous_next_id=4)  # id 3 was issued once and retired
    assert m.mapping[5] == 0 and m.mapping[7] == 1 and m.mapping[8] == 2
    assert m.mapping[6] == 4  # never the retired 3, never a reused id
    relations = {(e["relation"], tuple(e["segment_ids"]), tuple(e["previous_segment_ids"])) for e in m.events}
    assert ("new", (4,), (0,)) in relations
    assert ("split", (0, 4), (0,)) in relations
    assert m.next_id == 5


def test_a_merge_and_a_retired_id_are_recorded():
    previous = _labels((0, 200), (1, 200), (2, 400))
    new = _labels((0, 400), (1, 400))  # old 0 and 1 merge into one segment
    m = lineage.match(new, previous, "v1", previous_next_id=3)
    assert m.mapping[1] == 2
    relations = [(e["relation"], e["segment_ids"], sorted(e["previous_segment_ids"])) for e in m.events]
    assert ("merge", [m.mapping[0]], [0, 1]) in relations
    assert sum(r == "retired" for r, _, _ in relations) == 1
    rows = lineage.table_rows(m, "v2")
    assert {r["relation"] for r in rows} == {"kept", "merge", "retired"}
    assert all(r["model_version"] == "v2" and r["previous_model_version"] == "v1" for r in rows)


def test_noise_stays_noise_and_first_ids_can_start_above_a_floor():
    labels = _labels((0, 50), (-1, 5), (1, 50))
    m = lineage.first_ids(labels, start=7)
    assert list(np.unique(m.relabel(labels))) == [-1, 7, 8] and m.next_id == 9
