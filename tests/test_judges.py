"""The judge panel: an open-set judge that can say "a stranger", and a second judge beside the evaluator."""

from __future__ import annotations

from bench.config import parse_config
from bench.experiment import load_data
from bench.judges import public_halves, train_panel
from bench.metrics.identification import predictions

FACES = {"synthfaces": {"identities": 5, "images_per_identity": 10, "test_images": 4, "public_identities": 10,
                        "evaluator_images": 30, "population_images": 0, "size": 16}}


def job_of(dataset):
    return parse_config({"datasets": [dataset], "attacks": ["mi-face"], "evaluator": {"epochs": 5, "steps": 300}}).jobs()[0]


def test_the_open_judge_names_a_public_face_it_never_saw_as_a_stranger(tmp_path):
    job = job_of(FACES)
    splits = load_data(job)
    panel = train_panel(list(job.cells), splits, tmp_path)
    assert panel is not None and panel.open is not None
    k = splits.meta.num_classes
    _, unseen = public_halves(splits.public)
    named = predictions(panel.open.model, splits.public.x[unseen])
    assert (named >= k).float().mean() > 0.8  # a public face is named as one of the public people
    assert panel.info["open_judge_far"] == float((named < k).float().mean())
    assert panel.info["open_judge_acc"] > 0.6 and panel.info["second_judge_acc"] > 0.6  # and private faces as themselves


def test_public_halves_split_every_public_identity(tmp_path):
    splits = load_data(job_of(FACES))
    known, unseen = public_halves(splits.public)
    assert not (known & unseen).any() and (known | unseen).all()
    for k in splits.public.y.unique():
        assert known[splits.public.y == k].any() and unseen[splits.public.y == k].any()


def test_where_the_public_data_are_the_private_classes_there_is_no_open_judge(tmp_path):
    job = job_of("digits")
    panel = train_panel(list(job.cells), load_data(job), tmp_path)
    assert panel is not None and panel.open is None and "open_judge_far" not in panel.info


def test_membership_cells_train_no_panel(tmp_path):
    job = parse_config({"datasets": ["digits"], "attacks": ["loss-threshold"]}).jobs()[0]
    assert train_panel(list(job.cells), load_data(job), tmp_path) is None
