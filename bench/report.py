"""Write the results as `latest.json` and a markdown summary (`latest.md`)."""

from __future__ import annotations

import json
from pathlib import Path


def _fmt(x, nd: int = 1) -> str:
    return f"{x:.{nd}f}" if isinstance(x, (int, float)) else str(x)


def _runs(summary: dict) -> str:
    return ", ".join(_fmt(r) for r in summary["runs"])


def _archive_tables(res: dict) -> list[str]:
    lines = [
        "## Stages, standalone",
        "",
        "| stage | median | runs | CPU ms per frame (engine: per face) |",
        "|---|---|---|---|",
    ]
    for name, summ in res["stages"].items():
        unit = "faces/s" if name.endswith("_faces") else "frames/s"
        cpu = res.get("stage_cpu_ms", {}).get(name, "")
        lines.append(
            f"| {name.removesuffix('_faces')} ({unit}) | {_fmt(summ['median'])} | {_runs(summ)} | {_fmt(cpu, 2)} |"
        )
    wl = res["stage_workload"]
    lines += [
        "",
        f"Stage workload: {wl['frames']} frames, {wl['faces']} faces ({wl['faces_per_frame']} per frame).",
        "",
    ]
    lines += [
        "## End to end (archive mode, real Supervisor + Worker + redis-server)",
        "",
        "| variant | frames/s (median) | runs | faces/s | worker CPU ms per frame | peak RSS MiB |",
        "|---|---|---|---|---|---|",
    ]
    variants = [("detect every frame", res["e2e"])]
    if "e2e_detect_every_3" in res:
        variants.append(("detect_every 3", res["e2e_detect_every_3"]))
    if "e2e_detector_auto" in res:
        variants.append(("detector input auto (from the frame size)", res["e2e_detector_auto"]))
    for name, e in variants:
        lines.append(
            f"| {name} | {_fmt(e['fps']['median'])} | {_runs(e['fps'])} | {_fmt(e['faces_per_s']['median'])} | "
            f"{_fmt(e['cpu_ms_per_frame']['median'])} | {_fmt(e['peak_rss_mib']['median'])} |"
        )
    if "naive" in res:
        n = res["naive"]
        lines.append(f"| naive loop | {_fmt(n['fps']['median'])} | {_runs(n['fps'])} | | | |")
        lines += [
            "",
            "Naive loop, share of its time: "
            + ", ".join(f"{k} {100 * v:.0f}%" for k, v in n["share_of_time"].items())
            + ".",
        ]
    return lines + [""]


def _live_table(res: dict) -> list[str]:
    d = res.get("live_detect", {})
    lines = [
        f"## Live mode ({res['live_clip']} replayed at 30 fps per stream, one worker; detector.live {d})",
        "",
        "| streams | p50 ms | p95 ms | p99 ms | max ms | p99 per window ms | published fps | dropped | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n, lv in res["live"].items():
        lines.append(
            f"| {n} | {lv['p50_ms']} | {lv['p95_ms']} | {lv['p99_ms']} | {lv['max_ms']} | {lv['p99_per_window_ms']} | "
            f"{lv['published_fps']} | {lv['dropped']} of {lv['decoded']} ({100 * lv['drop_rate']:.1f}%) | {lv['peak_rss_mib']} |"
        )
    return lines + [""]


def markdown(res: dict) -> str:
    """A human summary of `res` (the dictionary from `bench.run.run_benchmark`)."""
    m, s = res["machine"], res["settings"]
    lines = [
        "# affectstream benchmark",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; {m['os']}; Python {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items())
        + ".",
        f"Measured {m['utc']}; load average {m['loadavg_at_start']} at start, {m.get('loadavg_at_end')} at end.",
        f"Other busy processes at start: {'; '.join(m['busy_processes_at_start']) or 'none'}.",
        "",
        f"Settings: detector `{Path(s['detector_file']).name}` at {s['det_size']}, model `{Path(s['model_file']).name}` ({s.get('model_id', '?')}), "
        f"engine max batch {s['max_batch']}, {s['runs']} runs (medians), quick={s['quick']}.",
        "Workload (archive mode, every frame): "
        + ", ".join(f"{w['file']} ({w['frames']} frames, {w['size']}, {w['codec']})" for w in s["workload"])
        + ".",
        "",
        "## Headline",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    if "e2e_fps" in res:
        lines += [
            f"| end-to-end archive (frames/s) | {_fmt(res['e2e_fps'])} |",
            f"| end-to-end archive (faces/s) | {_fmt(res['e2e_faces_per_s'])} |",
            f"| slowest stage standalone ({res['slowest_stage']}, frames/s) | {_fmt(res['slowest_stage_fps'])} |",
            f"| e2e / slowest stage | {_fmt(res['ratios']['e2e_over_slowest_stage'], 3)} |",
            f"| e2e / one detector in a loop (detect_{s['det_size']}) | {_fmt(res['ratios']['e2e_over_single_detector'], 3)} |",
        ]
    if "shared_core_bound_fps" in res:
        lines += [
            f"| shared-core bound: cores / summed stage CPU per frame (frames/s) | {_fmt(res['shared_core_bound_fps'])} |",
            f"| e2e / shared-core bound (pipeline efficiency) | {_fmt(res['ratios']['e2e_over_shared_core_bound'], 3)} |",
            f"| shared-core bound / slowest stage (highest e2e / slowest stage possible here) | "
            f"{_fmt(res['ratios']['shared_core_bound_over_slowest_stage'], 3)} |",
        ]
    if "naive_fps" in res:
        lines += [
            f"| naive loop (frames/s) | {_fmt(res['naive_fps'])} |",
            f"| e2e / naive | {_fmt(res['ratios']['e2e_over_naive'], 2)} |",
        ]
        if "shared_core_bound_over_naive" in res["ratios"]:
            lines.append(
                f"| shared-core bound / naive (highest e2e / naive possible here) | "
                f"{_fmt(res['ratios']['shared_core_bound_over_naive'], 2)} |"
            )
    if "e2e_fps_detect_every_3" in res:
        cov = res["detect_every_3_coverage"]
        lines += [
            f"| e2e with detect_every 3 (frames/s) | {_fmt(res['e2e_fps_detect_every_3'])} |",
            f"| detect_every 3 / detect every frame | {_fmt(res['ratios']['detect_every_3_over_e2e'], 2)} |",
            f"| face-frames still covered with detect_every 3 | {100 * cov['face_frames']:.1f}% "
            f"(faces matched at IoU>=0.5: {100 * cov['faces_iou50']:.1f}%) |",
        ]
    if "e2e_fps_detector_auto" in res:
        lines.append(
            f"| e2e with detector input auto (frames/s) | {_fmt(res['e2e_fps_detector_auto'])} "
            f"(x{_fmt(res['ratios']['detector_auto_over_e2e'], 2)}) |"
        )
    if "live_p99_ms" in res:
        lines.append(f"| live p99, one 640x360 30 fps stream (ms) | {_fmt(res['live_p99_ms'])} |")
    if "peak_rss_mib" in res:
        lines += [f"| peak RSS of the worker process (MiB) | {_fmt(res['peak_rss_mib'])} |"]
    lines.append("")
    if "stages" in res:
        lines += _archive_tables(res)
    if "live" in res:
        lines += _live_table(res)
    if "publish_cost" in res:
        lines += _publish_table(res["publish_cost"])
    lines += ["## Checks", ""] + [f"- {k}: {'PASS' if v else 'FAIL'}" for k, v in res["checks"].items()]
    lines += ["", f"Total benchmark time: {res['duration_s']} s.", ""]
    return "\n".join(lines)


def write(res: dict, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    js, md = out_dir / "latest.json", out_dir / "latest.md"
    js.write_text(json.dumps(res, indent=2, sort_keys=False) + "\n")
    md.write_text(markdown(res))
    return js, md


def _live_label(live: dict) -> str:
    size = live["input_size"]
    return f"{size if isinstance(size, str) else 'x'.join(map(str, size))}_de{live['detect_every']}"


def _ratio(res: dict) -> str:
    bound = res.get("cpu_bound_cameras") or 0
    return f"{res['capacity'] / bound:.2f}" if bound else "n/a"


def capacity_markdown(res: dict) -> str:
    """A human summary of a capacity search (`bench.capacity.run_capacity`)."""
    m, live, t, st = res["machine"], res["live"], res["targets"], res["settings"]
    lines = [
        f"# Camera capacity of one member: **{res['capacity']}**{'' if res['complete'] else ' or more'} x "
        f"{res.get('width', 640)}x{res.get('height', 360)} 30 fps, {_ratio(res)} of its CPU bound",
        "",
        *(
            []
            if res.get("quiet", True)
            else ["**A busy machine at start (load >= 1.5): not comparable.**", ""]
        ),
        f"Machine: {m['cpu']}, {m['cores']} cores; measured {m['utc']}; load average {m['loadavg_at_start']} "
        f"at start, {m.get('loadavg_at_end')} at end.",
        f"Other busy processes at start: {'; '.join(m['busy_processes_at_start']) or 'none'}.",
        f"Cameras: {st['clip']} replayed live; detector.live input_size {live['input_size']}, "
        f"detect_every {live['detect_every']}; {st['runs']} run(s) of {st['seconds']} s per count, medians judged.",
        f"Targets: dropped <= {100 * t['max_drop_rate']:.0f}%, p99 <= {t['max_p99_ms']:.0f} ms.",
        "",
        "| cameras | met | dropped (median) | p99 ms (median) | published fps | worker CPU ms per frame | p99 per run ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        lines.append(
            f"| {r['cameras']} | {'yes' if r['ok'] else 'no'} | {100 * r['drop_rate']:.1f}% | {r['p99_ms']} | "
            f"{r['published_fps']} | {r['cpu_ms_per_frame']} | {', '.join(_fmt(x['p99_ms']) for x in r['runs'])} |"
        )
    lines += [
        "",
        f"CPU bound: {m['cores']} cores / ({res['rows'][-1]['cpu_ms_per_frame']} CPU ms per frame x 30 fps) = "
        f"**{res['cpu_bound_cameras']}** cameras with nothing else running (the last row's cost).",
    ]
    if "coverage" in res:
        c = res["coverage"]
        lines += [
            "",
            f"Coverage against detecting every frame at 640x640 (archive workload, {c['base_face_frames']} "
            f"face-frames, {c['base_faces']} faces): face-frames {100 * c['face_frames']:.2f}%, "
            f"faces at IoU >= 0.5 {100 * c['faces_iou50']:.2f}%.",
        ]
    lines += ["", f"Search time: {res['duration_s']} s.", ""]
    return "\n".join(lines)


def coverage_markdown(res: dict) -> str:
    """The coverage sweep (`bench capacity --coverage-sweep`) as a table."""
    m = res["machine"]
    lines = [
        f"Coverage against detecting every frame at 640x640; measured {m['utc']}, load {m['loadavg_at_start']}.",
        "",
        "| input | detect_every | face-frames | faces IoU>=0.5 | archive frames/s |",
        "|---|---|---|---|---|",
    ]
    for c in res["coverage"]:
        lines.append(
            f"| {c['input_size']} | {c['detect_every']} | {100 * c['face_frames']:.2f}% | "
            f"{100 * c['faces_iou50']:.2f}% | {c['archive_fps']} |"
        )
    return "\n".join(lines + [""])


def write_capacity_results(res: dict, out_dir: Path) -> Path:
    """`capacity_<width>x<height>_<input>_de<N>.{json,md}`: one file per resolution and live setting, so
    before and after sit side by side."""
    out_dir.mkdir(parents=True, exist_ok=True)
    js = out_dir / f"capacity_{res['width']}x{res['height']}_{_live_label(res['live'])}.json"
    js.write_text(json.dumps(res, indent=2) + "\n")
    js.with_suffix(".md").write_text(capacity_markdown(res))
    return js


def _publish_table(cost: dict) -> list[str]:
    """Redis's cost per published frame (bench/publish_cost.py) against issue 27's targets."""
    t = cost["targets"]
    lines = [
        f"## Redis cost per published frame (targets: <= {t['commands_per_frame']} commands, "
        f"<= {t['redis_cpu_us_per_frame']} us Redis CPU)",
        "",
        "| publishing | commands / frame | Redis CPU us / frame | bytes in / frame |",
        "|---|---|---|---|",
    ]
    for name, row in cost.items():
        if isinstance(row, dict) and "batch" in row:
            lines.append(
                f"| {name} | {row['commands_per_frame']} | {row['redis_cpu_us_per_frame']} | {row['bytes_in_per_frame']} |"
            )
    return [*lines, "", f"Redis memory per entry (one face): {cost['memory_bytes_per_entry']} bytes.", ""]
