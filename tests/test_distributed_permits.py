"""The global request limit of a Ray run without a cluster: the coordinator and a worker's permit pool
in one event loop (the coordinator's methods called as Ray would, through ``.remote``).

These pin down the stall once seen after a worker node was killed: every permit idle in some
worker's pool while that worker's lanes, holding items, waited for the coordinator.
"""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("ray")

from airisk.distributed.coordinator import Coordinator  # noqa: E402
from airisk.distributed.generate import PermitPool  # noqa: E402


class InLoop:
    """``actor.method.remote(...)`` on a plain object: an awaitable, like a Ray ObjectRef (and, like one,
    cancelling the caller's wait does not cancel the call on the actor)."""

    def __init__(self, obj):
        self.obj = obj

    def __getattr__(self, name):
        method = getattr(self.obj, name)

        class Call:
            @staticmethod
            def remote(*args):
                out = method(*args)
                if asyncio.iscoroutine(out):
                    return asyncio.shield(asyncio.ensure_future(out))
                fut = asyncio.get_running_loop().create_future()
                fut.set_result(out)
                return fut
        return Call


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def test_a_lane_waiting_for_the_coordinator_takes_a_permit_given_back_in_its_own_pool():
    async def go():
        coord = Coordinator(concurrency=2)
        c = InLoop(coord)
        other = PermitPool(c, "other#0", want=1)
        await other.get()  # another slot holds one of the two permits for the whole test
        pool = PermitPool(c, "slot#0", want=2)
        await pool.get()  # takes the last free permit
        waiting = asyncio.create_task(pool.get())  # the coordinator has none left: this waits
        await settle()
        assert not waiting.done() and coord.free == 0
        await pool.put(keep=True)  # the first lane's request is answered: its permit is idle here
        await asyncio.wait_for(waiting, 2)  # ... and the waiting lane takes it (it used to wait forever)
        assert coord.held["slot#0"] == 1 and coord.max_in_flight == 2
        await pool.put(keep=False)
        await other.put(keep=False)
        await pool.close()
        await settle()
        coord.holder_done("slot#0")
        assert coord.free == 2 and not coord.held["slot#0"]

    asyncio.run(go())


def test_two_slots_sharing_a_small_limit_answer_everything_and_never_exceed_it():
    """Two slots, 6 lanes each, 3 permits in all: every item is answered and at most 3 are in flight."""
    async def go():
        coord = Coordinator(concurrency=3)
        c = InLoop(coord)
        in_flight = [0, 0]  # now, max

        async def slot(name: str, items: list[int]) -> int:
            pool = PermitPool(c, name, want=3)
            queue: asyncio.Queue = asyncio.Queue()
            for it in items:
                queue.put_nowait(it)
            for _ in range(6):
                queue.put_nowait(None)
            done = 0

            async def lane():
                nonlocal done
                while (it := await queue.get()) is not None:
                    await pool.get()
                    try:
                        in_flight[0] += 1
                        in_flight[1] = max(in_flight[1], in_flight[0])
                        await asyncio.sleep(0.001 * (it % 3))
                        in_flight[0] -= 1
                        done += 1
                    finally:
                        await pool.put(keep=not queue.empty())
                await pool.trim()

            await asyncio.gather(*(lane() for _ in range(6)))
            await pool.close()
            coord.holder_done(name)
            return done

        a, b = await asyncio.wait_for(asyncio.gather(slot("a#0", list(range(200))), slot("b#0", list(range(57)))), 20)
        assert (a, b) == (200, 57)
        assert in_flight[1] <= 3 and coord.max_in_flight <= 3
        await settle()
        assert coord.free == 3

    asyncio.run(go())


def test_a_dead_holders_late_grant_comes_back_to_the_pool():
    """A request left outstanding by a slot that ended is granted later: the permit must not leak."""
    async def go():
        coord = Coordinator(concurrency=1)
        c = InLoop(coord)
        first = PermitPool(c, "a#0", want=1)
        await first.get()
        late = PermitPool(c, "b#0", want=1)
        waiting = asyncio.create_task(late.get())
        await settle()
        waiting.cancel()  # the slot ended (its task cancelled) with its request still at the coordinator
        await late.close()
        coord.holder_done("b#0")
        await first.put(keep=False)  # the permit goes to b#0's old request, which gives it straight back
        await settle()
        assert coord.free == 1 and not coord.held["b#0"]

    asyncio.run(go())


def test_a_shard_finished_by_a_slot_declared_dead_is_not_handed_out_again():
    coord = Coordinator(concurrency=1)
    coord.add_shards([[{"id": "a"}], [{"id": "b"}]])
    coord.slot_started(0, "node-x")
    k, _ = coord.next_shard("0#0")
    coord.reap(["node-y"])  # node-x looks dead: the shard goes back to the queue
    coord.shard_done("0#0", k)  # ... but the slot was alive and stored every answer
    coord.slot_started(1, "node-y")
    got = coord.next_shard("1#0")
    assert got is not None and got[0] != k
    assert coord.next_shard("1#0") is None


def test_a_slot_above_its_fair_share_gives_permits_back_as_requests_finish():
    async def go():
        coord = Coordinator(concurrency=4)
        c = InLoop(coord)
        coord.add_shards([[{"id": "a"}], [{"id": "b"}]])
        first = PermitPool(c, "a#0", want=4)
        coord.next_shard("a#0")
        for _ in range(4):
            await first.get()  # the first slot took the whole limit
        assert coord.share("a#0") == 4
        second = PermitPool(c, "b#0", want=4)
        coord.next_shard("b#0")
        waiting = asyncio.create_task(second.get())
        await settle()
        assert not waiting.done() and coord.share("a#0") == 2  # two slots with work: 2 permits each
        first.cap = await c.share.remote("a#0")
        await first.put(keep=True)  # above its share: this permit goes back, to the waiting slot
        await asyncio.wait_for(waiting, 2)
        assert coord.held["a#0"] == 3 and coord.held["b#0"] == 1

    asyncio.run(go())
