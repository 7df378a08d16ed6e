"""The table and plots of compare.sh, from the runs' printouts (stdlib only).

Usage: report.py OUT_DIR XOR_CSV
Reads OUT/MODEL.METHOD.txt (gradc train's output), OUT/MODEL.check.txt (gradc
check: the param count) and OUT/xor.METHOD.pred.csv; writes OUT/table.md and
OUT/MODEL.svg (training loss against training wall time, one curve a method).
"""
import csv
import math
import re
import sys

METHODS = ["backprop", "forward", "genetic", "es"]
LABELS = {"backprop": "back-propagation + SGD", "forward": "forward-mode gradients + SGD",
          "genetic": "genetic algorithm", "es": "evolution strategies"}
COLORS = {"backprop": "#1f77b4", "forward": "#ff7f0e", "genetic": "#2ca02c", "es": "#d62728"}
# "epoch 3/20  train loss L  [eval loss E  eval accuracy A]  (T s, R steps/s)"; the
# epoch's time is taken from its rate (T has two decimals only).
EPOCH = re.compile(r"^epoch (\d+)/\d+\s+train loss (\S+)(?:\s+eval loss (\S+))?(?:\s+eval accuracy (\S+))?"
                   r"\s+\((\S+) s, (\S+) steps/s\)")
WROTE = re.compile(r"^wrote \S+ \((\d+) epochs, (\d+) steps")
COMPILED = re.compile(r"^compiled \S+ in (\S+) s")
OPTIMIZER = re.compile(r"optimizer (\w+)\(([^)]*)\)")


def parse(path):
    run = {"epochs": [], "steps": 0, "compile": None}
    lines = open(path).read().splitlines()
    for text in lines:
        if m := WROTE.match(text):
            run["steps"], epochs = int(m.group(2)), int(m.group(1))
        elif m := COMPILED.match(text):
            run["compile"] = float(m.group(1))
    if not run["steps"]:
        sys.exit("report.py: %s: no summary line" % path)
    per_epoch = run["steps"] / epochs
    elapsed = 0.0
    for text in lines:
        if m := EPOCH.match(text):
            elapsed += per_epoch / float(m.group(6))
            acc = float(m.group(4)) if m.group(4) else None
            run["epochs"].append((elapsed, float(m.group(2)), acc))
    if not run["epochs"]:
        sys.exit("report.py: %s: no epoch lines" % path)
    return run


def check_info(path):
    text = open(path).read()
    params = int(re.search(r"(\d+) trainable values", text).group(1))
    m = OPTIMIZER.search(text)
    options = dict(kv.split("=") for kv in m.group(2).split(", ")) if m.group(2) else {}
    return params, m.group(1), options


def evaluations(method, params, options):
    """Loss evaluations (passes over the batch) and gradient evaluations per step."""
    if method == "backprop":
        return 1, 1
    if method == "forward":
        return 1 + params, 1  # the loss, and one tangent per param element
    population = int(float(options["population"]))
    return (population + 1 if method == "genetic" else 2 * population + 1), 0


def xor_accuracy(pred_path, data_path):
    truth = [float(r["y"]) for r in csv.DictReader(open(data_path))]
    pred = [float(r["pred_0"]) for r in csv.DictReader(open(pred_path))]
    return sum((p > 0.5) == (t > 0.5) for p, t in zip(pred, truth)) / len(truth)


def duration(seconds):
    return "%.3g ms" % (1000 * seconds) if seconds < 1 else "%.3g s" % seconds


def svg(model, runs, path):
    w, h, left, right, top, bottom = 640, 400, 70, 20, 30, 50
    points = [(t, max(loss, 1e-12)) for run in runs.values() for t, loss, _ in run["epochs"]]
    tmax = max(t for t, _ in points) or 1.0
    lo = math.floor(math.log10(min(l for _, l in points)))
    hi = math.ceil(math.log10(max(l for _, l in points)))
    hi = hi if hi > lo else lo + 1
    x = lambda t: left + (w - left - right) * t / tmax
    y = lambda l: top + (h - top - bottom) * (hi - math.log10(max(l, 1e-12))) / (hi - lo)
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">' % (w, h),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="18" font-size="14">%s: training loss against wall time</text>' % (left, model)]
    for e in range(lo, hi + 1):
        out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>' % (left, w - right, y(10 ** e), y(10 ** e)))
        out.append('<text x="%d" y="%.1f" text-anchor="end">1e%d</text>' % (left - 6, y(10 ** e) + 4, e))
    for k in range(6):
        t = tmax * k / 5
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%.3g</text>' % (x(t), h - bottom + 18, t))
    out.append('<text x="%d" y="%d" text-anchor="middle">seconds of training</text>' % ((left + w - right) // 2, h - 10))
    for i, (method, run) in enumerate(runs.items()):
        pts = " ".join("%.1f,%.1f" % (x(t), y(l)) for t, l, _ in run["epochs"])
        out.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"><title>%s</title></polyline>'
                   % (COLORS[method], pts, LABELS[method]))
        out.append('<rect x="%d" y="%d" width="12" height="3" fill="%s"/>' % (w - right - 230, top + 8 + 16 * i, COLORS[method]))
        out.append('<text x="%d" y="%d">%s</text>' % (w - right - 212, top + 13 + 16 * i, LABELS[method]))
    out.append("</svg>")
    open(path, "w").write("\n".join(out) + "\n")


def main():
    out, xor_csv = sys.argv[1], sys.argv[2]
    rows = ["| model | method | final loss | accuracy | epochs | steps | training time | compile time "
            "| loss evaluations | gradient evaluations |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for model in ["xor", "digits"]:
        params = check_info("%s/%s.check.txt" % (out, model))[0]
        runs = {}
        for method in METHODS:
            run = runs[method] = parse("%s/%s.%s.txt" % (out, model, method))
            _, _, options = check_info("%s/%s.%s.check.txt" % (out, model, method))
            per_loss, per_grad = evaluations(method, params, options)
            t, loss, acc = run["epochs"][-1]
            if model == "xor":
                acc = xor_accuracy("%s/xor.%s.pred.csv" % (out, method), xor_csv)
            rows.append("| %s | %s | %.4g | %s | %d | %d | %s | %s | %d | %d |" % (
                model, LABELS[method], loss, "%.1f %%" % (100 * acc) if acc is not None else "-",
                len(run["epochs"]), run["steps"], duration(t), duration(run["compile"]) if run["compile"] else "-",
                per_loss * run["steps"], per_grad * run["steps"]))
        svg(model, runs, "%s/%s.svg" % (out, model))
    table = "\n".join(rows) + "\n"
    open("%s/table.md" % out, "w").write(table)
    sys.stdout.write(table)
    print("plots: %s/xor.svg %s/digits.svg" % (out, out))


main()
