"""Drivers: the only code that touches sockets and clocks.

They move datagrams between a UDP socket and a sans-I/O :class:`rpc.transport.Endpoint`, keep
its timer, and wait: a trio driver (``_trio``), a blocking one (``_blocking``), and what they
share (``_io``: socket helpers and the rules both follow; ``_busy_poll``). Also the small trio
utilities the runtime above builds on (deadline heap, worker pool, background nursery). They may
import :mod:`rpc.errors` and :mod:`rpc.transport`, the standard library and the event loops;
never :mod:`rpc.calls` or the runtime above them.
"""
