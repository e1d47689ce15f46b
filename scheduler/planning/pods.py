"""Co-working pods: split the learners expected at one co-working occurrence into breakout pods.

Pure like the rest of ``planning``: no I/O, no clock; the ``rng`` argument is the only source of
randomness and it only orders the unattached learners (everything else is ordered by key).

Sizes. With ``2 <= min_size <= target <= max_size`` and ``max_size >= 2 * min_size - 1``, any
``n >= min_size`` learners split into pods of ``min_size..max_size``. Proof: ``k`` pods can hold
``n`` learners iff ``k * min_size <= n <= k * max_size``, so take ``k = ceil(n / max_size)``. For
``k = 1``, ``min_size <= n <= max_size``. For ``k >= 2``, ``n >= (k - 1) * max_size + 1 >=
(k - 1) * (2 * min_size - 1) + 1 = k * min_size + (k - 2) * (min_size - 1) >= k * min_size``. The
pods of such a ``k`` take ``floor(n / k)`` or ``ceil(n / k)`` learners, both within the bounds
because ``min_size <= n / k <= max_size``. (Without the condition some ``n`` cannot be split:
with sizes 4..6, seven learners fit neither one pod nor two.)

Algorithm (each step only sees what the earlier ones left):

1. *Kept groups*: for each previous pod, its attending members when they number ``min_size`` to
   ``max_size`` become a pod as they are. More than ``max_size`` (only possible when the sizes
   changed) are cut, in key order, into ``ceil(size / max_size)`` near-equal kept groups.
2. *Partial groups*: 2 to ``min_size - 1`` attending members of a previous pod. They are topped up
   to ``min_size`` with unattached learners; when there are too few for all of them, partial
   groups are first merged with each other (largest first, a merged pod closes once it reaches
   ``min_size``, so it never exceeds ``2 * min_size - 2 < max_size``) and only the last open one
   is topped up.
3. *Unattached learners*: no previous pod, an unknown one, or the only attendee of theirs. If at
   least ``min_size`` remain they form new pods (count below), otherwise they are left over.
4. *Left over* (fewer than ``min_size`` learners): each joins a pod with room, preferring pods
   that are not an exact previous pod, then the smallest, then one without their section; a left
   over partial group joins one pod whole when one has room for it. Only when every pod is full
   does one pod give up members to make a new pod of ``min_size`` with them; the donor and members
   are chosen to split no kept group if possible, then to separate the fewest previous pod-mates.

New pods (step 3) from ``m`` learners: ``k`` is the count in ``ceil(m / max_size) ..
floor(m / min_size)`` closest to ``m / target`` (a tie goes to more, smaller pods); sizes differ
by at most one. The learners are lined up section by section, largest section first; pod ``i``
starts with ``line[i]`` and ``line[m - 1 - i]`` when the largest section has at least ``k``
learners, else ``line[i]`` and ``line[i + k]``; then pods take turns to pick a learner, each from
a section not yet in the pod if any is left (the one with most learners left).

Guarantees of :func:`form_pods` (tests/unit/planning/test_pods.py checks each; mixing without
``previous``):

* Partition: every attendee is in exactly one pod; no other key appears.
* Sizes: all pods have ``min_size..max_size`` members when there are at least ``min_size``
  attendees; 1 to ``min_size - 1`` attendees make one pod; no attendee, no pod.
* Determinism: the result depends only on the attendees as a set, ``previous`` as a mapping, the
  sizes and the state of ``rng``; input order does not matter.
* Pod count without ``previous``: as for new pods above, with ``m`` the number of attendees.
* Stability: call *others* the attendees outside kept groups. Every kept group ends up inside
  one pod whenever the others number 0, at least ``min_size``, or at most the free places of the
  kept groups (the sum of ``max_size - size``). Every kept group *is* a pod, nobody added, when
  the others are all unattached and number 0 or at least ``min_size``. Consequences:

  - feeding a result back (``previous=pods.pod_ids()``) with the same attendees returns it
    unchanged, whatever the ``rng``;
  - when one learner of a valid partition leaves, every other pod stays exactly as it was if
    their pod keeps ``min_size`` members; otherwise every other pod stays together (grown by
    the stragglers) provided the others have room for the stragglers; the stragglers stay
    together too when a single pod has room for all of them.
* Mixing: new pods (step 3) from ``m`` learners, ``k`` pods, each have members of at least two
  sections whenever no section has more than ``m - k`` of those learners (for example when two
  sections have ``k`` or more each). Without ``previous`` the new pods are all pods and ``m`` is
  the number of attendees. Proof: if the largest section ``A`` has at least ``k`` learners,
  ``line[i]`` (``i < k``) is in ``A`` and ``line[m - 1 - i]`` is not, because ``m - 1 - i >=
  m - k >= |A|``; otherwise every section spans fewer than ``k`` places of the line, so
  ``line[i]`` and ``line[i + k]`` differ (``m >= 2k`` as pods have two or more members).
  Topping up and left-over placement only *prefer* a missing section.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PodLearner:
    """One attendee as pod forming sees them (``zone`` is carried, not used for grouping)."""

    key: str  # stable id (email)
    section: int  # their class section; pods mix sections where possible
    zone: str  # IANA zone

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("a pod learner needs a key")


@dataclass(frozen=True, slots=True)
class Pods:
    """The pods of one occurrence: each pod's keys sorted, pods sorted by their first key."""

    pods: tuple[tuple[str, ...], ...]

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for pod in self.pods:
            if not pod:
                raise ValueError("a pod needs a member")
            if list(pod) != sorted(pod):
                raise ValueError(f"pod {pod!r}: keys must be sorted")
            if seen.intersection(pod):
                raise ValueError(f"pod {pod!r}: a key is in two pods")
            seen.update(pod)
        if [pod[0] for pod in self.pods] != sorted(pod[0] for pod in self.pods):
            raise ValueError("pods must be sorted by their first key")

    def pod_of(self, key: str) -> tuple[str, ...] | None:
        """The pod that holds ``key``, or None."""
        return next((pod for pod in self.pods if key in pod), None)

    def pod_ids(self) -> dict[str, str]:
        """Learner key -> pod id (the pod's first key): next occurrence's ``previous``."""
        return {key: pod[0] for pod in self.pods for key in pod}


def form_pods(
    attendees: Sequence[PodLearner],
    previous: Mapping[str, str] | None = None,
    *,
    rng: random.Random,
    min_size: int = 3,
    max_size: int = 5,
    target: int = 4,
) -> Pods:
    """Split ``attendees`` into pods; see the module docstring for the algorithm and guarantees.

    ``previous`` maps a learner key to the id of their pod at the previous occurrence (any string,
    e.g. ``Pods.pod_ids()``); keys of people not attending now are allowed and ignored, except
    that they tell whether a previous pod is back complete.
    Raises ValueError for sizes that cannot always be met or for a key given twice.
    """
    _check_sizes(min_size, max_size, target)
    learners = sorted(attendees, key=lambda learner: learner.key)
    keys = [learner.key for learner in learners]
    twice = sorted(key for key, count in Counter(keys).items() if count > 1)
    if twice:
        raise ValueError(f"attendees given more than once: {', '.join(twice)}")
    if len(keys) < min_size:
        return Pods((tuple(keys),) if keys else ())
    section = {learner.key: learner.section for learner in learners}
    former = _former_pods(keys, previous or {}, min_size, max_size)
    builder = _Builder(section, former.kept_of, former.mates_of, min_size, max_size, target)
    pods = former.kept
    free = former.free
    rng.shuffle(free)  # the rng only orders unattached learners; all else goes by key
    leftover_groups = _place_partial(pods, former.partial, free, builder)
    if len(free) >= min_size:
        pods.extend(builder.new_pods(free))
        free = []
    builder.place_leftovers(pods, leftover_groups, free)
    return Pods(tuple(sorted(tuple(sorted(pod.members)) for pod in pods)))


def pod_count(m: int, *, min_size: int, max_size: int, target: int) -> int:
    """The pod count for ``m >= min_size`` learners: feasible, closest to ``m / target``.

    Ties go to more (smaller) pods. Needs the size condition of the module docstring.
    """
    low, high = -(-m // max_size), m // min_size
    if low > high:
        raise ValueError(f"{m} learners cannot make pods of {min_size}..{max_size}")
    return min(range(low, high + 1), key=lambda k: (abs(k * target - m), -k))


def _check_sizes(min_size: int, max_size: int, target: int) -> None:
    if min_size < 2:
        raise ValueError(f"min_size must be at least 2, not {min_size}")
    if not min_size <= target <= max_size:
        raise ValueError(f"target {target} is not within {min_size}..{max_size}")
    if max_size < 2 * min_size - 1:
        raise ValueError(
            f"max_size {max_size} < 2 * min_size - 1: some counts cannot be split into pods"
        )


class _Pod:
    """A pod under construction; ``intact`` while it is exactly a previous pod."""

    __slots__ = ("intact", "members")

    def __init__(self, members: list[str], *, intact: bool = False) -> None:
        self.members = members
        self.intact = intact


@dataclass(slots=True)
class _Former:
    kept: list[_Pod]  # kept groups, one pod each
    partial: list[list[str]]  # 2..min_size-1 attending members of a previous pod
    free: list[str]  # unattached, sorted by key
    kept_of: dict[str, int]  # member of a kept group -> group number
    mates_of: dict[str, str]  # member with a previous pod-mate attending -> previous pod id


def _former_pods(
    keys: list[str], previous: Mapping[str, str], min_size: int, max_size: int
) -> _Former:
    """Sort the (key-sorted) attendees into kept groups, partial groups and unattached."""
    members_before = Counter(previous.values())
    back: dict[str, list[str]] = {}
    free: list[str] = []
    for key in keys:
        pod_id = previous.get(key)
        if pod_id is None:
            free.append(key)
        else:
            back.setdefault(pod_id, []).append(key)
    former = _Former([], [], free, {}, {})
    for pod_id, members in back.items():  # ordered by first key, as keys are sorted
        if len(members) == 1:
            free.append(members[0])
            continue
        former.mates_of.update(dict.fromkeys(members, pod_id))
        if len(members) < min_size:
            former.partial.append(members)
            continue
        parts = -(-len(members) // max_size)
        whole = parts == 1 and len(members) == members_before[pod_id]
        for i in range(parts):
            group = members[i * len(members) // parts : (i + 1) * len(members) // parts]
            former.kept_of.update(dict.fromkeys(group, len(former.kept)))
            former.kept.append(_Pod(group, intact=whole))
    free.sort()
    return former


def _place_partial(
    pods: list[_Pod], partial: list[list[str]], free: list[str], builder: _Builder
) -> list[list[str]]:
    """Top partial groups up to ``min_size`` (merging them when ``free`` is short).

    Appends the pods made, takes the learners used from ``free`` and returns the partial groups
    still below ``min_size`` (together fewer than ``min_size`` learners with what is in ``free``).
    """
    groups = sorted(partial, key=lambda group: (-len(group), group[0]))
    need = sum(builder.min_size - len(group) for group in groups)
    if len(free) >= need:
        for group in groups:
            pods.append(builder.top_up(list(group), free))
        return []
    open_members: list[str] = []
    open_groups: list[list[str]] = []
    for group in groups:
        open_members.extend(group)
        open_groups.append(group)
        if len(open_members) >= builder.min_size:
            pods.append(_Pod(open_members))
            open_members, open_groups = [], []
    if open_members and len(free) >= builder.min_size - len(open_members):
        pods.append(builder.top_up(open_members, free))
        return []
    return open_groups


class _Builder:
    """The choices that look at sections and previous pod-mates."""

    def __init__(
        self,
        section: Mapping[str, int],
        kept_of: Mapping[str, int],
        mates_of: Mapping[str, str],
        min_size: int,
        max_size: int,
        target: int,
    ) -> None:
        self.section = section
        self.kept_of = kept_of
        self.mates_of = mates_of
        self.min_size = min_size
        self.max_size = max_size
        self.target = target

    def pick(self, pool: list[str], pod: list[str]) -> str:
        """Remove and return from ``pool`` a learner for ``pod``.

        A section not yet in the pod if any; among those the section with most learners left in
        the pool; then the first in pool order.
        """
        left = Counter(self.section[key] for key in pool)
        present = {self.section[key] for key in pod}
        candidates = [i for i, key in enumerate(pool) if self.section[key] not in present]
        best = min(candidates or range(len(pool)), key=lambda i: (-left[self.section[pool[i]]], i))
        return pool.pop(best)

    def top_up(self, members: list[str], free: list[str]) -> _Pod:
        while len(members) < self.min_size:
            members.append(self.pick(free, members))
        return _Pod(members)

    def new_pods(self, pool: list[str]) -> list[_Pod]:
        """Pods made only of ``pool`` (at least ``min_size`` learners, in rng order)."""
        m = len(pool)
        k = pod_count(m, min_size=self.min_size, max_size=self.max_size, target=self.target)
        sizes = [m // k + (1 if i < m % k else 0) for i in range(k)]
        blocks: dict[int, list[str]] = {}
        for key in pool:
            blocks.setdefault(self.section[key], []).append(key)
        ordered = sorted(blocks.items(), key=lambda item: (-len(item[1]), item[0]))
        line = [key for _, block in ordered for key in block]
        if len(ordered[0][1]) >= k:
            pods = [[line[i], line[m - 1 - i]] for i in range(k)]
        else:
            pods = [[line[i], line[i + k]] for i in range(k)]
        used = {key for pod in pods for key in pod}
        rest = [key for key in line if key not in used]
        while rest:
            for pod, size in zip(pods, sizes, strict=True):
                if len(pod) < size and rest:
                    pod.append(self.pick(rest, pod))
        return [_Pod(pod) for pod in pods]

    def place_leftovers(self, pods: list[_Pod], groups: list[list[str]], free: list[str]) -> None:
        """Fit fewer than ``min_size`` left-over learners into ``pods`` (step 4)."""
        loose: list[str] = []
        for group in groups:
            roomy = [pod for pod in pods if self.max_size - len(pod.members) >= len(group)]
            if roomy:
                host = min(roomy, key=lambda pod: (pod.intact, len(pod.members), min(pod.members)))
                host.members.extend(group)
                host.intact = False
            else:
                loose.extend(group)
        stranded: list[str] = []
        for key in [*loose, *free]:
            roomy = [pod for pod in pods if len(pod.members) < self.max_size]
            if not roomy:
                stranded.append(key)
                continue
            host = min(
                roomy,
                key=lambda pod: (
                    pod.intact,
                    len(pod.members),
                    self.section[key] in {self.section[other] for other in pod.members},
                    min(pod.members),
                ),
            )
            host.members.append(key)
            host.intact = False
        if stranded:
            pods.append(self._donate(pods, stranded))

    def _donate(self, pods: list[_Pod], stranded: list[str]) -> _Pod:
        """Every pod is full: one gives up members to make a pod of ``min_size`` with ``stranded``.

        A full pod keeps ``max_size - (min_size - len(stranded)) >= min_size`` members.
        """
        give = self.min_size - len(stranded)
        best: tuple[tuple[int, int, bool, str, tuple[str, ...]], _Pod] | None = None
        for pod in pods:
            for moved in itertools.combinations(sorted(pod.members), give):
                stay = [key for key in pod.members if key not in moved]
                rank = (
                    *self._move_cost(moved, stay, stranded),
                    pod.intact,
                    min(pod.members),
                    moved,
                )
                if best is None or rank < best[0]:
                    best = (rank, pod)
        assert best is not None  # n >= min_size, so there is a pod
        moved = best[0][4]
        donor = best[1]
        donor.members = [key for key in donor.members if key not in moved]
        donor.intact = False
        return _Pod([*stranded, *moved])

    def _move_cost(
        self, moved: Sequence[str], stay: Sequence[str], stranded: Sequence[str]
    ) -> tuple[int, int]:
        """(kept groups split, previous pod-mates separated minus reunited) by a move."""
        split = {
            self.kept_of[key]
            for key in moved
            if key in self.kept_of
            and any(self.kept_of.get(other) == self.kept_of[key] for other in stay)
        }

        def mates(key: str, others: Sequence[str]) -> int:
            pod_id = self.mates_of.get(key)
            return 0 if pod_id is None else sum(self.mates_of.get(o) == pod_id for o in others)

        separated = sum(mates(key, stay) for key in moved)
        reunited = sum(mates(key, stranded) for key in moved)
        return len(split), separated - reunited
