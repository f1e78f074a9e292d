"""The fleet's assignment (pipeline/fleet/assign.py), by property: every camera the fleet has room for is run
by exactly one live member, no member gets more than its capacity or its fair share, every member computes
the same answer, and a member joining or leaving moves few cameras besides its own."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from affectstream.pipeline.fleet.assign import assign, fair_share

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=12)
cameras_st = st.sets(names, max_size=300)
members_st = st.dictionaries(names, st.integers(min_value=1, max_value=60), min_size=1, max_size=12)


def _bound(cameras: int, capacity: int, total: int) -> int:
    fair = fair_share(cameras, capacity, total)
    return min(capacity, fair + fair // 10)


@settings(max_examples=200, deadline=None)
@given(cameras_st, members_st)
def test_each_camera_has_one_live_member_within_its_bounds(cameras, capacities):
    out = assign(cameras, capacities)
    assert set(out) <= cameras and set(out.values()) <= set(capacities)
    total = sum(capacities.values())
    loads = {m: 0 for m in capacities}
    for member in out.values():
        loads[member] += 1
    for member, load in loads.items():
        assert load <= _bound(len(cameras), capacities[member], total)
    # Nothing left out while the fleet has room (the fair shares add up to at least every camera).
    assert len(out) == min(len(cameras), sum(_bound(len(cameras), c, total) for c in capacities.values()))
    # The same inputs in any order: the same answer (every member computes it alone).
    assert assign(sorted(cameras, reverse=True), dict(reversed(list(capacities.items())))) == out


@settings(max_examples=150, deadline=None)
@given(st.sets(names, min_size=1, max_size=300), members_st, names, st.integers(min_value=1, max_value=60))
def test_a_member_joining_moves_few_cameras_besides_those_it_takes(cameras, capacities, joiner, capacity):
    if joiner in capacities:
        return
    before = assign(cameras, capacities)
    after = assign(cameras, {**capacities, joiner: capacity})
    taken = sum(m == joiner for m in after.values())
    moved_elsewhere = sum(before.get(c) != after.get(c) and after.get(c) != joiner for c in cameras)
    newly = sum(c not in before and c in after for c in cameras)
    # Each camera it takes frees a place that at most one other camera moves into, and so on down short
    # chains; measured: moves elsewhere stay within 1.2x of those taken (1x with ample capacity).
    assert moved_elsewhere - newly <= taken + math.ceil(0.25 * taken) + 2, (taken, moved_elsewhere)


@settings(max_examples=150, deadline=None)
@given(st.sets(names, min_size=1, max_size=300), members_st.filter(lambda m: len(m) >= 2))
def test_a_member_leaving_moves_few_cameras_besides_its_own(cameras, capacities):
    leaver = sorted(capacities)[0]
    before = assign(cameras, capacities)
    after = assign(cameras, {m: c for m, c in capacities.items() if m != leaver})
    own = sum(m == leaver for m in before.values())
    others_moved = sum(before.get(c) not in (None, leaver) and before.get(c) != after.get(c) for c in cameras)
    assert others_moved <= own + math.ceil(0.25 * own) + 2, (own, others_moved)


def test_the_grid_the_bench_runs_spreads_evenly():
    """105 cameras on 10 members of capacity 11 (the case that stormed claims): all run, none above 11."""
    cameras = [f"cam{i}" for i in range(105)]
    out = assign(cameras, {f"m{i}": 11 for i in range(10)})
    loads = [list(out.values()).count(f"m{i}") for i in range(10)]
    assert len(out) == 105 and max(loads) == 11 and min(loads) >= 9
    # 10,000 on 100: every camera placed, and the answer comes fast enough for every member to compute it.
    big = assign([f"cam{i}" for i in range(10_000)], {f"m{i}": 100 for i in range(100)})
    assert len(big) == 10_000 and max(list(big.values()).count(m) for m in ("m0", "m1", "m2")) <= 100


@settings(max_examples=100, deadline=None)
@given(cameras_st, members_st, st.data())
def test_no_camera_goes_to_a_member_unable_to_run_it(cameras, capacities, data):
    pool = sorted(cameras) or ["none"]
    unable = {m: data.draw(st.sets(st.sampled_from(pool))) for m in capacities}
    out = assign(cameras, capacities, unable)
    assert all(camera not in unable[member] for camera, member in out.items())
    # only cameras that some member can run are placed
    runnable = {c for c in cameras if any(c not in unable[m] for m in capacities)}
    assert set(out) <= runnable
