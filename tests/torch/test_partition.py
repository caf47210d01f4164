"""The pass arithmetic of ngramds.torch.partition: which global order positions each rank and
DataLoader worker builds, and the inverse a state records (hypothesis over every world size,
worker count, batch size and start)."""
from hypothesis import given
from hypothesis import strategies as st

from ngramds.torch.partition import (SharedPasses, WorkerStart, consumed_position,
                                     order_positions, pass_of, rank_samples, resumed_worker,
                                     worker_blocks, worker_delivered)

passes = st.fixed_dictionaries({
    "num_samples": st.integers(1, 200), "world": st.integers(1, 9), "workers": st.integers(1, 5),
    "batch_size": st.integers(1, 7), "drop_last": st.booleans()})


def rank_positions(p: dict, rank: int, start: int = 0, world: int | None = None) -> list[int]:
    """Positions rank ``rank`` delivers, in delivery order: the blocks of all its workers
    taken round-robin (block b from worker b mod workers), as the DataLoader hands them over."""
    world = p["world"] if world is None else world
    total = rank_samples(p["num_samples"], world, p["drop_last"], start)
    blocks = {}
    for w in range(p["workers"]):
        for block, lo, hi in worker_blocks(total, p["batch_size"], p["workers"],
                                           WorkerStart(start, 0, w, 0)):
            assert block % p["workers"] == w
            blocks[block] = order_positions(start, rank, world, lo, hi).tolist()
    assert sorted(blocks) == list(range(len(blocks)))
    return [x for b in sorted(blocks) for x in blocks[b]]


@given(passes)
def test_every_sample_exactly_once_across_ranks_and_workers(p):
    S, W = p["num_samples"], p["world"]
    per_rank = [rank_positions(p, r) for r in range(W)]
    n = rank_samples(S, W, p["drop_last"])
    assert all(len(x) == n for x in per_rank)  # every rank as many samples (lockstep)
    seen = sorted(x for positions in per_rank for x in positions)
    if p["drop_last"]:
        assert seen == list(range(n * W)) and S - n * W < W
    else:  # padded: every sample once, then the first positions of the order again
        assert seen == list(range(n * W)) and 0 <= n * W - S < W
        again = [i % S for i in range(n * W - S)]
        assert sorted(x % S for x in seen) == sorted([*range(S), *again])
    # the delivery order of a rank does not depend on the worker count
    assert per_rank[0] == rank_positions({**p, "workers": 1}, 0)


@given(passes, st.data())
def test_the_state_is_the_inverse_of_the_position(p, data):
    S, W = p["num_samples"], p["world"]
    start = data.draw(st.integers(0, S), label="start")
    n = rank_samples(S, W, p["drop_last"], start)
    delivered = data.draw(st.integers(0, n), label="delivered")
    so_far = sorted(x for r in range(W) for x in rank_positions(p, r, start)[:delivered])
    consumed = consumed_position(start, delivered, W, S)
    assert so_far == list(range(start, start + delivered * W))
    assert consumed == min(start + delivered * W, S)
    assert consumed_position(start, 0, W, S) == start


@given(passes, st.data())
def test_a_workers_position_counts_the_samples_its_blocks_stand_for(p, data):
    bs, workers = p["batch_size"], p["workers"]
    base = data.draw(st.integers(0, 50), label="base")
    block = data.draw(st.integers(0, 20), label="block")
    assert worker_delivered(base, bs, workers, None, 0) == base  # before its first sample
    # after block b (next: b + workers): up to the end of b, whatever the worker count
    assert worker_delivered(base, bs, workers, block + workers, 0) == base + (block + 1) * bs
    if bs > 1:  # inside block b, in_block samples of it delivered
        in_block = data.draw(st.integers(1, bs - 1), label="in_block")
        assert worker_delivered(base, bs, workers, block, in_block) == \
            base + block * bs + in_block


@given(passes, st.integers(1, 9), st.data())
def test_resume_on_another_world_size_delivers_the_rest_once(p, world_after, data):
    S, W = p["num_samples"], p["world"]
    n = rank_samples(S, W, p["drop_last"])
    delivered = data.draw(st.integers(0, n), label="delivered")
    before = [x for r in range(W) for x in rank_positions(p, r)[:delivered]]
    consumed = consumed_position(0, delivered, W, S)
    after = [x for r in range(world_after)
             for x in rank_positions(p, r, consumed, world=world_after)]
    both = sorted([*before, *after])
    if p["drop_last"]:
        assert len(set(both)) == len(both) and both == list(range(len(both)))
        assert S - len(both) < max(W, world_after)
    else:
        assert set(range(S)) <= {x % S for x in both}
        assert len({x for x in both if x < S}) == sum(x < S for x in both)


@given(st.integers(0, 1000), st.integers(1, 5), st.integers(-1, 1002), st.integers(0, 99))
def test_each_pass_is_the_next_epoch_and_only_the_first_resumes(base, started, resume_epoch,
                                                                 resume_start):
    epoch, start = pass_of(base, started, resume_epoch, resume_start)
    assert epoch == base + started - 1
    assert start == (resume_start if started == 1 and resume_epoch == epoch else 0)


def test_a_worker_resumes_its_own_position_only_with_the_same_layout():
    saved = {"start": 6, "base": 2, "next_block": 5, "in_block": 1, "num_workers": 3, "rank": 1}
    assert resumed_worker(saved, 3, 1, 4, 4) == WorkerStart(6, 2, 5, 1)
    for other in ((2, 1, 4, 4), (3, 0, 4, 4), (3, 1, 4, 8)):
        assert resumed_worker(saved, *other) is None
    assert resumed_worker({**saved, "next_block": None}, 3, 1, 4, 4) is None
    assert resumed_worker(None, 3, 1, 4, 4) is None


def test_shared_passes_count_epochs_and_hold_the_resume_position():
    shared = SharedPasses(max_workers=4)
    assert (shared.epoch, shared.resume, shared.any_started()) == (0, (-1, 0), False)
    c = shared.counter(2, 1)
    assert c != shared.counter(2, 0) and c != shared.counter(0, 0)
    shared.epoch = 3
    shared.set_resume(3, 17)
    assert shared.resume_start(3) == 17 and shared.resume_start(4) == 0
    assert shared.start_pass(c) == 1 and shared.start_pass(c) == 2 and shared.any_started()
    assert shared.passes(c) == 2
    shared.reset(c)
    assert shared.passes(c) == 0
    shared.start_pass(c)
    shared.restart()
    assert not shared.any_started()
    shared.drop_resume()
    assert shared.resume_start(3) == 0
    assert shared._t.is_shared()
