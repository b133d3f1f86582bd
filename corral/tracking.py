"""`report_to` checked before anything loads: a tracker that is not installed is a one-line error.

transformers looks trackers up when the Trainer is built, after the data is read and the model is
loaded, and then fails with a traceback. corral checks the recipe's `report_to` against the same
names (transformers 5.23's `INTEGRATION_TO_CALLBACK`) and the package each needs, while parsing.
TensorBoard is a corral dependency; with `report_to: tensorboard` events go to
`<output_dir>/runs/<date>_<host>/` (`tensorboard --logdir <output_dir>`).
"""

from __future__ import annotations

from difflib import get_close_matches
from importlib.util import find_spec

# tracker name -> (modules any one of which makes it available, the pip package to install)
TRACKERS: dict[str, tuple[tuple[str, ...], str]] = {
    "tensorboard": (("tensorboard", "tensorboardX"), "tensorboard"),
    "trackio": (("trackio",), "trackio"),
    "wandb": (("wandb",), "wandb"),
    "mlflow": (("mlflow",), "mlflow"),
    "comet_ml": (("comet_ml",), "comet_ml"),
    "neptune": (("neptune",), "neptune"),
    "clearml": (("clearml",), "clearml"),
    "dagshub": (("dagshub",), "dagshub"),
    "dvclive": (("dvclive",), "dvclive"),
    "swanlab": (("swanlab",), "swanlab"),
    "codecarbon": (("codecarbon",), "codecarbon"),
    "azure_ml": (("azureml",), "azureml-core"),
    "flyte": (("flytekit",), "flytekit"),
    "kubeflow": (("kubeflow",), "kubeflow"),
}


def report_to_problem(value) -> str | None:
    """Why `report_to: value` cannot work here (unknown name, package missing), or None."""
    names = [value] if isinstance(value, str) else list(value or [])
    for name in names:
        if name in ("none", "all"):
            continue
        if name not in TRACKERS:
            close = get_close_matches(name, TRACKERS, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            return f"'{name}' is not a tracker transformers knows; {hint}use none, all or one of {', '.join(TRACKERS)}"
        modules, package = TRACKERS[name]
        if not any(find_spec(m) for m in modules):
            return f"'{name}' is not installed (pip install {package}), or use report_to: tensorboard or none"
    return None
