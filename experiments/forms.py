"""Forms of the dashboard pages: the experiment list filters and the GC policy form."""

from __future__ import annotations

from django import forms

from ckptweb.lib.policy import POLICY_FIELDS, InvalidPolicy, Policy
from experiments.choices import ExperimentState
from experiments.models import Experiment

POLICY_HELP = {
    "save_experiment_best": "Best checkpoints over all trials",
    "save_trial_best": "Best checkpoints of each trial",
    "save_trial_latest": "Latest checkpoints of each trial",
}


class ExperimentFilterForm(forms.Form):
    """Text search and state filter of the experiments list."""

    q = forms.CharField(required=False, max_length=200, label="Search")
    state = forms.ChoiceField(
        required=False, choices=[("", "All states"), *ExperimentState.choices]
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["q"].widget.attrs.update(
            {"placeholder": "Name, description or owner", "type": "search"}
        )


class GCPolicyForm(forms.Form):
    """The three ``save_*`` numbers, validated exactly as the API validates them.

    Text inputs (not ``type=number``) so the server sees exactly what was typed and can say
    what is wrong with ``-1`` or ``1.5``; ``policy`` is the parsed ``Policy`` once valid.
    """

    save_experiment_best = forms.CharField(max_length=12)
    save_trial_best = forms.CharField(max_length=12)
    save_trial_latest = forms.CharField(max_length=12)

    def __init__(self, experiment: Experiment, *args, **kwargs):
        self.experiment = experiment
        kwargs.setdefault("initial", experiment.gc_policy.as_dict())
        super().__init__(*args, **kwargs)
        self.policy: Policy | None = None
        for name in POLICY_FIELDS:
            self.fields[name].help_text = POLICY_HELP[name]
            self.fields[name].error_messages["required"] = f"{name} is required."
            self.fields[name].widget = forms.TextInput(
                attrs={
                    "inputmode": "numeric",
                    "pattern": "[0-9]+",
                    "autocomplete": "off",
                    "class": "policy-input",
                    "aria-describedby": "gc-errors",
                }
            )

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        values = {name: data.get(name) for name in POLICY_FIELDS}
        try:
            self.policy = Policy.from_mapping(values, fallback=self.experiment.gc_policy)
        except InvalidPolicy as exc:
            self.add_error(exc.field if exc.field in self.fields else None, str(exc))
        return data
