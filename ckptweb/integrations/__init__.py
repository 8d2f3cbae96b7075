"""One import and one line in a training script: ckptweb's integrations (optional extras).

docs/architecture.md: these modules sit beside ``ckptweb.client`` and import only it and
their framework, never Django (import-linter's "integrations speak HTTP only" contract).

- ``ckptweb.integrations.torch`` (extra ``torch``): ``save_checkpoint`` writes the spec's
  PyTorch layout and uploads it, ``load_checkpoint`` brings one back into a model,
  ``report_validation`` reports metrics; use them inside ``Client.trial()`` blocks.
- ``ckptweb.integrations.lightning`` (extra ``lightning``; ``lightning`` or the older
  ``pytorch_lightning`` package): ``CkptwebCallback``, one callback that creates the
  experiment and its trial, reports validation metrics, uploads every checkpoint the trainer
  writes and ends the trial when training ends.

**Connection.** Every entry point takes an optional ``client``; without one it builds
``ckptweb.client.Client()``, which reads ``CKPTWEB_URL`` and ``CKPTWEB_TOKEN``.

**One trial per run.** A callback creates a new experiment named by ``experiment=`` and
one trial in it; ``config=`` (``ckptweb.integrations.session.experiment_config``) may
name the searcher ``metric``, ``smaller_is_better``, the GC ``policy``
(``save_experiment_best``, ``save_trial_best``, ``save_trial_latest``), the ``storage``
(an experiment config's ``checkpoint_storage`` section naming a configured storage),
``description`` and ``hparams``. When training ends the trial ends COMPLETED (ERROR on an
exception), which ends the experiment on the server and runs its policy.
"""
