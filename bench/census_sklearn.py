#!/usr/bin/env python3
"""Baselines for the census-income confs: scikit-learn's logistic regression
and gradient boosting on the same split and the same features as
conf/census_income_*.pbtxt (7 numeric columns log-transformed and
standardised on train.csv, 32 categorical columns; "?" is its own category).

  python3 bench/census_sklearn.py [--data DIR] [--task income_50k|marital_stat]

Needs python3-sklearn (apt-get install python3-sklearn); prints test AUC and
logloss of each model.
"""
import argparse
import csv
import math
import os
import sys

NUMERIC = ["age", "wage_per_hour", "capital_gains", "capital_losses", "stock_dividends",
           "num_emp", "weeks_worked"]
CATEGORICAL = ["class_worker", "det_ind_code", "det_occ_code", "education", "hs_college",
               "major_ind_code", "major_occ_code", "race", "hisp_origin", "sex", "union_member",
               "unemp_reason", "full_or_part_emp", "tax_filer_stat", "region_prev_res",
               "state_prev_res", "det_hh_fam_stat", "det_hh_summ", "mig_chg_msa", "mig_chg_reg",
               "mig_move_reg", "mig_same", "mig_prev_sunbelt", "fam_under_18", "country_father",
               "country_mother", "country_self", "citizenship", "own_or_self", "vet_question",
               "vet_benefits", "year"]
POSITIVE = {"income_50k": "50000+", "marital_stat": "Never married"}


def load(path, task):
    rows, labels = [], []
    with open(path, newline="") as f:
        for r in csv.DictReader(f, skipinitialspace=True):
            labels.append(1 if r[task].strip() == POSITIVE[task] else 0)
            rows.append(r)
    return rows, labels


def slog(v):
    return math.copysign(math.log1p(abs(v)), v)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=os.path.join(here, "..", "..", "shared", "data",
                                                  "census_income"))
    p.add_argument("--task", default="income_50k", choices=sorted(POSITIVE))
    args = p.parse_args()
    try:
        import numpy as np
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import log_loss, roc_auc_score
        from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder
    except ImportError as e:
        sys.exit(f"census_sklearn: {e}; install python3-sklearn")

    train, y_train = load(os.path.join(args.data, "train.csv"), args.task)
    test, y_test = load(os.path.join(args.data, "test.csv"), args.task)

    def numeric(rows):
        return np.array([[slog(float(r[c])) for c in NUMERIC] for r in rows])

    def categorical(rows):
        return np.array([[r[c].strip() for c in CATEGORICAL] for r in rows], dtype=object)

    n_train, n_test = numeric(train), numeric(test)
    mean, std = n_train.mean(axis=0), n_train.std(axis=0)
    std[std == 0] = 1
    n_train, n_test = (n_train - mean) / std, (n_test - mean) / std
    c_train, c_test = categorical(train), categorical(test)

    onehot = OneHotEncoder(handle_unknown="ignore").fit(c_train)
    from scipy.sparse import hstack, csr_matrix
    x_train = hstack([csr_matrix(n_train), onehot.transform(c_train)]).tocsr()
    x_test = hstack([csr_matrix(n_test), onehot.transform(c_test)]).tocsr()
    lr = LogisticRegression(max_iter=2000, C=1.0).fit(x_train, y_train)
    p = lr.predict_proba(x_test)[:, 1]
    print(f"{args.task} LogisticRegression: test AUC {roc_auc_score(y_test, p):.6f} "
          f"logloss {log_loss(y_test, p):.6f}")

    ordinal = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1).fit(c_train)
    o_train = np.hstack([n_train, ordinal.transform(c_train)])
    o_test = np.hstack([n_test, ordinal.transform(c_test)])
    is_cat = [False] * len(NUMERIC) + [True] * len(CATEGORICAL)
    # Categories beyond 255 levels do not fit the native categorical support.
    for j, col in enumerate(CATEGORICAL):
        if len(ordinal.categories_[j]) > 255:
            is_cat[len(NUMERIC) + j] = False
    o_test[o_test < 0] = np.nan
    gb = HistGradientBoostingClassifier(categorical_features=is_cat, max_iter=300,
                                        early_stopping=True, random_state=2021)
    gb.fit(o_train, y_train)
    p = gb.predict_proba(o_test)[:, 1]
    print(f"{args.task} HistGradientBoosting: test AUC {roc_auc_score(y_test, p):.6f} "
          f"logloss {log_loss(y_test, p):.6f}")


if __name__ == "__main__":
    main()
