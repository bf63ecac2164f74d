"""Turn the benchmark results into docs/benchmarks.md, its plots, and the pass/fail of each target."""

from __future__ import annotations

import math
import os
from pathlib import Path

METHOD_LABELS = {
    "fixative-default": "Fixative (default)",
    "fixative-low": "Fixative (low)",
    "fixative-high": "Fixative (high)",
    "naive": "Naive PGD (PhotoGuard-style)",
    "texture": "Fixed texture (Mist-style)",
    "untargeted": "Untargeted latent push",
}
RSS_LIMIT_BYTES = 4e9


def _ratio(numerator: float, denominator: float) -> float:
    if denominator > 0:
        return numerator / denominator
    return math.inf if numerator > 0 else 0.0


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def compute_targets(results: dict) -> list[dict]:
    """The issue's targets, each with the measured value and whether it holds."""
    strength = results["strength"]
    paintings = strength["paintings"].values()
    fix = [p["methods"]["fixative-default"] for p in paintings]
    naive = [p["methods"]["naive"] for p in paintings]
    fix_f, naive_f = _mean([m["robust_f"] for m in fix]), _mean([m["robust_f"] for m in naive])
    min_psnr = min(m["psnr"] for m in fix)
    strength_ratio = _ratio(fix_f, naive_f)
    targets = [{
        "name": "robust f ≥ 2x the naive baseline's, at PSNR ≥ 35 dB",
        "target": "≥ 2.0x, PSNR ≥ 35",
        "measured": f"{_fmt_ratio(strength_ratio)} (mean robust f {fix_f:.3f} vs {naive_f:.3f}; min PSNR {min_psnr:.2f} dB)",
        "value": strength_ratio, "passed": strength_ratio >= 2.0 and min_psnr >= 35.0,
    }]
    ladder = strength["ladder"]
    targets.append({
        "name": "time to reach the naive baseline's robust f ≤ 1/3 of the naive baseline's time",
        "target": "≤ 0.333x",
        "measured": (f"{ladder['ratio']:.3f}x ({ladder['seconds']:.1f} s vs {ladder['naive_seconds']:.1f} s)"
                     + ("" if ladder["reached"] else "; NOT reached within the step ladder")),
        "value": ladder["ratio"], "passed": ladder["reached"] and ladder["ratio"] <= 1 / 3,
    })
    default_seconds = _mean([m["seconds"] for m in fix])
    targets.append({
        "name": f"default protect of a {results['meta']['side']}² painting ≤ 30 s on 2 cores (bf16 where the CPU has it)",
        "target": "≤ 30 s",
        "measured": f"{default_seconds:.1f} s mean over {len(fix)} paintings ({_precision_note(results['meta'], fix)})",
        "value": default_seconds, "passed": default_seconds <= 30.0,
    })
    sweep = {row["side"]: row for row in results["scale"]}
    big = max(sweep)
    reference = 1024 if 1024 in sweep and big != 1024 else min(sweep)
    time_ratio = _ratio(sweep[big]["seconds"], sweep[reference]["seconds"])
    targets.append({
        "name": f"{big}² time ≤ 2x the time of {reference}²",
        "target": "≤ 2.0x",
        "measured": (f"{time_ratio:.2f}x ({sweep[big]['seconds']:.1f} s vs {sweep[reference]['seconds']:.1f} s; "
                     f"{sweep[big]['steps']} vs {sweep[reference]['steps']} steps, "
                     f"{_ratio(sweep[big]['seconds'] / sweep[big]['steps'], sweep[reference]['seconds'] / sweep[reference]['steps']):.2f}x per step)"),
        "value": time_ratio, "passed": time_ratio <= 2.0,
    })
    rss = sweep[big]["peak_rss_mb"]
    targets.append({
        "name": f"peak RSS ≤ 4 GB at {big}²",
        "target": "≤ 4 GB",
        "measured": f"{rss * 1024 * 1024 / 1e9:.2f} GB ({rss:.0f} MiB)",
        "value": rss, "passed": rss * 1024 * 1024 <= RSS_LIMIT_BYTES,
    })
    return targets


def _precision_note(meta: dict, runs: list[dict]) -> str:
    """How the timed default runs computed, the float32 time beside a bf16 one, and the report's cost."""
    note = ", ".join(sorted({m.get("dtype", "float32") for m in runs}))
    fp32 = [m["seconds_fp32"] for m in runs if "seconds_fp32" in m]
    if fp32:
        note += f"; float32 on the same CPU: {_mean(fp32):.1f} s"
    elif not meta.get("native_bf16"):
        note += "; this CPU has no native bf16 (AVX512-BF16/AMX), so fp32 ran"
    report = [m["report_seconds"] for m in runs if "report_seconds" in m]
    if report:
        note += (f"; the AI's-eye report the plug-ins show adds {_mean(report):.1f} s (float32, not in the time; "
                 "`--ai-report off` skips it)")
    return note


def _load_note(meta: dict) -> str:
    load = meta.get("load_average")
    if not load:
        return ""
    note = f", load average {load[0]} at the start and {load[1]} at the end"
    cores = meta.get("cores") or os.cpu_count() or 1
    if max(load) > cores:
        note += " (above the core count: other work shared the CPU and the times are inflated)"
    return note


def _fmt_ratio(value: float) -> str:
    return "∞x (naive ≤ 0)" if math.isinf(value) else f"{value:.2f}x"


def _num(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def plot_robustness(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    strength = results["strength"]
    purifications = strength["purifications"]
    paintings = list(strength["paintings"].values())
    everywhere = [m for m in paintings[0]["methods"] if all(m in p["methods"] for p in paintings)]
    first = paintings[0]["methods"]
    panels = [(f"mean over {len(paintings)} painting(s), matched PSNR", everywhere, paintings),
              ("first painting: each intensity vs baselines", list(first), paintings[:1])]
    figure, axes = plt.subplots(1, 2, figsize=(12, 4), dpi=80, sharey=True)
    for axis, (title, methods, subset) in zip(axes, panels, strict=True):
        width = 0.8 / max(1, len(methods))
        for i, method in enumerate(methods):
            heights = [_mean([p["methods"][method]["f"][name] for p in subset]) for name in purifications]
            axis.bar([x + i * width for x in range(len(purifications))], heights, width,
                     label=METHOD_LABELS.get(method, method))
        axis.set_xticks([x + 0.4 - width / 2 for x in range(len(purifications))], purifications, rotation=20)
        axis.axhline(0, color="black", linewidth=0.6)
        axis.set_title(title, fontsize=10)
        axis.legend(fontsize=7)
    axes[0].set_ylabel("closing fraction f toward the target")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def plot_scale(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["scale"]
    mp = [r["megapixels"] for r in rows]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=80)
    left.loglog(mp, [r["seconds"] for r in rows], "o-", label="protect() wall time")
    linear = [rows[0]["seconds"] * m / mp[0] for m in mp]
    left.loglog(mp, linear, ":", color="grey", label="linear in pixels (from the smallest)")
    left.set_xlabel("megapixels")
    left.set_ylabel("seconds (2 CPU cores)")
    left.legend(fontsize=8)
    left.set_title("time vs pixels", fontsize=10)
    right.semilogx(mp, [r["peak_rss_mb"] / 1024 for r in rows], "o-", label="peak RSS")
    right.axhline(RSS_LIMIT_BYTES / 2**30, color="red", linestyle="--", label="4 GB target")
    right.set_xlabel("megapixels")
    right.set_ylabel("GiB")
    right.legend(fontsize=8)
    right.set_title("peak memory vs pixels", fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def render_markdown(results: dict, targets: list[dict], extra_sections: list[str]) -> str:
    meta = results["meta"]
    strength = results.get("strength")
    missing = [name for name in ("strength", "scale") if name not in results]
    took = ("" if meta.get("seconds") is None else
            f"; the run took {meta['seconds'] / 60:.1f} min"
            f"{' (the last part of a resumed run)' if meta.get('resumed') else ''}{_load_note(meta)}")
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `python -m benchmarks.run --size {meta['size']}` on {meta['date']} "
        f"({meta['machine']}; torch {meta['torch']}){took}. Do not edit by hand: rerun the command.",
        "",
    ]
    if missing:
        lines += [f"**Partial run.** The {' and '.join(missing)} section(s) were not measured in this run (it was "
                  "stopped after the sections below); `python -m benchmarks.run --size full --resume` measures them "
                  "and keeps what is here.", ""]
    if strength is not None:
        lines += [
            f"Encoder: real TAEF2 (FLUX.2 latent space) from `../shared/models/taesd`. Paintings: "
            f"{', '.join(f'`{p}`' for p in strength['paintings'])} (public domain, centred {meta['side']}² squares). "
            f"Target: built-in style **{strength['style']}** (auto-picked by Fixative for the first painting, "
            "then used by every method and painting). f = 1 − ‖E(x′)−t‖/‖E(x)−t‖ under each purification "
            "(real JPEG, resampling, noise, blur, applied to both images); robust f = the minimum over the "
            "purifications. Baselines are matched to Fixative's PSNR on each painting.",
            "",
        ]
    if targets:
        lines += ["## Targets", "", "| target | goal | measured | result |", "|---|---|---|---|"]
    for t in targets:
        lines.append(f"| {t['name']} | {t['target']} | {t['measured']} | {'PASS' if t['passed'] else '**FAIL**'} |")
    if "mimic" in results:  # the headline metric (issue 13); f below is secondary
        from benchmarks.mimic import section

        lines += ["", section(results["mimic"]).rstrip()]
    if strength is not None:
        lines += _strength_lines(results, meta, strength)
    if "scale" in results:
        lines += _scale_lines(results, meta)
    if strength is not None and strength["previews"]:
        lines += ["## Previews", "", "Original | AI's-eye view before | AI's-eye view after (TAEF2 decoder, after "
                  "resizing to 512) | target, default settings (palette PNGs).", ""]
        lines += [f"![{p}](img/{p})" for p in strength["previews"]] + [""]
    lines += extra_sections
    lines += ["## Closing note", "", closing_note(results, targets), ""]
    return "\n".join(lines)


def _strength_lines(results: dict, meta: dict, strength: dict) -> list[str]:
    purifications = strength["purifications"]
    lines = ["", "## Protection strength (closing fraction f, secondary)", ""]
    header = ("| method | PSNR | SSIM | LPIPS | " + " | ".join(f"f {p}" for p in purifications)
              + " | **robust f** | latent shift (clean / min) | seconds |")
    for name, painting in strength["paintings"].items():
        lines += [f"### {name}", "", header, "|---" * (len(purifications) + 7) + "|"]
        for method, m in painting["methods"].items():
            cells = [METHOD_LABELS.get(method, method), _num(m["psnr"], 2), _num(m["ssim"], 4), _num(m["lpips"], 4),
                     *[_num(m["f"][p]) for p in purifications], f"**{m['robust_f']:.3f}**",
                     f"{m['shift']['clean']:.3f} / {_num(m.get('robust_shift'))}", f"{m['seconds']:.1f}"]
            lines.append("| " + " | ".join(cells) + " |")
        texture = painting["methods"].get("texture")
        if texture:
            lines += ["", f"Mist-style baseline toward its own texture: robust f {texture['own_target_robust_f']:.3f} "
                      f"(clean {texture['own_target_f']['clean']:.3f}). Baselines: {texture['steps']} sign-PGD steps at "
                      "full resolution, ε chosen for the PSNR, then the perturbation scaled to match it."]
        lines.append("")
    lines += ["![robustness per purification](img/bench-robustness.png)", "",
              "LPIPS is n/a when the `lpips` package or its AlexNet weights are not installed. Latent shift = "
              "‖E(x′)−E(x)‖/‖E(x)‖; its minimum over the purifications is measured for the untargeted push "
              "only (its f toward the target is ~0 by design).", ""]
    lines += ["## Consistency", "",
              "Cosine agreement of the per-channel mean latent shift E(x′)−E(x) across paintings protected "
              "toward the same style (1 = the same direction every time).", "",
              "| method | paintings | pairwise cosines | mean |", "|---|---|---|---|"]
    for method, c in strength["consistency"].items():
        lines.append(f"| {METHOD_LABELS.get(method, method)} | {len(c['paintings'])} | "
                     f"{', '.join(f'{p:.3f}' for p in c['pairs'])} | **{c['mean']:.3f}** |")
    ladder = strength["ladder"]
    lines += ["", "## Time to match the naive baseline", "",
              f"Naive PGD: robust f {ladder['naive_robust_f']:.3f} in {ladder['naive_seconds']:.1f} s. "
              "Fixative (quality fast, default intensity) with increasing steps, first painting:", "",
              "| steps | seconds | robust f |", "|---|---|---|"]
    for row in ladder["tries"]:
        lines.append(f"| {row['steps']} | {row['seconds']:.1f} | {row['robust_f']:.3f} |")
    return lines


def _scale_lines(results: dict, meta: dict) -> list[str]:
    steps_note = "" if meta.get("sweep_steps") is None else f", {meta['sweep_steps']} steps"
    lines = ["", "## Speed and scale (CPU)", "",
              f"Each size runs in a fresh process (peak RSS = VmHWM after protect()). Quality "
              f"`{meta.get('sweep_quality')}`{steps_note}: the "
              "time of a step is set by the view size, not the file size. Larger images are upscaled paintings. "
              "Robust f at 512²/1024²: measured after resizing to that area (never upscaling), as a training "
              "pipeline would.", "",
              "Steps grow with the number of scales a mimic could train at (native crops, half size, each "
              "training bucket below the image's size): one pass over each scale's tiles, capped at a 1024² "
              "image's worth per scale.", "",
              "| size | MP | steps | protect s | s per step | s per MP | peak RSS MiB | robust f @512² | "
              "robust f @1024² | PSNR |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["scale"]:
        lines.append(f"| {r['side']}² | {r['megapixels']:.2f} | {r['steps']} | {r['seconds']:.1f} | "
                     f"{r['seconds'] / max(1, r['steps']):.2f} | {r['seconds_per_mp']:.1f} | "
                     f"{r['peak_rss_mb']:.0f} | {r['robust_f_512']:.3f} | {r['robust_f_1024']:.3f} | {r['psnr']:.2f} |")
    lines += ["", "![time and memory vs pixels](img/bench-scale.png)", ""]
    return lines


def closing_note(results: dict, targets: list[dict]) -> str:
    """One paragraph: the AI's-eye goals first (the headline), then the secondary targets."""
    text = ""
    if "mimic" in results:
        from benchmarks.mimic import goals

        mimic_goals = goals(results["mimic"])
        met = sum(g["passed"] for g in mimic_goals)
        text = f"What the model sees: {met} of {len(mimic_goals)} AI's-eye goals met (table above). "
    if not targets:
        return text + "The secondary targets (f, time, scale, memory) were not measured in this run."
    strength_t, time_t, default_t, scale_t, rss_t = targets
    passed = sum(t["passed"] for t in targets)
    return (text + f"Secondary: Fixative's robust f is {_fmt_ratio(strength_t['value'])} the naive baseline's at "
            f"matched PSNR; it reaches the naive baseline's robust f in {time_t['value']:.2f}x its time; a default "
            f"protect takes {default_t['value']:.1f} s; the largest image takes {scale_t['value']:.2f}x the time of "
            f"the reference size, at {rss_t['value'] / 1024:.2f} GiB peak RSS. {passed} of {len(targets)} targets pass"
            + ("." if passed == len(targets) else
               f"; failing: {'; '.join(t['name'] for t in targets if not t['passed'])}."))


def gpu_section(gpu: dict) -> str:
    lines = ["## GPU (from `benchmarks/gpu.py`)", "",
             f"{gpu['device']}, {gpu['dtype']}, quality `{gpu['quality']}`, encoder: {gpu['model']} "
             f"(random weights, timing only), {gpu['date']}.", "",
             "| size | seconds per image | counted TFLOP | achieved TFLOP/s |", "|---|---|---|---|"]
    for r in gpu["rows"]:
        lines.append(f"| {r['side']}² | {r['seconds']:.2f} | {r['tflop']:.2f} | {r['tflops']:.1f} |")
    return "\n".join(lines) + "\n"
