"""FusedTransformProcessor: a chain of map / filter / flat_map / peek steps run as one.

Adjacent stateless steps of a pipeline lower to one vertex whose processor runs
the whole chain in one Python function per inbox batch, generated from the steps
(`compile_chain`): one loop over the batch, one nested loop per flat_map, and no
per-step queue, method call or list in between.

Backpressure: a chain of map / filter / peek gives at most one output per input,
so `process` takes only as many items as the outbox has room for and every output
fits. A chain with a flat_map can give any number; its generated function is a
generator that records in a cursor which input item it is working on, so the
processor removes from the inbox exactly the items whose outputs are all emitted
and resumes the suspended generator, mid-item, on the next call. An item stays in
the inbox until it is finished, as Jet's contract asks, so the engine never sees an
empty inbox while outputs are still owed.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from jetmq.core.inbox_outbox import Inbox
from jetmq.core.processor import Processor

__all__ = ["CHAIN_KINDS", "FusedTransformProcessor", "compile_chain", "run_chain"]

CHAIN_KINDS = ("map", "filter", "flat_map", "peek")
"""The step kinds that fuse: stateless, one input, outputs in input order."""

Step = tuple[str, Callable[..., Any]]


def compile_chain(steps: Sequence[Step], log: Callable[[str], object] | None = None,
                  with_cursor: bool = False, timestamped: bool = False) -> Callable[..., Iterator[Any]]:
    """A generator function yielding the outputs of `steps` over the items of a batch:
    `fn(batch)`, or with `with_cursor` `fn(batch, cursor)`, which also sets `cursor[0]`
    to the index in `batch` of the input item whose outputs it is producing.

    Step semantics, as Jet's: map emits `fn(x)` unless it is None; filter emits `x`
    when `fn(x)` is truthy; flat_map emits every element of the iterable `fn(x)`
    (None counts as empty); peek calls `log(fn(x))` and emits `x`.

    One yield per output is cheap when the consumer is C (`list.extend(islice(gen,
    n))` in `Outbox.offer_many`): measured ~10-15 ns per word of a word count's
    flat_map, less than yielding each flat_map result whole and extending with it
    in Python (which costs more per line than it saves per word).

    With `timestamped`, the batch holds `(ts, item)` events (see
    jetmq.pipeline.events): the steps see `item`, and each output is yielded as
    `(ts, output)`, keeping the timestamp of the item it came from.
    """
    for kind, fn in steps:
        if kind not in CHAIN_KINDS:
            raise ValueError(f"unknown chain step kind {kind!r}; expected one of {CHAIN_KINDS}")
        if not callable(fn):
            raise TypeError(f"{kind} step: fn must be callable, got {fn!r}")
    namespace: dict[str, Any] = {"log": log, "enumerate": enumerate}
    head = "ts, v0" if timestamped else "v0"
    if with_cursor:
        lines = ["def _chain(batch, cursor):", f"    for i, ({head}) in enumerate(batch):", "        cursor[0] = i"]
    else:
        lines = ["def _chain(batch):", f"    for {head} in batch:"]
    indent, var = "        ", "v0"
    for n, (kind, fn) in enumerate(steps):
        f, out = f"f{n}", f"v{n + 1}"
        namespace[f] = fn
        if kind == "map":
            lines += [f"{indent}{out} = {f}({var})", f"{indent}if {out} is None:", f"{indent}    continue"]
            var = out
        elif kind == "filter":
            lines += [f"{indent}if not {f}({var}):", f"{indent}    continue"]
        elif kind == "peek":
            lines += [f"{indent}log({f}({var}))"]
        else:  # flat_map; a `continue` in a nested loop skips only the current output
            lines += [f"{indent}r{n} = {f}({var})", f"{indent}if r{n} is None:", f"{indent}    continue",
                      f"{indent}for {out} in r{n}:"]
            indent, var = indent + "    ", out
    lines += [f"{indent}yield (ts, {var})" if timestamped else f"{indent}yield {var}"]
    label = "-".join(kind for kind, _ in steps) or "identity"
    exec(compile("\n".join(lines), f"<fused chain {label}>", "exec"), namespace)
    return namespace["_chain"]


class FusedTransformProcessor(Processor):
    """Runs a chain of steps over every item of every input ordinal; emits to all outputs.

    With no steps it forwards items unchanged (the merge and rebalance vertices).
    """

    def __init__(self, steps: Sequence[Step], timestamped: bool = False) -> None:
        self._steps = tuple(steps)
        self._timestamped = timestamped
        self._has_flat_map = any(kind == "flat_map" for kind, _ in self._steps)
        self._chain: Callable[..., Iterator[Any]] | None = None
        # With a flat_map: the suspended generator over the inbox's first items, the
        # cursor it keeps, and how many of its batch's items are already removed.
        self._pending: Iterator[Any] | None = None
        self._cursor = [0]
        self._removed = 0
        self._batch_len = 0

    def init_hook(self) -> None:
        self._chain = compile_chain(self._steps, self.context.logger.info, with_cursor=self._has_flat_map,
                                    timestamped=self._timestamped)

    def process(self, ordinal: int, inbox: Inbox) -> None:
        room = self.outbox.room()
        if not room:
            return
        if not self._steps:
            self.outbox.offer_many(inbox.take(room))
        elif not self._has_flat_map:
            # At most one output per input, so all outputs of `room` inputs fit.
            self.outbox.offer_many(self._chain(inbox.take(room)))
        else:
            self._process_flat(inbox, room)

    def _process_flat(self, inbox: Inbox, room: int) -> None:
        outbox = self.outbox
        while room:
            pending = self._pending
            if pending is None:
                if not inbox:
                    return
                batch = list(inbox)  # the items stay in the inbox until all their outputs are out
                self._cursor[0] = self._removed = 0
                self._batch_len = len(batch)
                pending = self._pending = self._chain(batch, self._cursor)
            if outbox.offer_many(pending) < room:  # the generator is exhausted: its batch is done
                self._drop(inbox, self._batch_len)
                self._pending = None
                room = outbox.room()
                continue
            # Full. The items before the one in progress are done; that one stays in the
            # inbox (even if its outputs happen to be all out: the next call finds out).
            self._drop(inbox, self._cursor[0])
            return

    def _drop(self, inbox: Inbox, done: int) -> None:
        if done > self._removed:
            inbox.take(done - self._removed)
            self._removed = done


def run_chain(steps: Sequence[Step], items: Iterable[Any]) -> list[Any]:
    """The outputs of `steps` over `items`, for tests and references (peek logs nowhere)."""
    return list(compile_chain(steps, log=lambda _msg: None)(items))
