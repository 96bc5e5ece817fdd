"""P x K and MaskReID anchor samplers: batch composition, lengths, determinism."""
from __future__ import annotations

from collections import Counter

import pytest
import torch

from reidnb.data.samplers import AnchorRankingSampler, RandomIdentitySampler


def _pids(counts: dict[int, int]) -> list[int]:
    return [pid for pid, n in counts.items() for _ in range(n)]


# 6 identities; K = 4 -> chunks max(n, 4) // 4 = 1, 1, 1, 2, 1, 1 = 7; P = 2 -> 3 batches
COUNTS = {10: 2, 11: 4, 12: 5, 13: 8, 14: 1, 15: 3}


def test_pk_batches_and_length():
    pids = _pids(COUNTS)
    s = RandomIdentitySampler(pids, batch_size=8, num_instances=4, seed=0)
    assert len(s) == 24
    for epoch in range(5):
        s.set_epoch(epoch)
        idx = list(s)
        assert len(idx) == 24
        for b in range(0, 24, 8):
            batch = idx[b:b + 8]
            c = Counter(pids[i] for i in batch)
            assert sorted(c.values()) == [4, 4], c          # P = 2 identities x K = 4
            for pid in c:
                ix = [i for i in batch if pids[i] == pid]
                if COUNTS[pid] >= 4:                         # enough images: no repeats
                    assert len(set(ix)) == 4
                else:                                        # < K: with replacement
                    assert set(ix) <= {i for i, p in enumerate(pids) if p == pid}
    # identity 14 has a single image: when drawn, the batch holds it 4 times
    seen14 = [i for e in range(20) for i in (s.set_epoch(e) or list(s)) if pids[i] == 14]
    assert seen14 and set(seen14) == {pids.index(14)} and len(seen14) % 4 == 0


def test_pk_dataloader_batches_are_pk():
    pids = _pids({p: 6 for p in range(10)})   # 10 ids x 6 -> 10 chunks of 4; P = 4 -> 2 batches
    s = RandomIdentitySampler(pids, batch_size=16, num_instances=4, seed=1)
    assert len(s) == 32
    loader = torch.utils.data.DataLoader(list(range(len(pids))), batch_size=16, sampler=s)
    batches = [b.tolist() for b in loader]
    assert len(batches) == 2
    for b in batches:
        assert sorted(Counter(pids[i] for i in b).values()) == [4, 4, 4, 4]


def test_pk_determinism_per_seed_and_epoch():
    pids = _pids(COUNTS)
    a = RandomIdentitySampler(pids, 8, 4, seed=3)
    b = RandomIdentitySampler(pids, 8, 4, seed=3)
    e0, e1 = list(a), list(a)                        # iter() advances the epoch
    b.set_epoch(1)
    assert list(b) == e1
    b.set_epoch(0)
    assert list(b) == e0
    assert e0 != e1
    c = RandomIdentitySampler(pids, 8, 4, seed=4)
    assert list(c) != e0


def test_pk_errors():
    with pytest.raises(ValueError, match="multiple"):
        RandomIdentitySampler([0, 1], batch_size=6, num_instances=4)
    with pytest.raises(ValueError, match="identities"):
        RandomIdentitySampler(_pids({0: 4, 1: 4}), batch_size=12, num_instances=4)


# MaskReID: 70 identities; id 0 has 15 images, id 1 has 5, the others 1..3 (id 3 has 1).
ANCHOR_COUNTS = {0: 15, 1: 5, **{p: 1 + p % 3 for p in range(2, 70)}}


def _check_anchor_batch(batch, pids, counts, num_pos=10, batch_size=64):
    assert len(batch) == batch_size and len(set(batch)) == batch_size
    c = Counter(pids[i] for i in batch)
    anchor, p = c.most_common(1)[0]
    assert p == min(num_pos, counts[anchor]) and p >= 2
    assert all(pids[i] == anchor for i in batch[:p])           # positives first
    rest = [pids[i] for i in batch[p:]]
    assert len(set(rest)) == batch_size - p and anchor not in rest  # N distinct ids x 1
    return anchor, p


def test_anchor_sampler_composition_and_k_rule():
    pids = _pids(ANCHOR_COUNTS)
    eligible = [p for p, n in ANCHOR_COUNTS.items() if n >= 2]
    s = AnchorRankingSampler(pids, batch_size=64, num_pos=10,
                             num_batches=len(eligible), seed=0)
    assert len(s) == len(eligible)
    batches = list(s)
    anchors = {}
    for b in batches:
        a, p = _check_anchor_batch(b, pids, ANCHOR_COUNTS)
        anchors[a] = p
    # one pass = every identity with >= 2 images is the anchor exactly once
    assert sorted(anchors) == sorted(eligible)
    assert anchors[0] == 10        # 10 positives + 54 other identities
    assert anchors[1] == 5         # k = 5 < 10: 5 + 59
    assert ANCHOR_COUNTS[3] == 1 and 3 not in anchors   # one image: never an anchor


def test_anchor_sampler_default_length_and_determinism():
    pids = _pids(ANCHOR_COUNTS)
    s = AnchorRankingSampler(pids, seed=7)
    assert len(s) == len(pids) // 64
    first, second = list(s), list(s)
    assert first != second
    t = AnchorRankingSampler(pids, seed=7)
    t.set_epoch(1)
    assert list(t) == second
    t.set_epoch(0)
    assert list(t) == first
    loader = torch.utils.data.DataLoader(list(range(len(pids))), batch_sampler=t)
    assert [b.shape[0] for b in loader] == [64] * len(t)


def test_anchor_sampler_errors():
    with pytest.raises(ValueError, match="other identities"):
        AnchorRankingSampler(_pids({p: 3 for p in range(20)}), batch_size=64, num_pos=10)
    with pytest.raises(ValueError, match="2 or more"):
        AnchorRankingSampler(list(range(100)), batch_size=8, num_pos=2)
    with pytest.raises(ValueError, match="num_pos"):
        AnchorRankingSampler(_pids({0: 3}), batch_size=8, num_pos=8)
