"""Keep message-sized buffers on the C heap instead of in fresh ``mmap`` regions.

Every large message allocates several megabyte-sized ``bytes`` per call (the packed message,
the reassembled one, the decoded ``bin``). glibc serves a block at or above its *mmap threshold*
with a fresh ``mmap`` and unmaps it on free, so each such buffer is paid for again in page
faults: 256 per MiB, measured at ~3.5 µs each on the benchmark VM (~2.5 ms of the ~7.4 ms CPU of
an in-process 1 MiB echo). glibc raises the threshold to the size of the largest *freed* mmapped
block (and its heap trim threshold to twice that; see mallopt(3), M_MMAP_THRESHOLD), but
same-sized buffers keep missing it, because only a block strictly smaller than the threshold
goes to the heap. Allocating and freeing one block larger than the common message sizes, once,
moves them to the heap, where freed memory is reused without faults.

Harmless elsewhere: on other allocators it is one zero-filled allocation and its release
(``calloc`` of a large block maps pages lazily, so nothing is touched).
"""

from __future__ import annotations

import functools

#: Messages up to about this size stop costing page faults. Bounded by glibc's ceiling on the
#: dynamic threshold (32 MiB on 64-bit, mallopt(3)); the cost is that the heap may keep up to
#: twice this much freed memory instead of returning it to the system.
LARGE_BUFFER_SIZE = 4 * 1024 * 1024


@functools.cache  # once per process is enough: the threshold only ever rises
def prefer_heap_for_large_buffers() -> None:
    """Raise the allocator's mmap threshold above common message sizes (once per process)."""
    block = bytes(LARGE_BUFFER_SIZE)  # zero-filled via calloc: no page is touched
    del block
