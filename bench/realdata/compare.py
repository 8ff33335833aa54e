#!/usr/bin/env python3
"""Split-half stability of subject scores on public real rating data sets.

For each data set and each random split, every subject's scorecards are shuffled
and dealt alternately into two halves; each half is fitted on its own by

  raw        the subject's mean rating
  additive   empirical-Bayes additive model: subject level + rater severity
             (+ item means), ridge by alternating least squares, variances
             re-estimated every sweep
  additive+  the same with per-rater noise and per-rater range use, each shrunk
             to the organisation's
  lmer       lme4::lmer(score ~ 1 + (1|rater) + (1|subject))  (item fixed
             effects when a scorecard holds several items)
  scorecard  this project's model, as the service fits it (`scorecard bench
             ratings`, same sweeps and tolerance)
  live       (ask for it with --methods) the same, but a fifth of each half
             arrives after the fit through the live update, read before any
             background refit

and the Spearman correlation of the subjects' scores between the two halves is
printed (subjects present in both). Higher is better: a method that recovers
more of the subjects' real level from half the data agrees more with itself.

Usage:  python3 bench/realdata/compare.py [--splits 5] [--sets insteval,ml100k,...]
        [--binary target/release/scorecard] [--methods raw,additive,...]
Needs:  R with lme4 and lmerTest (Debian: r-cran-lme4 r-cran-lmertest), numpy and
        scipy, and pip for the MovieLens file: bench/realdata/setup installs them.
Data:   lme4::InstEval, lmerTest::TVbo and lmerTest::carrots (extract.R), and
        MovieLens 100k as shipped inside the `recbole` wheel on PyPI (GroupLens'
        licence: research use; it is downloaded, never committed).
        --sets mlsmall: MovieLens "latest-small" as GroupLens published it in
        2016 (100,004 half-star ratings by 671 users; first row
        1,31,2.5,1260759144), films with at least 20 ratings: 69,104 ratings
        of 1,303 films by 671 raters, half-stars as 1..10. No package ships
        it; give its ratings.csv with --mlsmall PATH (or SCORECARD_MLSMALL).
"""
import argparse
import csv
import io
import os
import subprocess
import sys
import tempfile
import zipfile

import numpy as np
from scipy.stats import spearmanr

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.expanduser(os.environ.get("SCORECARD_REALDATA_CACHE", "~/.cache/scorecard/realdata"))


def prepare_data(mlsmall_source=None):
    os.makedirs(CACHE, exist_ok=True)
    if not os.path.exists(os.path.join(CACHE, "scales.csv")):
        subprocess.run(["Rscript", os.path.join(HERE, "extract.R"), CACHE], check=True)
    ml = os.path.join(CACHE, "ml100k.csv")
    if not os.path.exists(ml):
        wheel_dir = os.path.join(CACHE, "wheel")
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "recbole==1.2.1", "-d", wheel_dir],
                       check=True)
        wheel = [f for f in os.listdir(wheel_dir) if f.endswith(".whl")][0]
        with zipfile.ZipFile(os.path.join(wheel_dir, wheel)) as z:
            raw = z.read("recbole/dataset_example/ml-100k/ml-100k.inter").decode()
        with open(ml, "w") as out:
            out.write("rater,subject,item,scorecard,score\n")
            for n, line in enumerate(raw.splitlines()[1:]):
                user, movie, rating, _ = line.split("\t")
                out.write(f"u{user},m{movie},overall,{n},{int(float(rating))}\n")
    if mlsmall_source and not os.path.exists(os.path.join(CACHE, "mlsmall.csv")):
        write_mlsmall(mlsmall_source, os.path.join(CACHE, "mlsmall.csv"))
    shape = os.path.join(CACHE, "shape10.csv")
    if not os.path.exists(shape):
        write_shape10(shape)
    scales = {"ml100k": (1.0, 5.0), "shape10": (1.0, 10.0), "mlsmall": (1.0, 10.0)}
    with open(os.path.join(CACHE, "scales.csv")) as f:
        for row in csv.DictReader(f):
            scales[row["name"]] = (float(row["min"]), float(row["max"]))
    return scales


def write_mlsmall(source, path, min_ratings=20):
    """MovieLens latest-small (2016): films with at least `min_ratings`
    ratings, each rating its own scorecard, half-stars 0.5..5 as 1..10."""
    with open(source) as f:
        rows = [(r["userId"], r["movieId"], float(r["rating"])) for r in csv.DictReader(f) if r.get("userId")]
    count = {}
    for _, movie, _ in rows:
        count[movie] = count.get(movie, 0) + 1
    with open(path, "w") as out:
        out.write("rater,subject,item,scorecard,score\n")
        n = 0
        for user, movie, stars in rows:
            if count[movie] >= min_ratings:
                out.write(f"u{user},m{movie},overall,{n},{int(round(2 * stars))}\n")
                n += 1


def write_shape10(path, seed=1):
    """Not real data: 70,000 generated ratings in the shape of the set the
    issue's authors hold out (1,300 subjects, 670 raters with dozens to hundreds
    of ratings, one rating per scorecard, 1..10), with raters who differ in
    severity, range use and noise. Ask for it with --sets shape10."""
    rng = np.random.default_rng(seed)
    subjects, raters, n = 1300, 670, 70000
    level = rng.normal(0, 1, subjects)
    severity, stretch = rng.normal(0, 0.5, raters), np.exp(rng.normal(0, 0.4, raters))
    noise = np.exp(rng.normal(np.log(0.8), 0.5, raters))
    activity, popularity = np.exp(rng.normal(0, 1, raters)), np.exp(rng.normal(0, 1, subjects))
    r = rng.choice(raters, n, p=activity / activity.sum())
    s = rng.choice(subjects, n, p=popularity / popularity.sum())
    latent = severity[r] + stretch[r] * level[s] + noise[r] * rng.normal(size=n)
    y = np.clip(np.round(5.5 + 1.5 * latent), 1, 10).astype(int)
    with open(path, "w") as out:
        out.write("rater,subject,item,scorecard,score\n")
        for i in range(n):
            out.write(f"r{r[i]},s{s[i]},overall,{i},{y[i]}\n")


def load(name):
    with open(os.path.join(CACHE, name + ".csv")) as f:
        rows = list(csv.DictReader(f))
    return rows


def split(rows, seed):
    """Deals each subject's scorecards alternately into two halves, in random order."""
    rng = np.random.default_rng(seed)
    cards = {}
    for row in rows:
        cards.setdefault(row["subject"], {}).setdefault(row["scorecard"], []).append(row)
    halves = ([], [])
    for subject in sorted(cards):
        keys = sorted(cards[subject])
        order = rng.permutation(len(keys))
        flip = int(rng.integers(2))
        for i, at in enumerate(order):
            halves[(i + flip) % 2].extend(cards[subject][keys[at]])
    return halves


def arrays(rows):
    idx = lambda col: {v: i for i, v in enumerate(sorted({r[col] for r in rows}))}
    raters, subjects, items = idx("rater"), idx("subject"), idx("item")
    r = np.array([raters[x["rater"]] for x in rows])
    s = np.array([subjects[x["subject"]] for x in rows])
    k = np.array([items[x["item"]] for x in rows])
    y = np.array([float(x["score"]) for x in rows])
    names = sorted(subjects, key=subjects.get)
    return y, r, s, k, names, len(raters), len(subjects), len(items)


def raw_mean(rows):
    y, r, s, k, names, R, S, K = arrays(rows)
    return dict(zip(names, np.bincount(s, y, S) / np.bincount(s, minlength=S)))


def additive(rows, per_rater=False, sweeps=300):
    y, r, s, k, names, R, S, K = arrays(rows)
    n_r = np.bincount(r, minlength=R).astype(float)
    mu = np.bincount(k, y, K) / np.bincount(k, minlength=K)
    var = y.var()
    a, b, lam = np.zeros(S), np.zeros(R), np.ones(R)
    sig = np.full(R, var / 2)
    ta, tb, tl = var / 4, var / 10, 0.04
    nu = 5.0
    for _ in range(sweeps):
        w = 1.0 / sig[r]
        e = y - mu[k] - b[r]
        prec_a = np.bincount(s, lam[r] ** 2 * w, S) + 1.0 / ta
        a_new = np.bincount(s, lam[r] * w * e, S) / prec_a
        va = 1.0 / prec_a
        if per_rater:
            x, x2, t = a_new[s], a_new[s] ** 2 + va[s], y - mu[k]
            A00 = np.bincount(r, w, R) + 1.0 / tb
            A01 = np.bincount(r, w * x, R)
            A11 = np.bincount(r, w * x2, R) + 1.0 / tl
            B0 = np.bincount(r, w * t, R)
            B1 = np.bincount(r, w * x * t, R) + 1.0 / tl
            det = A00 * A11 - A01 ** 2
            b, lam = (B0 * A11 - A01 * B1) / det, (A00 * B1 - A01 * B0) / det
            vb, vl = A11 / det, A00 / det
        else:
            prec_b = np.bincount(r, w, R) + 1.0 / tb
            b = np.bincount(r, w * (y - mu[k] - a_new[s]), R) / prec_b
            vb, vl = 1.0 / prec_b, np.zeros(R)
        mu = np.bincount(k, y - b[r] - lam[r] * a_new[s], K) / np.bincount(k, minlength=K)
        res2 = (y - mu[k] - b[r] - lam[r] * a_new[s]) ** 2 + lam[r] ** 2 * va[s] + vb[r] + vl[r] * a_new[s] ** 2
        pooled = res2.mean()
        sig = (np.bincount(r, res2, R) + nu * pooled) / (n_r + nu) if per_rater else np.full(R, pooled)
        ta = np.mean(a_new ** 2 + va)
        tb = np.mean(b ** 2 + vb)
        tl = max(np.mean((lam - 1) ** 2 + vl), 1e-4)
        done = np.max(np.abs(a_new - a)) < 1e-7
        a = a_new
        if done:
            break
    return dict(zip(names, a))


def write_half(rows, path):
    with open(path, "w") as f:
        f.write("rater,subject,item,scorecard,score\n")
        for x in rows:
            f.write(f"{x['rater']},{x['subject']},{x['item']},{x['scorecard']},{x['score']}\n")


def read_scores(path_or_text, column="score"):
    f = io.StringIO(path_or_text) if "\n" in path_or_text else open(path_or_text)
    return {row["subject"]: float(row[column]) for row in csv.DictReader(f)}


def ours(binary, path, scale, live=False):
    extra = os.environ.get("SCORECARD_RATINGS_ARGS", "").split() + (["--live", "5"] if live else [])
    out = subprocess.run([binary, "bench", "ratings", "--input", path, "--scale", f"{scale[0]},{scale[1]}"] + extra,
                         check=True, capture_output=True, text=True)
    return read_scores(out.stdout)


def stability(first, second):
    common = sorted(set(first) & set(second))
    return spearmanr([first[c] for c in common], [second[c] for c in common])[0]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--splits", type=int, default=5)
    p.add_argument("--sets", default="insteval,ml100k,tvbo,carrots")
    p.add_argument("--methods", default="raw,additive,additive+,lmer,scorecard")
    p.add_argument("--binary", default=os.path.join(HERE, "..", "..", "target", "release", "scorecard"))
    p.add_argument("--mlsmall", default=os.environ.get("SCORECARD_MLSMALL"),
                   help="ratings.csv of MovieLens latest-small (2016), for --sets mlsmall")
    args = p.parse_args()
    methods = args.methods.split(",")
    scales = prepare_data(args.mlsmall)
    if "mlsmall" in args.sets.split(",") and not os.path.exists(os.path.join(CACHE, "mlsmall.csv")):
        sys.exit("--sets mlsmall needs --mlsmall PATH to its ratings.csv (see the docstring)")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets.split(","):
            rows = load(name)
            halves = []
            for seed in range(1, args.splits + 1):
                a, b = split(rows, seed)
                pa, pb = os.path.join(tmp, f"{name}-{seed}-a.csv"), os.path.join(tmp, f"{name}-{seed}-b.csv")
                write_half(a, pa)
                write_half(b, pb)
                halves.append((a, b, pa, pb))
            if "lmer" in methods:
                files = []
                for _, _, pa, pb in halves:
                    files += [pa, pa + ".lmer", pb, pb + ".lmer"]
                subprocess.run(["Rscript", os.path.join(HERE, "lmer.R")] + files, check=True)
            for method in methods:
                for a, b, pa, pb in halves:
                    if method == "raw":
                        fa, fb = raw_mean(a), raw_mean(b)
                    elif method == "additive":
                        fa, fb = additive(a), additive(b)
                    elif method == "additive+":
                        fa, fb = additive(a, per_rater=True), additive(b, per_rater=True)
                    elif method == "lmer":
                        fa, fb = read_scores(pa + ".lmer"), read_scores(pb + ".lmer")
                    elif method == "scorecard":
                        fa, fb = ours(args.binary, pa, scales[name]), ours(args.binary, pb, scales[name])
                    elif method == "live":
                        fa, fb = ours(args.binary, pa, scales[name], True), ours(args.binary, pb, scales[name], True)
                    else:
                        sys.exit(f"unknown method {method}")
                    results.setdefault((name, method), []).append(stability(fa, fb))
            print(f"\n{name}: {len(rows)} ratings; split-half Spearman over {args.splits} splits")
            for method in methods:
                v = results[(name, method)]
                print(f"  {method:10s} " + " ".join(f"{x:.3f}" for x in v) + f"   mean {np.mean(v):.3f}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
