"""Retrying failed calls: :class:`RetryPolicy`, and the rules both clients follow.

A policy is off unless asked for: ``rpc.connect(..., retry=RetryPolicy())`` or
``rpc.SyncClient(..., retry=RetryPolicy())`` make it a client's default, and every generated
method's keyword-only ``retry=`` overrides it for one call (``retry=rpc.NO_RETRY`` turns it
off). The clients retry a failed attempt only when running the call again cannot do harm and
might succeed (:func:`worth_retrying`), sleep a jittered, exponentially growing backoff
between attempts (:meth:`RetryPolicy.backoff`), and keep every attempt and every sleep within
the call's one deadline.

No I/O and no clock here: the clients sleep (``trio.sleep``, ``time.sleep``) and read time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
from typing import Final

from rpc.errors import (
    ApplicationError,
    CallOutcome,
    ClientClosed,
    DeadlineExceeded,
    InvalidArgument,
    MessageTooLarge,
    RemoteError,
    RpcError,
    UnknownMethod,
    UnknownService,
    VersionMismatch,
)

#: Backoff defaults, the shape of gRPC's retry policy (gRFC A6, "Exponential backoff": the
#: n-th retry waits ``random(0, min(initialBackoff * multiplier**(n-1), maxBackoff))``).
DEFAULT_ATTEMPTS = 3
DEFAULT_INITIAL_BACKOFF = 0.05
DEFAULT_MAX_BACKOFF = 2.0
DEFAULT_MULTIPLIER = 2.0
#: 1.0 is "full jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter", 2015):
#: retrying clients spread out instead of arriving in synchronised waves.
DEFAULT_JITTER = 1.0

#: The generator used when a policy has none of its own (tests pass a seeded one).
_RANDOM: Final = random.Random()

#: Errors that another attempt would meet again: the server does not serve what was called,
#: the arguments are invalid, the message is too large, the client is closed, or the handler
#: ran and answered (an application or remote error: retrying it is pointless).
_FINAL_ERRORS: Final = (
    ApplicationError,
    RemoteError,
    UnknownService,
    UnknownMethod,
    VersionMismatch,
    InvalidArgument,
    MessageTooLarge,
    ClientClosed,
)


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a call is retried.

    ``attempts`` counts every attempt, the first included (1 never retries). Before the n-th
    retry the client sleeps ``cap * (1 - jitter * u)`` seconds, ``u`` uniform in [0, 1) from
    ``rng``, where ``cap = min(initial_backoff * multiplier ** (n - 1), max_backoff)``:
    ``jitter=1`` (the default) is full jitter, ``jitter=0`` sleeps exactly ``cap``. ``rng`` is
    a ``random.Random`` to draw from (a seeded one makes tests repeatable); ``None`` uses a
    shared one. Invalid fields raise ``InvalidArgument``.
    """

    attempts: int = DEFAULT_ATTEMPTS
    initial_backoff: float = DEFAULT_INITIAL_BACKOFF
    max_backoff: float = DEFAULT_MAX_BACKOFF
    multiplier: float = DEFAULT_MULTIPLIER
    jitter: float = DEFAULT_JITTER
    rng: random.Random | None = dataclasses.field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not (type(self.attempts) is int and self.attempts >= 1):
            raise InvalidArgument(
                f"RetryPolicy.attempts must be an int >= 1, not {self.attempts!r}"
            )
        for name in ("initial_backoff", "max_backoff", "multiplier", "jitter"):
            value = getattr(self, name)
            if not (_number(value) and math.isfinite(value) and value >= 0):
                raise InvalidArgument(
                    f"RetryPolicy.{name} must be a finite number >= 0, not {value!r}"
                )
        if self.max_backoff < self.initial_backoff:
            raise InvalidArgument(
                f"RetryPolicy.max_backoff ({self.max_backoff!r}) must not be less than "
                f"initial_backoff ({self.initial_backoff!r})"
            )
        if self.multiplier < 1.0:
            raise InvalidArgument(
                f"RetryPolicy.multiplier must be >= 1, not {self.multiplier!r}"
            )
        if self.jitter > 1.0:
            raise InvalidArgument(f"RetryPolicy.jitter must be within 0..1, not {self.jitter!r}")
        if self.rng is not None and not isinstance(self.rng, random.Random):
            raise InvalidArgument(f"RetryPolicy.rng must be a random.Random, not {self.rng!r}")

    def backoff_cap(self, retry: int) -> float:
        """The longest sleep before the ``retry``-th retry (1 for the first)."""
        if retry < 1:
            raise ValueError(f"retry numbers start at 1, not {retry!r}")
        cap = self.max_backoff
        # multiplier ** (retry - 1) overflows long after it passed max_backoff
        with contextlib.suppress(OverflowError):
            cap = min(cap, self.initial_backoff * self.multiplier ** (retry - 1))
        return cap

    def backoff(self, retry: int) -> float:
        """A jittered sleep before the ``retry``-th retry (1 for the first), in seconds."""
        rng = self.rng if self.rng is not None else _RANDOM
        return self.backoff_cap(retry) * (1.0 - self.jitter * rng.random())


#: A policy that never retries: ``retry=rpc.NO_RETRY`` turns a client's default off for a call.
NO_RETRY: Final = RetryPolicy(attempts=1)


def check_retry(service: str, method: str, retry: object) -> RetryPolicy:
    """``retry`` if it is a policy; raises ``TypeError`` naming ``service.method()``."""
    if not isinstance(retry, RetryPolicy):
        raise TypeError(
            f"{service}.{method}(): retry must be an rpc.RetryPolicy or None, "
            f"not {type(retry).__name__!r}"
        )
    return retry


def default_policy(retry: object) -> RetryPolicy:
    """A client's default policy from its ``retry`` argument (``None``: :data:`NO_RETRY`)."""
    if retry is None:
        return NO_RETRY
    if not isinstance(retry, RetryPolicy):
        raise TypeError(f"retry must be an rpc.RetryPolicy or None, not {type(retry).__name__!r}")
    return retry


def check_timeout(service: str, method: str, timeout: object) -> float | None:
    """A call's ``timeout`` in seconds, ``None`` for no deadline (``+inf`` is none either).

    A value that is not a number (``bool`` included) raises ``TypeError`` and NaN raises
    ``ValueError``, each naming the method (``"Calculator.add()"``) and the parameter. A
    timeout of 0 or less is valid: the call fails at once with ``DeadlineExceeded``, unsent.
    """
    if timeout is None:
        return None
    if not _number(timeout):
        raise TypeError(
            f"{service}.{method}(): timeout must be a number of seconds or None, "
            f"not {type(timeout).__name__!r}"
        )
    try:
        value = float(timeout)  # type: ignore[arg-type]  # an int or a float
    except OverflowError:  # an int beyond any float
        return None if timeout > 0 else -math.inf  # type: ignore[operator]
    if math.isnan(value):
        raise ValueError(
            f"{service}.{method}(): timeout must be a number of seconds or None, not NaN"
        )
    return None if value == math.inf else value


def worth_retrying(exc: RpcError, idempotent: bool) -> bool:
    """True when another attempt of a call that failed with ``exc`` is harmless and may help.

    Any call may be retried when it certainly did not run (``NOT_DELIVERED``,
    ``NOT_EXECUTED``); an ``idempotent`` call also when it may have run (``UNKNOWN``). Errors
    another attempt would meet again are never retried (:data:`_FINAL_ERRORS`), nor is a call
    that ran (``EXECUTED``).
    """
    if isinstance(exc, _FINAL_ERRORS):
        return False
    outcome = exc.outcome
    if outcome is CallOutcome.EXECUTED:
        return False
    return idempotent or outcome.safe_to_retry


#: How much each outcome says the server may have done, for :func:`combined_outcome`.
_RANK: Final = {
    CallOutcome.NOT_DELIVERED: 0,
    CallOutcome.NOT_EXECUTED: 1,
    CallOutcome.UNKNOWN: 2,
    CallOutcome.EXECUTED: 3,
}


def combined_outcome(earlier: CallOutcome, last: CallOutcome) -> CallOutcome:
    """What is known about a call over all its attempts: the most any attempt may have done.

    An attempt that may have run (``UNKNOWN``) stays ``UNKNOWN`` however later attempts end,
    unless one of them certainly ran (``EXECUTED``).
    """
    return earlier if _RANK[earlier] > _RANK[last] else last


class Retries:
    """One call's attempts under a policy: whether and when to try again (both clients).

    After each failed attempt the client asks :meth:`next_delay`; ``None`` means the error is
    final and the client raises it (its outcome then covers every attempt). Otherwise it sleeps
    that long and makes the next attempt.
    """

    __slots__ = ("_failures", "_outcome", "attempt", "idempotent", "policy")

    def __init__(self, policy: RetryPolicy, idempotent: bool) -> None:
        self.policy = policy
        self.idempotent = idempotent
        #: The number of the attempt under way (1 for the first).
        self.attempt = 1
        self._outcome: CallOutcome | None = None
        self._failures: list[str] = []

    def next_delay(self, exc: RpcError, now: float, deadline: float | None) -> float | None:
        """The backoff before the next attempt, after this one failed with ``exc``.

        ``None`` when ``exc`` ends the call: it is not worth retrying, the attempts are used
        up, or the backoff would reach the deadline (then the next attempt would have no time
        left, and ``exc`` says more than a ``DeadlineExceeded`` would). ``exc`` is then
        updated by :meth:`give_up`.
        """
        if self.attempt < self.policy.attempts and worth_retrying(exc, self.idempotent):
            delay = self.policy.backoff(self.attempt)
            if deadline is None or now + delay < deadline:
                self._outcome = self.outcome_with(exc.outcome)
                self._failures.append(type(exc).__name__)
                self.attempt += 1
                return delay
        self.give_up(exc)
        return None

    def outcome_with(self, last: CallOutcome) -> CallOutcome:
        """The outcome of the whole call if the attempt under way ended with ``last``."""
        return last if self._outcome is None else combined_outcome(self._outcome, last)

    def give_up(self, exc: RpcError) -> RpcError:
        """Make ``exc`` the error of the whole call: its outcome covers every attempt, it
        counts them, and (after retries) a note lists how the earlier attempts failed."""
        exc.outcome = self.outcome_with(exc.outcome)
        exc.attempts = self.attempt
        if self._failures:
            exc.add_note(
                f"udprpc: attempt {self.attempt} of at most {self.policy.attempts}; earlier "
                f"attempts failed with {', '.join(self._failures)}"
            )
        return exc


def not_sent(timeout: float) -> DeadlineExceeded:
    """The error of a call whose time ran out before it was sent."""
    return DeadlineExceeded(
        f"no time left to send the call (timeout {timeout:.6g} s)",
        outcome=CallOutcome.NOT_DELIVERED,
    )


def lock_wait_expired() -> DeadlineExceeded:
    """The error of a blocking call whose time ran out while another thread's call ran."""
    return DeadlineExceeded(
        "the deadline passed while the client was busy with another thread's call "
        "(not sent)",
        outcome=CallOutcome.NOT_DELIVERED,
    )


__all__ = [
    "NO_RETRY",
    "Retries",
    "RetryPolicy",
    "check_retry",
    "check_timeout",
    "combined_outcome",
    "default_policy",
    "lock_wait_expired",
    "not_sent",
    "worth_retrying",
]
