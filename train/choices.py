"""The choices and defaults ``fer-edge train`` shows in ``--help``.

They live here, apart from :mod:`fer_edge.train.trainer`, so that the CLI can name them without
importing the trainer (the CLI keeps its imports light).
"""

from __future__ import annotations

#: ``--schedule`` choices: cosine decay over the run, or halving on a selection-loss plateau.
SCHEDULES: tuple[str, ...] = ("cosine", "plateau")
#: ``--optimizer`` choices: Adam, or SGD with Nesterov momentum 0.9 (Khaireddin & Chen 2021).
OPTIMIZERS: tuple[str, ...] = ("adam", "sgd")
#: ``--epochs`` when neither the command line nor a recipe sets it.
DEFAULT_EPOCHS = 60
#: ``--targets`` choices: what each face is trained towards (the FER+ paper's names).
#: ``majority``: one label (FER2013's, or the FER+ majority); ``votes``: cross-entropy against
#: the FER+ vote distribution; ``sample``: a label drawn from the votes anew every epoch;
#: ``joint``: the votes mixed with the face's FER2013 label (``--joint-mix``).
TARGETS: tuple[str, ...] = ("majority", "votes", "sample", "joint")
