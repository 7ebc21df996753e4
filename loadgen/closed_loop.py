"""A closed-loop block's turns: which op_id each user calls next, and when the block ends.

N users each make their next call when their last one ends, so each call is intended at the
moment it is taken. Both runners (loadgen.runner's event-loop users, loadgen.sync_runner's OS
threads) mix this in and hand out calls with `_next_closed_call`; the thread runner holds its
lock around it, since its users take turns from several threads.
"""

from __future__ import annotations

import itertools
from array import array
from typing import Iterator

from loadgen.results import BY_OP
from loadgen.schedule import Block


class ClosedLoop:
    """The closed-loop methods of `Runner` (which holds the state they use)."""

    def _closed_turns(self, block: Block, warm: bool) -> tuple[Iterator[int], Iterator[int], list]:
        """A closed-loop block's warm-up op_ids, its measured op_ids, and its deadline ([None]
        until the first user leaves warm-up; 0: none, the block is bounded by its op_ids)."""
        shard, shards = self.shard, self.shards
        warm_ids = iter(range(shard, self.profile.warmup_operations, shards) if warm else ())
        if block.first is not None:
            measured = iter(range(block.first + (shard - block.first) % shards, block.last, shards))
        else:
            measured = itertools.count(self._next_closed_op, shards)
        deadline: list[int | None] = [None]
        if not warm:
            self._open_deadline(block, deadline, self.now_ns())
        return warm_ids, measured, deadline

    def _next_closed_call(self, block: Block, warm_ids: Iterator[int], measured: Iterator[int],
                          deadline: list) -> tuple[int, int, bool, int] | None:
        """A user's next call, counted in flight: (op_id, t_intended, warm-up, t_start); None when
        the block is done. Intended = now: the user's previous call has just ended."""
        now = self.now_ns()
        op_id = next(warm_ids, None)
        warmup = op_id is not None
        if not warmup:
            if deadline[0] is None:
                # The measured phase starts when the first user leaves warm-up.
                self._open_deadline(block, deadline, now)
            if deadline[0] and now >= deadline[0]:
                return None
            op_id = next(measured, None)
            if op_id is None:
                return None
            if block.first is None:
                self._next_closed_op = op_id + self.shards
                self._grow_by_op(op_id)
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        return op_id, now, warmup, self.now_ns() if warmup else self._mark_sent()

    def _closed_block_done(self, block: Block) -> None:
        """A block bounded by time: its op_ids end where the users stopped taking them."""
        if block.first is None:
            self._block_ops = (self._block_ops[0], self._next_closed_op)

    def _open_deadline(self, block: Block, deadline: list, now: int) -> None:
        if not self.measure_start_ns:
            self.measure_start_ns = now
        deadline[0] = now + block.duration_ns if block.duration_ns is not None else 0

    def _grow_by_op(self, op_id: int) -> None:
        size = len(self.stats.latency_by_op)
        if op_id >= size and self.profile.soak is None:
            grow = array("q", [-1]) * max(1024, op_id + 1 - size)
            for name in BY_OP:
                getattr(self.stats, name).extend(grow)
        self.stats.planned = max(self.stats.planned, op_id // self.shards + 1)
