"""What a forest's size buys: speed and bundle size against held-out fidelity to the clusterer.

    python -m benchmarks.forest_sizing [--input data/CC_GENERAL.csv] [--eval-rows 300000]
    python -m benchmarks.forest_sizing --generated [--generated-rows 9000] [--seeds 42,1,2]

Runs features and train on the input (the bundled file by default), then trains a grid of
forest shapes on the same sample and the same winning labels and prints, for each, its
one-thread predict_proba throughput on the same rows, bundle size, held-out macro-F1 and the
share of rows it puts in the same segment as the notebook's forest (150 full-depth trees).

--generated compares instead how hard the real and the generated customers are to segment: the
notebook forest's held-out macro-F1 and bundle size on the real file and on as many generated
customers per seed, with the labels of each data's own default model (features and train run on
each), then with the real file's model labelling both. The first is the issue's measure; its
figures move with the number of segments the model picks, which changes from sample to sample
(8,000-row samples of the real file itself mostly give 7, the whole file 4). The second keeps
the segments fixed and measures the customers alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
from pathlib import Path

import numpy as np

from benchmarks.forests import F1_TOLERANCE, KIB_TOLERANCE, NOTEBOOK, hardness, measure, winner_labels, within_targets
from jobs import common
from segmentation.core import logs
from segmentation.core.columns import FEATURE_COLUMNS
from segmentation.core.config import ForestConfig, load_config
from segmentation.features.stage import run_features
from segmentation.io import tables
from segmentation.synthetic.generator import generate_customers, write_customers
from segmentation.train.sampling import driver_sample
from segmentation.train.stage import run_train

RUN_DATE = dt.date(2026, 1, 1)
GRID = [(150, None, 1), (100, None, 1), (100, 12, 5), (50, None, 1), (50, 16, 5), (50, 12, 5),
        (50, 10, 10), (40, 12, 5), (30, 12, 5), (30, 10, 10), (20, 10, 10)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", default=None, help="raw customers (default: the configured input)")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/segmentation-forest-sizing"))
    p.add_argument("--eval-rows", type=int, default=300_000, help="rows each forest is timed on")
    p.add_argument("--generated", action="store_true", help="compare real and generated customers instead")
    p.add_argument("--generated-rows", type=int, default=9_000, help="generated customers (about the real file's)")
    p.add_argument("--seeds", default="42", help="generator seeds, comma-separated (one generated table each)")
    args = p.parse_args(argv)
    if args.generated:
        return compare_generated(args)

    logs.configure()
    shutil.rmtree(args.workdir, ignore_errors=True)
    lake = args.workdir / "lake"
    overrides = [f"tables.root={lake}", f"tables.models_dir={lake / 'models'}"]
    if args.input:
        overrides.append(f"input.source={args.input}")
    cfg = load_config(common.find_conf_dir(None), ["local"], overrides)
    spark = common.spark_session(cfg)
    run_features(spark, cfg, RUN_DATE)
    trained = run_train(spark, cfg, RUN_DATE)

    features_ref = tables.table_ref(cfg.tables, cfg.tables.features)
    sample = driver_sample(tables.read_run(spark, features_ref, RUN_DATE), FEATURE_COLUMNS,
                           cfg.train.sample.max_rows, cfg.train.sample.seed)
    labels = winner_labels(sample, cfg, trained["metrics"]["winner"])
    X = sample[FEATURE_COLUMNS].to_numpy(dtype=np.float64)
    # Timing rows: the sample repeated up to --eval-rows, so every forest walks the same rows.
    X_eval = np.resize(X, (args.eval_rows, X.shape[1]))

    base = cfg.train.forest
    reference = measure(NOTEBOOK, base, X, labels, X_eval)
    print(f"\nforest sizing on {len(X):,} sample rows, {len(np.unique(labels))} segments, "
          f"timed on {len(X_eval):,} rows, one thread, {dt.date.today().isoformat()}")
    print(f"{'trees':>6}{'depth':>7}{'leaf':>6}{'KiB':>9}{'rows/s':>12}{'speed':>8}{'macro-F1':>10}"
          f"{'dF1':>8}{'agree':>8}")
    for n, depth, leaf in GRID:
        f = reference if (n, depth, leaf) == (150, None, 1) else measure(
            ForestConfig(n_estimators=n, max_depth=depth, min_samples_leaf=leaf), base, X, labels, X_eval)
        agree = float(np.mean(f.predicted == reference.predicted))
        mark = "  <- default" if (n, depth, leaf) == (base.n_estimators, base.max_depth, base.min_samples_leaf) else ""
        print(f"{n:>6}{str(depth or 'full'):>7}{leaf:>6}{f.kib:>9.0f}{f.rows_per_s:>12,.0f}"
              f"{f.rows_per_s / reference.rows_per_s:>7.2f}x{f.macro_f1:>10.4f}"
              f"{f.macro_f1 - reference.macro_f1:>+8.4f}{agree:>8.3f}{mark}")
    return 0


def compare_generated(args) -> int:
    """Prints the notebook forest's macro-F1 and bundle size on real and on generated customers."""
    logs.configure()
    shutil.rmtree(args.workdir, ignore_errors=True)
    spark = None

    def config(name: str, source: str | None):
        nonlocal spark
        lake = args.workdir / name
        overrides = [f"tables.root={lake}", f"tables.models_dir={lake / 'models'}"]
        overrides += [f"input.source={source}"] if source else []
        cfg = load_config(common.find_conf_dir(None), ["local"], overrides)
        spark = spark or common.spark_session(cfg)
        return cfg

    cfg = config("real", args.input)  # starts the session
    real, real_model = hardness(spark, cfg, RUN_DATE)
    own, shared = {}, {}
    for seed in [int(s) for s in args.seeds.split(",")]:
        source = str(args.workdir / f"generated-{seed}.parquet")
        cfg = config(f"generated-{seed}", source)
        write_customers(generate_customers(spark, args.generated_rows, seed), source, "parquet")
        own[seed], _ = hardness(spark, cfg, RUN_DATE)
        if real_model is not None:
            shared[seed], _ = hardness(spark, cfg, RUN_DATE, labeller=real_model)
    print(f"\nnotebook forest (150 full-depth trees), {dt.date.today().isoformat()}; targets: held-out macro-F1 "
          f"within {F1_TOLERANCE} and bundle size within {KIB_TOLERANCE:.0%} of the real file's")
    _print_hardness("labels of each data's own default model (the issue's measure)", real, own)
    if shared:
        _print_hardness("labels of the real file's default model on both (the same segments, whatever the seed)",
                        real, shared)
    return 0


def _print_hardness(title: str, real, generated: dict) -> None:
    print(f"\n{title}")
    print(f"{'':<18}{'rows':>8}{'segments':>10}{'macro-F1':>10}{'KiB':>9}{'dF1':>9}{'dKiB':>8}")
    print(f"{'real':<18}{real.rows:>8,}{real.segments:>10}{real.macro_f1:>10.4f}{real.kib:>9.0f}")
    for seed, h in generated.items():
        f1_ok, kib_ok = within_targets(real, h)
        print(f"{f'generated seed {seed}':<18}{h.rows:>8,}{h.segments:>10}{h.macro_f1:>10.4f}{h.kib:>9.0f}"
              f"{h.macro_f1 - real.macro_f1:>+9.4f}{h.kib / real.kib - 1:>+8.1%}  "
              f"F1 {'met' if f1_ok else 'MISSED'}, size {'met' if kib_ok else 'MISSED'}")


if __name__ == "__main__":
    raise SystemExit(main())
