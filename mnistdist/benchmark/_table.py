"""The benchmark's printed table: each search's time, its GEMM limit, halving and the bound."""

from __future__ import annotations


def _params(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items()))


def _rows_table(rows: list[dict]) -> list[str]:
    base = rows[0]["seconds"]
    lines = [f"{'method':<50} {'seconds':>9} {'vs first':>9}  best params (mean CV accuracy)"]
    for row in rows:
        lines.append(
            f"{row['method']:<50} {row['seconds']:>9.1f} {base / row['seconds']:>8.2f}x  "
            f"{_params(row['best_params'])} ({row['best_score']:.4f})"
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
    if bound := report.get("lower_bound"):
        lines.append(_limit_line("the final models' search, in full", bound["full"], gflops))
        lines.append(_limit_line("the same, lower bound", bound["bound"], gflops))
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


def _bound_lines(bound: dict) -> list[str]:
    skipped = 1 - bound["exact_pairs_share"]
    return [
        "",
        f"the final models' kind of search: {bound['n_query']} held-out images against "
        f"{bound['n_reference']} (the others and their shifts), k = {bound['k']}",
        f"lower bound on {bound['n_components']} principal components: {skipped:.2%} of the "
        f"distances skipped, {bound['speedup']:.2f}x faster than in full, same neighbours: "
        f"{'yes' if bound['same_neighbors'] else 'NO'}",
    ]


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
    if "halving" in report:
        lines += _halving_lines(report["halving"])
    if "lower_bound" in report:
        lines += _bound_lines(report["lower_bound"])
    return "\n".join([*lines, "", *_gemm_lines(report)])
