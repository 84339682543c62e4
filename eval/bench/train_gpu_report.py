"""The GPU training benchmark's report: MFU and speed-up ratios, and the markdown table
(eval/bench/results/train_bench_gpu.md). The measuring is in eval/bench/train_gpu.py."""

from __future__ import annotations

from typing import Any


def add_ratios(report: dict[str, Any]) -> None:
    peak, measured = report["spec_peak_tflops"], report["matmul_peak_tflops"]
    ok = {r["variant"]: r for r in report["runs"] if "error" not in r}
    for r in ok.values():
        r["mfu"] = round(r["useful_tflops"] / peak, 3) if peak else None
        r["mfu_vs_matmul"] = round(r["useful_tflops"] / measured, 3)
    hf = [r["useful_tokens_per_s"] for n, r in ok.items() if n.startswith("hf-peft")]
    if hf and "imprint" in ok:
        report["speedup_vs_best_hf_peft"] = round(ok["imprint"]["useful_tokens_per_s"] / max(hf), 2)
    if "hf-peft" in ok and "imprint-ckpt" in ok:
        report["speedup_ckpt_vs_hf_peft_ckpt"] = round(
            ok["imprint-ckpt"]["useful_tokens_per_s"] / ok["hf-peft"]["useful_tokens_per_s"], 2
        )


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.1%}"


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# GPU training benchmark ({report['measured_at']})",
        "",
        f"{report['device']}, torch {report['torch']}: LoRA r={report['lora_r']} on a random Phi-4-shaped "
        f"model ({report['layers']} layers, {report.get('params_b')}B parameters), ~{report['step_tokens']} "
        f"useful tokens per step. Dense bf16 peak {report['spec_peak_tflops']} TFLOP/s; an "
        f"{report['matmul_n']}³ bf16 matmul measured {report['matmul_peak_tflops']} TFLOP/s in this run. "
        "Work = what the answer-only LoRA step needs (module doc); MFU = work / time / peak.",
        "",
        "| variant | packing | loss | kernels | ckpt | padding | useful tok/s | useful TFLOP/s | MFU "
        "| MFU vs matmul | peak GiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["runs"]:
        loss = "answer" if r["imprint_loss"] else "hf"
        head = f"| {r['variant']} | {r['packing']} | {loss} | {r['kernels']} | "
        head += f"{r['ckpt']}{' 4-bit' if r.get('4bit') else ''} | "
        if "error" in r:
            lines.append(head + f"{r['error']} | | | | | |")
            continue
        lines.append(
            head
            + f"{r['padding']:.0%} | {r['useful_tokens_per_s']} | {r['useful_tflops']} | {_pct(r['mfu'])} | "
            f"{_pct(r['mfu_vs_matmul'])} | {r['peak_gpu_mem_gib']} |"
        )
    lines.append("")
    for key in ("speedup_vs_best_hf_peft", "speedup_ckpt_vs_hf_peft_ckpt"):
        if key in report:
            lines.append(f"- {key.replace('_', ' ')}: {report[key]}×")
    if "liger_parity" in report:
        p = report["liger_parity"]
        lines.append(
            f"- the same packed batch, answer-only loss: PyTorch {p['loss_pytorch']} vs Liger "
            f"{p['loss_liger']} "
            f"({p['correct_pytorch']} vs {p['correct_liger']} of {p['tokens']} tokens right)"
        )
    return "\n".join(lines) + "\n"
