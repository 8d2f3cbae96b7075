"""Hugging Face Transformers into ckptweb: one import and one line.

    pip install -e '.[transformers]'
    export CKPTWEB_URL=http://127.0.0.1:8000 CKPTWEB_TOKEN=<key>
    python examples/train_transformers.py

Trains a tiny BERT, built from a config (nothing is downloaded), on random tokens with the
Trainer. Every evaluation becomes a validation (``eval_loss``, ...) and every
``checkpoint-N/`` folder a checkpoint; when training ends, the trial and the experiment are
COMPLETED and the policy below keeps the best checkpoint and the latest, so no
``save_total_limit`` is needed.
"""

import argparse
import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from transformers import (  # noqa: E402
    BertConfig,
    BertForSequenceClassification,
    Trainer,
    TrainingArguments,
)

from ckptweb.integrations.transformers import CkptwebCallback  # noqa: E402

#: Keep the trial's best checkpoint and its latest (to resume from).
CONFIG = {"policy": {"save_trial_best": 1, "save_trial_latest": 1}}


class RandomTokens:
    """Sequences of 8 random tokens, labelled by whether the first one is even."""

    def __init__(self, size: int, seed: int):
        generator = torch.Generator().manual_seed(seed)
        self.inputs = torch.randint(0, 100, (size, 8), generator=generator)
        self.labels = (self.inputs[:, 0] % 2 == 0).long()

    def __len__(self):
        return len(self.inputs)

    def __getitem__(self, index):
        return {"input_ids": self.inputs[index], "labels": self.labels[index]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", default=tempfile.mkdtemp(prefix="bert-tiny-"))
    parser.add_argument("--steps", type=int, default=12)
    options = parser.parse_args()
    config = BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=16,
    )
    args = TrainingArguments(
        output_dir=options.output_dir,
        max_steps=options.steps,
        learning_rate=0.01,
        per_device_train_batch_size=8,
        eval_strategy="steps",
        eval_steps=4,
        save_steps=4,
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
    )
    ckptweb = CkptwebCallback(experiment="bert-tiny", config=CONFIG)  # the one line
    trainer = Trainer(
        model=BertForSequenceClassification(config),
        args=args,
        train_dataset=RandomTokens(64, seed=1),
        eval_dataset=RandomTokens(16, seed=2),
        callbacks=[ckptweb],
    )
    trainer.train()
    print(
        f"experiment {ckptweb.experiment['id']} {ckptweb.trial['experiment_state']}: "
        f"{len(ckptweb.checkpoints)} checkpoints uploaded, GC run {ckptweb.trial['gc_run']['id']}"
    )


if __name__ == "__main__":
    main()
