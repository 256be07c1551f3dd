"""The report's first screen: every sentence computed from the tables, on tables whose numbers are known."""

import pandas as pd

from bench.report.headline import headlines, markdown


def tables(seeds=(0, 1, 2)):
    """Two identities; 'inv' beats the baseline by 0.5 under none and by 0 under 'cheap' (costing 0.01),
    'costly' stops it too but costs 0.3; 'mia' finds 0.2 of members at 1 % FPR."""
    cells, rows = [], []

    def cell(attack, defense, seed, baseline=False, kind="inversion", oracle_acc=0.9, **values):
        cid = f"{attack}-{defense}-{seed}"
        cells.append({"cell_id": cid, "dataset": "faces", "target": "cnn", "attack": attack, "defense": defense,
                      "seed": seed, "status": "done", "baseline": baseline, "kind": kind, "oracle_acc": oracle_acc,
                      "gap": 0.4, "evaluator_acc": 0.95, "evaluator_data": "disjoint", "open_judge_acc": 0.9,
                      "open_judge_far": 0.02, "population": 3000 if kind == "membership" else float("nan")})
        for metric, value in values.items():
            rows.append({"cell_id": cid, "attack": attack, "defense": defense, "seed": seed, "target_class": "all",
                         "metric": metric, "value": value})
        if kind == "inversion":
            rows.extend({"cell_id": cid, "attack": attack, "defense": defense, "seed": seed, "target_class": str(k),
                         "metric": "acc@1", "value": 1.0} for k in range(2))

    for s in seeds:
        jitter = 0.01 * s
        cell("look", "none", s, baseline=True, **{"acc@1:open": 0.0, "lift:open": 0.0})
        cell("inv", "none", s, **{"acc@1:open": 0.5 + jitter, "lift:open": 0.5 + jitter})
        cell("look", "cheap", s, baseline=True, oracle_acc=0.89, **{"acc@1:open": 0.0, "lift:open": 0.0})
        cell("inv", "cheap", s, oracle_acc=0.89, **{"acc@1:open": 0.0, "lift:open": 0.0})
        cell("look", "costly", s, baseline=True, oracle_acc=0.6, **{"acc@1:open": 0.0, "lift:open": 0.0})
        cell("inv", "costly", s, oracle_acc=0.6, **{"acc@1:open": 0.0, "lift:open": 0.0})
        cell("mia", "none", s, kind="membership", **{"tpr@1%fpr": 0.2, "auc": 0.8})
    return pd.DataFrame(cells), pd.DataFrame(rows)


def test_the_first_screen_names_the_leak_the_membership_leak_and_the_best_trade_off():
    (h,) = headlines(*tables())
    assert h.inversion.startswith("**inv** recovers 0.51 of the 2 private identities by acc@1:open (chance 0.50), "
                                  "+0.51 ± 0.02 beyond what the attacker had without inverting (look: 0.00).")
    assert "open-set, 0.90 right on held-out private photos, false accepts 0.020" in h.inversion
    assert h.membership == ("**mia** names 0.200 ± 0.000 of the training images at 1 % false positives (chance "
                            "0.010), AUC 0.80; the target's train–test gap is 0.40. The attacker holds 3000 other "
                            "images from the private data's distribution, none of the challenge set.")
    assert h.defense.startswith("**cheap** lowers the strongest attack's lift:open by 0.51 ± 0.02 at a cost of "
                                "0.01 ± 0.00")  # costly stops it as well, at 0.30 of accuracy: not a trade-off
    assert h.cells == {"inv": "inv-none-0", "baseline": "look-none-0"}


def test_with_two_seeds_one_note_replaces_every_interval():
    found = headlines(*tables(seeds=(0, 1)))
    text = markdown(found, 2)
    assert text.startswith("*2 seeds: no intervals; run with 3+ seeds for them.*") and "±" not in text


def test_no_lift_is_said_plainly():
    cells, metrics = tables()
    metrics.loc[(metrics["attack"] == "inv") & metrics["metric"].str.startswith("lift"), "value"] = -0.1
    (h,) = headlines(cells, metrics)
    assert h.inversion.startswith("no attack recovers more than the no-inversion baseline (look, acc@1:open 0.00)")


def test_the_membership_sentence_says_nothing_of_a_population_the_results_do_not_record():
    cells, metrics = tables()
    (h,) = headlines(cells.drop(columns="population"), metrics)
    assert h.membership.endswith("the target's train–test gap is 0.40.")


def test_a_cut_whose_interval_holds_zero_is_not_called_a_cut():
    cells, metrics = tables()
    noisy = (metrics["attack"] == "inv") & (metrics["defense"] == "cheap") & (metrics["metric"] == "lift:open")
    metrics.loc[noisy, "value"] = metrics.loc[noisy, "seed"].map({0: 0.0, 1: 0.9, 2: 0.1})  # cuts 0.5, -0.39, 0.42
    (h,) = headlines(cells, metrics)
    assert h.defense.startswith("no defense that costs at most 0.05 of an honest user's accuracy lowers the strongest "
                                "attack's lift:open measurably; the largest cut, **cheap**'s, is 0.18 ± ")


def test_a_weak_open_set_judge_does_not_lead_and_the_sentence_says_why():
    cells, metrics = tables()
    cells = cells.assign(open_judge_acc=0.54, open_judge_far=0.34)  # as on the shared Yale faces
    metrics = pd.concat([metrics, metrics[metrics["metric"] == "lift:open"].assign(metric="lift")])
    (h,) = headlines(cells, metrics)
    assert "beyond what the attacker had without inverting" in h.inversion and "by acc@1 (chance" in h.inversion
    assert h.inversion.endswith("The open-set judge is too weak to lead here (0.54 right on held-out private photos, "
                                "false accepts 0.34 of public faces), so the closed-set reading leads.")
