"""The command line: every command's arguments, help and examples, in the order `dse --help` lists them."""
from __future__ import annotations

import argparse
import os

from .analysis import cmd_analyze, cmd_compare, cmd_fit, cmd_noise, cmd_plot, cmd_refine, cmd_report
from .common import Parser, command, ranged
from .data import cmd_data_prepare
from .run import cmd_export, cmd_fixres, cmd_run, cmd_scale_grid, cmd_search, cmd_status, cmd_sweep
from .space import cmd_describe, cmd_models, cmd_sample, cmd_scale_apply, cmd_show, cmd_spaces


def build_parser() -> Parser:
    from .. import __version__

    p = Parser(prog="dse", description="Design-space exploration for convolutional networks: sample a design space "
               "inside a complexity band, train every sample as a Ray Tune trial, compare spaces by their error EDFs.",
               epilog="examples:\n  dse run experiments/quick.yaml\n  dse sample --space regnetx --flops 360-400M "
               "-n 100 -o s.jsonl\n\n'dse COMMAND --help' describes a command.",
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    p.add_argument("--version", action="version", version=f"dse {__version__}", help="print dse's version and exit")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    space_help = "a space name (see dse spaces) or a space file (.yaml)"
    out_help = "replace an existing output file"
    # arguments several training commands take, worded once
    address = {"help": "join a Ray cluster: auto or HOST:PORT (default: a local Ray)"}
    data_path = {"help": "data set folder (IDX files, CIFAR, an image folder, a prepared cache)"}
    cpus = {"type": ranged(float, 0.01, 1024), "help": "CPUs per trial (also its torch threads)"}
    csv = {"action": "store_true", "help": "also write results.csv at the end"}

    s = command(sub, "spaces", "list the available spaces", "dse spaces\ndse spaces --json",
             "List the spaces found in $DSE_SPACES, the checkout's spaces/ and the installed package: name, family, "
             "parent and doc line.")
    s.add_argument("--json", action="store_true", help="print JSON records (name, family, extends, doc, path)")
    s.set_defaults(fn=cmd_spaces)

    s = command(sub, "show", "print a space's declaration, resolved through `extends`",
             "dse show anynetx_e\ndse show my/space.yaml --json")
    s.add_argument("space", help=space_help)
    s.add_argument("--json", action="store_true", help="print the resolved declaration as JSON")
    s.set_defaults(fn=cmd_show)

    s = command(sub, "describe", "one configuration from given parameters: stage table and complexity",
             "dse describe --space regnetx --set d=22 w0=24 wa=24.48 wm=2.54 g=16\n"
             "dse describe --space regnety --preset 800mf --json")
    s.add_argument("--space", required=True, help=space_help)
    s.add_argument("--set", nargs="+", action="extend", metavar="K=V",
                   help="parameter values, e.g. d=22 w0=24 wa=24.48 wm=2.54 g=16 (repeatable)")
    s.add_argument("--preset", help="a named preset of the space, e.g. 400mf for regnetx")
    s.add_argument("--res", type=ranged(int, 1, 4096), help="resolution for the complexity (default: the space's)")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(fn=cmd_describe)

    s = command(sub, "sample", "sample configurations inside a complexity band",
             "dse sample --space anynetx_c --flops 360-400M -n 500 -o samples.jsonl\n"
             "dse sample --space regnety --flops 360-400M --params -6M --seed 1 -o - | head",
             "Draw distinct configurations of a space whose complexity lies inside the bands (exact sampling of "
             "shared and monotone constraints, rejection for the band and expression constraints). The same seed "
             "gives the same bytes for any --workers.")
    s.add_argument("--space", required=True, help=space_help)
    s.add_argument("--flops", help="band of multiply-adds, e.g. 360-400M, 0.36-0.4G, -400M, 360M-")
    s.add_argument("--params", help="band of parameters, e.g. 2-6M")
    s.add_argument("--acts", help="band of activations, e.g. -5M")
    s.add_argument("-n", type=ranged(int, 1, 10 ** 6), default=500, help="number of distinct samples (default 500)")
    s.add_argument("--seed", type=ranged(int, 0, 2 ** 32 - 1), default=0, help="the sampler's seed (default 0)")
    s.add_argument("-o", "--output", help="JSON Lines output ('-' for stdout)")
    s.add_argument("--force", action="store_true", help=out_help)
    s.add_argument("--workers", type=ranged(int, 1, 64), default=min(4, os.cpu_count() or 1),
                   help="processes (the output does not depend on it)")
    s.add_argument("--max-tries", type=ranged(int, 1, 10 ** 9),
                   help="give up after this many draws (default max(200000, 400n); also after 120 s)")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    s.set_defaults(fn=cmd_sample)

    s = command(sub, "sweep", "train every sample of an experiment as a Ray Tune trial",
             "dse sweep experiments/main.yaml --out runs/main\n"
             "dse sweep experiments/main.yaml --dry-run\n"
             "dse sweep experiments/main.yaml --out runs/main --resume",
             "Train every sample of an experiment (then its noise-floor repeats) as Ray Tune trials, one row per "
             "trial in OUT/results.jsonl and live curves in OUT/curves.jsonl. Ctrl-C is safe; --resume continues.")
    s.add_argument("experiment", help="an experiments/*.yaml file")
    s.add_argument("--out", help="sweep folder (default runs/<name>)")
    s.add_argument("--dry-run", action="store_true",
                   help="print the plan (trials per space, noise repeats, the band's acceptance rate) and a cost "
                        "estimate; train nothing, make no folder")
    s.add_argument("--address", **address)
    s.add_argument("--resume", action="store_true", help="continue a stopped sweep in --out")
    s.add_argument("--retries", type=ranged(int, 0, 100), help="retry a trial that raised up to N times (0..100)")
    s.add_argument("--data-path", **data_path)
    s.add_argument("--data", help="data set name, overriding the experiment's (digits, fashion_mnist, mnist, kmnist, "
                   "cifar10, cifar100, imagefolder, cache)")
    s.add_argument("--cpus", **cpus)
    s.add_argument("--csv", **csv)
    s.set_defaults(fn=cmd_sweep)

    s = command(sub, "run", "the whole protocol: sweep (continuing a stopped one), EDF figure, HTML report",
             "dse run experiments/quick.yaml\ndse run experiments/main.yaml --out runs/main")
    s.add_argument("experiment", help="an experiments/*.yaml file")
    s.add_argument("--out", help="sweep folder (default runs/<name>); running again continues it")
    s.add_argument("--address", **address)
    s.add_argument("--data-path", **data_path)
    s.set_defaults(fn=cmd_run)

    s = command(sub, "search", "the best model of one space inside its band: random or TPE, ASHA, a budget",
             "dse search experiments/search.yaml --budget 32 --searcher tpe\n"
             "dse search experiments/search.yaml --budget 10m --searcher random --scheduler none")
    s.add_argument("experiment", help="an experiments/*.yaml file (one space and a band; an optional search: section)")
    s.add_argument("--budget", help="trials (e.g. 32) or wall time (90s, 10m, 2h)")
    s.add_argument("--scheduler", choices=["asha", "none"], help="ASHA early stopping (default) or none")
    s.add_argument("--searcher", choices=["random", "tpe"], help="band samples at random (default) or Optuna's TPE")
    s.add_argument("--grace", type=ranged(int, 1, 10_000), help="ASHA grace period in epochs (default 30%% of them)")
    s.add_argument("--reduction", type=ranged(float, 1.01, 100), help="ASHA reduction factor (default 2)")
    s.add_argument("--space", help="the space to search, when the experiment names several")
    s.add_argument("--out", help="folder (default runs/<name>_<searcher>_<scheduler>)")
    s.add_argument("--resume", action="store_true", help="continue a stopped search (or grow its budget)")
    s.add_argument("--address", **address)
    s.add_argument("--data-path", **data_path)
    s.add_argument("--cpus", **cpus)
    s.add_argument("--csv", **csv)
    s.set_defaults(fn=cmd_search)

    s = command(sub, "fixres", "errors of trained models at several test resolutions (FixRes)",
             "dse fixres runs/fixres --test-sizes 12,16,20\ndse fixres runs/fixres --test-sizes 12,16,20 --finetune 2")
    s.add_argument("run", help="a sweep folder run with trial.keep_weights, or one weights/<id>.pt file")
    s.add_argument("--test-sizes", help="evaluate the kept weights at these sizes, e.g. 24,32,40 (default: the "
                   "paired summary of the sizes the sweep tested, trial.test_sizes)")
    s.add_argument("--arm", help="the arm to summarise or evaluate (default: the first)")
    s.add_argument("--top", type=int, help="only the K best models of the sweep")
    s.add_argument("--id", nargs="+", help="only these sample ids")
    s.add_argument("--finetune", type=int, default=0, metavar="EPOCHS",
                   help="fine-tune the classifier (and last BN statistics) at the best size, then report the gain")
    s.add_argument("--json", action="store_true", help="print JSON records")
    s.set_defaults(fn=cmd_fixres)

    s = command(sub, "models", "the named models (zoo presets) with their resolution, flops and params",
             "dse models regnety\ndse models 'efficientnet_b[0-3]' --json")
    s.add_argument("pattern", nargs="?", help="a part of the name (regnety, 400mf) or a shell pattern "
                                              "('regnety_*', 'efficientnet_b[0-3]')")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(fn=cmd_models)

    s = command(sub, "export", "one model file (weights, config, recipe) from a sweep's kept weights",
             "dse export runs/search_tpe_asha --best -o best.pt\ndse export runs/main --id 9d9c65")
    s.add_argument("run", help="a sweep folder run with trial.keep_weights")
    which = s.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", help="the sample id (a unique prefix is enough)")
    which.add_argument("--best", action="store_true", help="the finished model with the lowest error")
    s.add_argument("-o", "--output", help="the model file (default <id>.pt)")
    s.add_argument("--force", action="store_true", help=out_help)
    s.set_defaults(fn=cmd_export)

    s = command(sub, "scale", "EfficientNet compound scaling: the alpha/beta/gamma grid, scaled families",
             "dse scale apply --phi 0..7\ndse scale grid experiments/efficientnet_grid.yaml")
    scale = s.add_subparsers(dest="scale_cmd", metavar="grid|apply", parser_class=Parser)
    scale.required = True
    g = command(scale, "grid", "train every (alpha, beta, gamma) of an experiment's grid at phi=1, rank them",
             "dse scale grid experiments/efficientnet_grid.yaml\n"
             "dse scale grid experiments/efficientnet_grid.yaml --out runs/grid --resume")
    g.add_argument("experiment", help="an experiments/*.yaml file with a grid: section")
    g.add_argument("--out", help="sweep folder (default runs/<name>)")
    g.add_argument("--address", **address)
    g.add_argument("--resume", action="store_true", help="continue a stopped grid in --out")
    g.set_defaults(fn=cmd_scale_grid)
    g = command(scale, "apply", "the compound-scaled family and its complexity",
             "dse scale apply --phi 0..7\ndse scale apply --alpha 1.2 --beta 1.1 --gamma 1.15 --phi 1,3 --json")
    g.add_argument("--alpha", type=float, default=1.2, help="depth multiplier per phi (default 1.2)")
    g.add_argument("--beta", type=float, default=1.1, help="width multiplier per phi (default 1.1)")
    g.add_argument("--gamma", type=float, default=1.15, help="resolution multiplier per phi (default 1.15)")
    g.add_argument("--phi", default="0..7", help="N, A..B or a comma list (default 0..7)")
    g.add_argument("--base-res", type=int, default=224, help="the base resolution that gamma scales (default 224)")
    g.add_argument("--json", action="store_true", help="print JSON records")
    g.set_defaults(fn=cmd_scale_apply)

    runs_help = "sweep folders or results files (.jsonl, .parquet, .csv)"
    metric_help = "the column to rank by (default error; reward ranks higher-is-better)"
    fig_help = "a .png, .svg or .pdf file"

    s = command(sub, "plot", "figures from results tables: edf, params, widths",
             "dse plot edf runs/main --band -o edf.pdf\ndse plot params runs/main --params w,flops -o params.png")
    s.add_argument("what", choices=["edf", "params", "widths"], help="the figure: error EDFs, the error against the "
                   "design parameters, or the widths of the best models")
    s.add_argument("runs", nargs="+", help=runs_help)
    s.add_argument("-o", "--output", required=True, help=fig_help)
    s.add_argument("--space", nargs="+", help="only these spaces")
    s.add_argument("--by", default="space", help="the column that names the curves (default space; run, ...)")
    s.add_argument("--normalized", nargs="?", const="flops", choices=["flops", "params", "acts"],
                   help="complexity-normalised EDF (by flops unless named)")
    s.add_argument("--band", action="store_true", help="bootstrap 95%% confidence band around each EDF")
    s.add_argument("--params", help="comma list of parameters for `params` (default: all the table has)")
    s.add_argument("--top", type=int, default=20, help="models shown by `widths` (default 20)")
    s.add_argument("--metric", default="error", help=metric_help)
    s.add_argument("--force", action="store_true", help=out_help)
    s.set_defaults(fn=cmd_plot)

    s = command(sub, "fit", "fit the quantized linear width rule (d, w0, wa, wm, e_fit)",
             "dse fit --widths 24,56,56,152,152,152,152,368 --json\ndse fit runs/main --top 10 -o fits.pdf",
             "Fit the quantized linear width rule of RegNet to per-block widths, or to every finished model of a "
             "sweep; a sweep's summary (Spearman of e_fit and the error, e_fit of the best models) is per space.")
    s.add_argument("runs", nargs="*", help="sweep folders, results files or a samples file from `dse sample`")
    s.add_argument("--widths", help="per-block widths, e.g. 24,56,56,152,152")
    s.add_argument("--top", type=int, help="show the K best models (default: all); the summary compares them with "
                   "the rest (default K: the best 10%%)")
    s.add_argument("--id", nargs="+", help="only these sample ids (no summary)")
    s.add_argument("-q", "--quantum", type=int, default=8, help="width quantum (default 8)")
    s.add_argument("--metric", default="error", help=metric_help)
    s.add_argument("--json", action="store_true", help="print JSON")
    s.add_argument("-o", "--output", help="also draw a figure (" + fig_help + ")")
    s.add_argument("--force", action="store_true", help=out_help)
    s.set_defaults(fn=cmd_fit)

    s = command(sub, "refine", "test candidate constraints on a sweep's samples, no new training",
             "dse refine runs/main\ndse refine runs/a --space anynetx_a --e-fit 0.05,0.1 --min-n 20 --json")
    s.add_argument("runs", nargs="+", help=runs_help)
    s.add_argument("--e-fit", help="e_fit thresholds to test, comma list (default 0.05,0.1,0.2)")
    s.add_argument("--space", nargs="+", help="only these spaces (each space is refined on its own)")
    s.add_argument("--min-n", type=int, default=10, help="a candidate keeping fewer rows is 'too few'; the A -> E "
                   "path stops at a step leaving fewer rows (10)")
    s.add_argument("--metric", default="error", help=metric_help)
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(fn=cmd_refine)

    s = command(sub, "compare", "verdicts: every pair of spaces (or runs), with intervals and the noise floor",
             "dse compare runs/main\ndse compare runs/a runs/b --by run --json")
    s.add_argument("runs", nargs="+", help=runs_help)
    s.add_argument("--by", choices=["space", "run", "arm"],
                   help="compare spaces, runs or arms (default: arms for an experiment with arms, else spaces)")
    s.add_argument("--space", nargs="+", help="only these spaces")
    s.add_argument("--metric", default="error", help=metric_help)
    s.add_argument("--shift", type=float, help="the shift the power line speaks of (default 2 points of error)")
    s.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    s.add_argument("--force", action="store_true", help="--by run: give verdicts even when the runs' recipe, data "
                   "or band differ (they are labelled 'not comparable' otherwise)")
    s.add_argument("--json", action="store_true", help="print JSON records")
    s.set_defaults(fn=cmd_compare)

    s = command(sub, "noise", "the noise floor: per-model seed std, spread of models (IQR), their ratio",
             "dse noise runs/main\ndse noise runs/main --space anynetx_a --json")
    s.add_argument("runs", nargs="+", help=runs_help)
    s.add_argument("--space", nargs="+", help="only these spaces")
    s.add_argument("--metric", default="error", help=metric_help)
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(fn=cmd_noise)

    s = command(sub, "analyze", "low-epoch validity: rank correlation of each epoch's error with the final",
             "dse analyze runs/main\ndse analyze runs/main --json")
    s.add_argument("runs", nargs="+", help=runs_help)
    s.add_argument("--metric", default="error", help=argparse.SUPPRESS)
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(fn=cmd_analyze)

    s = command(sub, "report", "one self-contained HTML report of one or more sweeps",
             "dse report runs/main -o report.html\ndse report runs/a runs/b -o both.html --force")
    s.add_argument("runs", nargs="+", help=runs_help)
    s.add_argument("-o", "--output", required=True, help="an .html file")
    s.add_argument("--metric", default="error", help=metric_help)
    s.add_argument("--force", action="store_true", help=out_help)
    s.set_defaults(fn=cmd_report)

    s = command(sub, "data", "data sets: prepare an image folder of any size as a memory-mapped cache",
             "dse data prepare imagefolder ~/data/imagenet --res 64 -o ~/data/imagenet64\n"
             "dse sweep experiments/regnet_imagenet64.yaml --data-path ~/data/imagenet64")
    data = s.add_subparsers(dest="data_cmd", metavar="prepare", parser_class=Parser)
    data.required = True
    g = command(data, "prepare", "decode an image folder once into a uint8 memory-mapped cache that sweeps read",
             "dse data prepare imagefolder ~/data/imagenet --res 64 -o ~/data/imagenet64\n"
             "dse data prepare imagefolder ~/data/imagenet --res 64 -o ~/data/imagenet64 --resume",
             "Decode every image of PATH/<class>/<image> (or PATH/train and PATH/val) once: its short side resized "
             "to RES, then the centre RES×RES crop, into uint8 arrays in CACHE with their labels, the class names, "
             "the training images' mean and std and each file's sha256. Sweeps read it with data: {name: cache, "
             "path: CACHE}, a batch at a time from the memory map. Ctrl-C is safe; --resume continues.")
    g.add_argument("kind", choices=["imagefolder"], help="the source's layout (imagefolder: PATH/<class>/<image>)")
    g.add_argument("path", help="the image folder")
    g.add_argument("--res", type=ranged(int, 1, 4096), required=True, help="the stored images' side in pixels")
    g.add_argument("-o", "--output", required=True, help="the cache folder (new, or unfinished with --resume)")
    g.add_argument("--workers", type=ranged(int, 1, 256), help="decoding processes (default: the CPUs, at most "
                   "16; the cache does not depend on it)")
    g.add_argument("--resume", action="store_true", help="continue an unfinished cache in -o")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    g.set_defaults(fn=cmd_data_prepare)

    s = command(sub, "status", "progress of a running or stopped sweep; --curves for its live training curves",
             "dse status runs/main\ndse status runs/main --curves\ndse status runs/main --curves -o curves.png")
    s.add_argument("dir", help="a sweep or search folder")
    s.add_argument("--curves", action="store_true", help="per trial, its latest epoch with a sparkline of the val "
                   "error (from curves.jsonl); with -o, a figure of every trial's curves")
    s.add_argument("-o", "--output", help="with --curves: draw the curves to " + fig_help)
    s.add_argument("--force", action="store_true", help=out_help)
    s.add_argument("--json", action="store_true", help="print JSON (with --curves: one record per trial epoch)")
    s.set_defaults(fn=cmd_status)
    return p
