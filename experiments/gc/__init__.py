"""Garbage collection: the one way checkpoint files are deleted (the subsystem's README).

ckptweb's job ends in deleting files, so this package keeps one promise before any other:
nothing retained is ever deleted. Every deletion, whether a policy applied, an experiment ended
or deleted, one checkpoint deleted, some files of one deleted or the periodic sweep, is a
**GC run** (``models.GCRun``) that goes through the same steps:

- ``runs`` starts runs: ``start_gc_run`` records a run and enqueues it once the transaction
  commits; ``set_gc_policy``, ``delete_experiment`` and ``delete_checkpoint`` are the services
  that start them, refusing what must never go (an experiment being deleted, protected and
  registered checkpoints: ``CheckpointProtected``, a 409).
- ``retention`` decides who is kept (docs/architecture.md "Retention"): the ranked candidates,
  ``retained`` and ``pinned`` (protected or registered); ``preview`` shows a policy's verdicts
  without changing anything (the API, the GC page, the CLI and ``/det-compat/`` share it).
- ``execute`` runs one: it claims the deletion set by compare-and-set under the experiment's row
  lock (recomputed, never a stale list), deletes the claimed checkpoints' files in batches and
  finishes the run; ``record`` writes each batch's outcome (states, counts, bytes, the summary)
  in a constant number of statements. A checkpoint is DELETED only once storage confirms its
  files are gone.
- ``kernel`` is the one deletion rule, asked last, right before storage is called, by every
  run's batches and by orphan deletion: a run deletes only checkpoints it holds that are
  neither protected nor registered; an orphan deletion only directories no live or pinned
  checkpoint owns. Storage itself checks where (inside the checkpoint's real directory).
- **States tell the truth about storage.** After a fault the error is not trusted alone: the
  failed checkpoints are listed again (``StorageBackend.list_directory``, one listing each)
  and ``resources``, ``size_bytes`` and the state become what storage lists (DELETED when
  nothing is left: a lost DeleteObjects answer; ERROR only for files really left). ERROR
  checkpoints are reconciled the same way before a run ranks them. A listing with an entry it
  cannot check (a symlink leading out of the checkpoint) derives nothing: the checkpoint
  stays ERROR, "needs attention".
- **Bounded retries.** ``record.MAX_DELETION_FAILURES`` failures in a row, or files that
  cannot be checked, make the error start with ``record.NEEDS_ATTENTION``
  (``record.needs_attention()``): the sweep no longer retries the checkpoint, the experiment
  page and the staff storage page list it, and only an explicit run (a policy saved) tries
  again.
- ``sweep`` retires runs whose worker died and restarts what is left, from Celery beat or, with
  no broker, from a timer in every serving process. An automatic run never widens: on a
  running experiment it retries only the deletions that failed.
- ``files`` starts partial deletions (runs of reason FILES); ``globs`` is the glob language and
  the deletion of matched files such a run does, matched against what storage holds as well
  as ``resources``.

The run lifecycle (claim, heartbeat, finish, retirement) is ``ckptweb.jobs``', shared with
storage scans and orphan deletions. The Celery tasks are ``execute.run_gc`` and
``sweep.gc_sweep``, registered under their first names (``experiments.tasks.*``).
"""
