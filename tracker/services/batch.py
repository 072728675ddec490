"""Analyse every photo of a visit at once, on several CPU cores.

A clinic uploads a dozen photos per visit and waits at the screen; the analyses are independent (each
photo against its baseline), so they run in worker *processes*: the pipeline holds the GIL in long
stretches of Python and numpy glue, so threads would not use a second core.

How the work is shared:

* each worker opens the same store (its own SQLAlchemy engine and blob store) and runs
  :func:`tracker.services.photos.analyse_photo`, exactly what a single analysis runs, so 1 or N workers
  store the same figures. SQLite has one writer: the writes are short (one analysis row, one audit
  event, whose append takes the write lock first), and ``busy_timeout`` makes a second writer wait
  instead of failing. The blob store is content-addressed (temp file + rename), safe for concurrent
  writers;
* a photo whose baseline is another photo of the same batch (two photos of one view in one visit) is
  analysed after its baseline, in a second round, because its ROI is carried from the baseline's
  stored analysis;
* ``workers=N`` is this process plus N - 1 worker processes. The workers start from a ``forkserver``
  (never ``fork`` of a possibly multi-threaded server such as Streamlit) that imports the pipeline first;
  that start-up takes 1-2 s, as long as several analyses, so this process does not wait for it: it
  analyses photos itself meanwhile, and a worker is handed a photo only when it has none waiting (see
  :func:`_share_round`). The pool is kept for the next visit (:func:`_worker_pool`), so the dashboard
  pays the start-up once. Every process runs OpenCV single-threaded while they share the cores.

With ``workers=1`` (or a single photo) everything runs in this process, as plain calls (OpenCV with its
own threads).

As with any ``multiprocessing`` start method but ``fork``, a script that calls :func:`analyse_visit`
with more than one worker must guard its entry point with ``if __name__ == "__main__":`` (the workers
import the main module). ``tracker`` (the CLI) and ``streamlit run`` already do.

Measured (benchmarks/speed.py --quick --only workers, a 12-photo visit of sample-size photos, load about 1):
before, with a pool started per call and this process waiting, 11.8 s with 1 worker and 9.2 s with 2
(1.28x). Now (faster analyses, ~0.4 s a photo): 4.64 s with 1 worker, 3.57 s with 2 (1.30x); but one
worker already uses both cores in OpenCV's own threads: with OpenCV on one thread, 1 worker takes 5.97 s,
so the two processes give 1.67x over a single thread. The rest is the serial share (database writes,
bookkeeping) and the photos' uneven lengths.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from tracker.config import Settings
from tracker.errors import TrackerError
from tracker.services.access import Actor, missing, require_clinical
from tracker.services.photos import _baseline_photo, analyse_photo
from tracker.store import Analysis, Photo, Store, Visit

__all__ = ["PhotoOutcome", "analyse_visit", "default_workers"]

#: Modules the forkserver imports once, so that every worker it forks starts with them loaded.
_PRELOAD = ["tracker.pipeline", "tracker.imaging.hair", "tracker.imaging.align", "tracker.imaging.coverage",
            "tracker.services.photos"]


@dataclass(frozen=True)
class PhotoOutcome:
    """What happened to one photo of the batch.

    Attributes
    ----------
    photo_id : int
    analysis : Analysis or None
        The new analysis row; None when the analysis failed.
    error : str or None
        One-line reason when the analysis failed (bad stored image, ROI outside the image, ...).
    """

    photo_id: int
    analysis: Analysis | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.analysis is not None


def default_workers() -> int:
    """Worker processes used when none is asked for: the CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def analyse_visit(
    store: Store,
    visit_id: int,
    *,
    actor: Actor,
    workers: int | None = None,
    photo_ids: Sequence[int] | None = None,
) -> list[PhotoOutcome]:
    """Analyse the photos of a visit, ``workers`` at a time; one new Analysis row per photo.

    Parameters
    ----------
    store : Store
    visit_id : int
    actor : Actor
        A clinician (or the system); each analysis is audited as by :func:`analyse_photo`.
    workers : int, optional
        Worker processes; default :func:`default_workers`, never more than there are photos.
        1 runs in this process.
    photo_ids : sequence of int, optional
        Only these photos of the visit (e.g. the ones just uploaded); default all of them.

    Returns
    -------
    list of PhotoOutcome
        In photo id order. A photo that cannot be analysed has ``error`` set; the others are stored.

    Raises
    ------
    PermissionDenied
        The actor is not clinical.
    NotFound
        No such visit, or a photo id that is not one of the visit's photos.
    ValueError
        ``workers`` below 1.
    """
    require_clinical(actor)
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    with store.session() as session:
        if session.get(Visit, visit_id) is None:
            raise missing(actor, f"visit with id {visit_id}")
        photos = list(session.scalars(select(Photo).where(Photo.visit_id == visit_id).order_by(Photo.id)))
    if photo_ids is not None:
        wanted = set(photo_ids)
        unknown = wanted - {p.id for p in photos}
        if unknown:
            raise missing(actor, f"photo with id {min(unknown)} in visit {visit_id}")
        photos = [p for p in photos if p.id in wanted]
    rounds = _rounds(store, photos)
    count = min(workers or default_workers(), len(photos))
    ids: dict[int, int | str] = {}
    if count <= 1:
        for batch in rounds:
            for photo_id in batch:
                ids[photo_id] = _analyse_one(store, photo_id, actor)
    else:
        pool = _worker_pool(store.settings, count - 1)
        try:
            with _single_threaded_opencv():
                for batch in rounds:
                    ids.update(_share_round(store, batch, actor, pool, children=count - 1))
        except BrokenProcessPool:  # a worker died (e.g. killed): start afresh next time
            _close_pool()
            raise
    return _outcomes(store, [p.id for p in photos], ids)


_pool_lock = threading.Lock()
_pool: tuple[Settings, int, ProcessPoolExecutor] | None = None


def _worker_pool(settings: Settings, children: int) -> ProcessPoolExecutor:
    """The process's pool of ``children`` workers on ``settings``' store, started on first use and kept.

    A long-lived process (the dashboard's server) pays the workers' start-up once, not at every visit;
    asking for another store or another size replaces the pool. It is shut down at exit.
    """
    global _pool
    with _pool_lock:
        if _pool is not None and _pool[:2] == (settings, children):
            return _pool[2]
        if _pool is not None:
            _pool[2].shutdown(wait=True)
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(_PRELOAD)
        executor = ProcessPoolExecutor(max_workers=children, mp_context=context, initializer=_start_worker,
                                       initargs=(settings,))
        _pool = (settings, children, executor)
        return executor


@atexit.register
def _close_pool() -> None:
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool[2].shutdown(wait=False, cancel_futures=True)
            _pool = None


def _share_round(
    store: Store, batch: list[int], actor: Actor, pool: ProcessPoolExecutor, *, children: int
) -> dict[int, int | str]:
    """Analyse one round: this process takes photos too while the pool's children start and work.

    Starting the worker processes (a forkserver that imports the pipeline, then a fork each) takes 1-2 s
    on this machine, as long as one or two analyses; a child is handed a photo only when it has none
    waiting, and this process takes the next photo itself meanwhile, so nobody waits for the start-up.
    """
    pending = deque(batch)
    in_flight: dict[Future, int] = {}
    done: dict[int, int | str] = {}

    def hand_out() -> None:
        while pending and len(in_flight) < children:
            pid = pending.popleft()
            in_flight[pool.submit(_work, pid, actor)] = pid

    def collect(futures: set[Future]) -> None:
        for future in futures:
            done[in_flight.pop(future)] = future.result()

    hand_out()
    while pending or in_flight:
        if pending:
            pid = pending.popleft()
            done[pid] = _analyse_one(store, pid, actor)
            collect({f for f in in_flight if f.done()})
        else:
            finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            collect(finished)
        hand_out()
    return done


@contextmanager
def _single_threaded_opencv() -> Iterator[None]:
    """OpenCV on one thread in this process while it shares the cores with worker processes."""
    import cv2

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(threads)


def _rounds(store: Store, photos: list[Photo]) -> list[list[int]]:
    """Photo ids in rounds: first those whose baseline is not in the batch, then the ones that need it."""
    in_batch = {p.id for p in photos}
    first, later = [], []
    for photo in photos:
        base = _baseline_photo(store, photo)
        (later if base.id != photo.id and base.id in in_batch else first).append(photo.id)
    return [r for r in (first, later) if r]


def _analyse_one(store: Store, photo_id: int, actor: Actor) -> int | str:
    """The new analysis id, or the one-line reason it failed (in a worker or in this process)."""
    try:
        return analyse_photo(store, photo_id, actor=actor).id
    except (TrackerError, ValueError, OSError) as exc:
        return " ".join(f"photo {photo_id}: {exc}".split())


def _outcomes(store: Store, order: list[int], ids: dict[int, int | str]) -> list[PhotoOutcome]:
    analysis_ids = [v for v in ids.values() if isinstance(v, int)]
    with store.session() as session:
        rows = {a.id: a for a in session.scalars(select(Analysis).where(Analysis.id.in_(analysis_ids)))}
    outcomes = []
    for photo_id in order:
        value = ids[photo_id]
        if isinstance(value, int):
            outcomes.append(PhotoOutcome(photo_id=photo_id, analysis=rows[value]))
        else:
            outcomes.append(PhotoOutcome(photo_id=photo_id, analysis=None, error=value))
    return outcomes


# ------------------------------------------------------------------------------------ in the workers
_worker_store: Store | None = None


def _start_worker(settings: Settings) -> None:
    global _worker_store
    import cv2

    cv2.setNumThreads(1)  # the cores are shared between the workers
    _worker_store = Store(settings)


def _work(photo_id: int, actor: Actor) -> Any:
    if _worker_store is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("worker store not opened")
    return _analyse_one(_worker_store, photo_id, actor)
