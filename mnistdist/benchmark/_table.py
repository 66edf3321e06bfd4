"""The benchmark's printed table: each search's time, its GEMM limit, halving, the growth with
the images, and the final models' kind of search against FAISS."""

from __future__ import annotations


def _params(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items()))


def _cpu(row: dict) -> str:
    return f"{row['cpu_seconds']:.1f}" if "cpu_seconds" in row else "-"


def _rows_table(rows: list[dict]) -> list[str]:
    base = rows[0]["seconds"]
    lines = [
        f"{'method':<50} {'seconds':>9} {'vs first':>9} {'CPU s':>7}  "
        "best params (mean CV accuracy)"
    ]
    for row in rows:
        lines.append(
            f"{row['method']:<50} {row['seconds']:>9.1f} {base / row['seconds']:>8.2f}x "
            f"{_cpu(row):>7}  {_params(row['best_params'])} ({row['best_score']:.4f})"
        )
    return lines


def _s(seconds: float) -> str:
    # Small data's limits are milliseconds: a fixed decimal would show them as 0.0.
    return f"{seconds:.1f} s" if seconds >= 1 else f"{seconds:.2g} s"


def _limit_line(label: str, phase: dict, gflops: float) -> str:
    return (
        f"neighbours, {label}: {_s(phase['seconds_neighbors'])} = "
        f"{phase['gemm_limit_multiple']:.2f}x the GEMM limit "
        f"({_s(phase['gemm_limit_s'])} at {gflops:.0f} GFLOP/s)"
    )


def _gemm_lines(report: dict) -> list[str]:
    gemm = report["gemm"]
    m, d, n = gemm["shape"]
    gflops = gemm["gflops"]
    lines = [
        f"GEMM limit: float32 {m} x {d} times {d} x {n} on {gemm['threads']} worker threads "
        f"at once, BLAS single-threaded: {gflops:.1f} GFLOP/s"
    ]
    for row in report.get("rows", []):
        if "gemm_limit_s" in row:
            lines.append(_limit_line(row["method"], row, gflops))
    for row in report.get("halving", {}).get("rows", []):
        for r in row.get("rounds", []):
            label = (
                f"{row['method']} round {r['iteration']} "
                f"({r['n_candidates']} candidates, {r['n_resources']} images)"
            )
            lines.append(_limit_line(label, r, gflops))
    for row in report.get("final_searches", []):
        against = f"against {row['n_reference']}"
        lines.append(
            _limit_line(f"the final models' search {against}, in full", row["full"], gflops)
        )
        if "bound" in row:
            lines.append(_limit_line(f"the same {against}, lower bound", row["bound"], gflops))
    return lines


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _last_round_line(halving: dict) -> str:
    if not halving["last_round_all_images"]:
        return "last round on a subsample of the images: its scores are not compared"
    if "last_round_max_images_differ" not in halving:
        return "last round, all images: no candidate kept by both, so no scores to compare"
    return (
        f"last round, all images on the same folds: "
        f"{_n(halving['last_round_common_candidates'], 'candidate')} kept by both, CV scores "
        f"apart by at most {_n(halving['last_round_max_images_differ'], 'validation image')} "
        f"a fold (max |diff| {halving['last_round_scores_max_abs_diff']:.2g}; ties in distance "
        f"fall by row order, which scikit-learn's subsampler shuffles)"
    )


def _halving_lines(halving: dict) -> list[str]:
    lines = ["", f"successive halving (factor {halving['factor']}, resource: training images)"]
    lines += _rows_table(halving["rows"])
    sizes = ", ".join(
        f"{c} on {n}" for c, n in zip(halving["n_candidates"], halving["n_resources"], strict=True)
    )
    lines.append(f"mnistdist's rounds (candidates on images): {sizes}")
    if "speedup" not in halving:
        return lines
    lines.append(f"speed-up of mnistdist's halving over scikit-learn's: {halving['speedup']:.1f}x")
    lines.append(f"same rounds as scikit-learn's: {'yes' if halving['schedule_agree'] else 'NO'}")
    lines.append(_last_round_line(halving))
    lines.append(f"same candidate chosen: {'yes' if halving['best_agree'] else 'no'}")
    lines.append(
        "not compared: the earlier rounds' scores (scikit-learn subsamples each fold at "
        "random, mnistdist splits nested stratified subsets)"
    )
    return lines


def _mb(memory: dict) -> str:
    """Each worker process's peak memory in MB, and in brackets how far it rose above what
    the process held as the phase began (one number where the workers share a process)."""
    peaks = {w["pid"]: (w["peak_bytes"], w["start_bytes"]) for w in memory.values()}
    return "/".join(f"{p / 2**20:.0f} (+{(p - s) / 2**20:.0f})" for p, s in peaks.values()) or "-"


def _growth_lines(growth: dict) -> list[str]:
    lines = [
        "",
        "growth of the grid search with the training images (peak memory: each worker "
        "process's, MB)",
        f"{'images':>8} {'seconds':>8} {'neighbours':>11} {'CPU s':>7} "
        f"{'peak MB (+rise)':>16}  how",
    ]
    for row in growth["rows"]:
        lines.append(
            f"{row['n_train']:>8} {row['seconds']:>8.2f} {row['seconds_neighbors']:>11.2f} "
            f"{_cpu(row):>7} {_mb(row['memory']):>16}  {row['method']}"
        )
    if "exponent" in growth:
        lines.append(
            f"fitted exponent of seconds against images: {growth['exponent']:.2f} "
            f"(neighbours alone: {growth['exponent_neighbors']:.2f})"
        )
    return lines


def _final_lines(row: dict) -> list[str]:
    full = row["full"]["seconds_neighbors"]
    lines = [
        "",
        f"the final models' kind of search: {row['n_query']} held-out images against "
        f"{row['n_reference']}, k = {row['k']}",
        f"  mnistdist, exact in full: {full:.2f} s (CPU {_cpu(row['full'])} s, "
        f"peak {_mb(row['full']['memory'])} MB)",
    ]
    if "bound" in row:
        bound = row["bound"]["seconds_neighbors"]
        lines.append(
            f"  mnistdist, lower bound on {row['n_components']} principal components: "
            f"{bound:.2f} s (CPU {_cpu(row['bound'])} s, peak {_mb(row['bound']['memory'])} MB), "
            f"{1 - row['exact_pairs_share']:.2%} of the distances skipped, "
            f"{row['speedup']:.2f}x faster than in full, same neighbours: "
            f"{'yes' if row['same_neighbors'] else 'NO'}"
        )
    if peer := row.get("faiss"):
        ratios = f"speed-up over FAISS: exact {peer['seconds'] / full:.2f}x"
        if "bound" in row:
            ratios += f", lower bound {peer['seconds'] / row['bound']['seconds_neighbors']:.2f}x"
        ties = (
            ""
            if peer["rows_differ"] == 0
            else (" (differing only by ties)" if peer["only_ties"] else " (NOT only by ties)")
        )
        lines.append(
            f"  FAISS {peer['version']} IndexFlatL2, {peer['threads']} threads: "
            f"{peer['seconds']:.2f} s (CPU {_cpu(peer)} s); {ratios}; same neighbour sets for "
            f"{peer['same_sets']:.2%} of the queries{ties}"
        )
    return lines


def format_table(report: dict) -> str:
    """The benchmark as plain-text tables, and each neighbour phase against its GEMM limit."""
    lines = []
    if "rows" in report:
        lines += _rows_table(report["rows"])
        if "speedup" in report:
            lines.append(f"speed-up of mnistdist over the book's way: {report['speedup']:.1f}x")
            lines.append(
                f"CV scores agree (max |diff| {report['scores_max_abs_diff']:.2g}): "
                f"{'yes' if report['scores_agree'] else 'NO'}"
            )
        lines.append(
            f"cost of the full grid over a single candidate: {report['candidate_cost_ratio']:.2f}x"
        )
        peaks = [f"{r['method']} {_mb(r['memory'])}" for r in report["rows"] if "memory" in r]
        lines.append(f"peak memory, MB (+rise during the search): {'; '.join(peaks)}")
    if "halving" in report:
        lines += _halving_lines(report["halving"])
    if "growth" in report:
        lines += _growth_lines(report["growth"])
    for row in report.get("final_searches", []):
        lines += _final_lines(row)
    return "\n".join([*lines, "", *_gemm_lines(report)])
