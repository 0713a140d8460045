"""The memory table of docs/gpus.md (the paper's settings on CodeGen-Mono, against common device
sizes) and the command line that prints it, or one model's plan under the project's
parameters: ``python -m ilf_kedro.models.memory_plan --table``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import pandas as pd

from ... import parameters
from ...infra.project_parameters import add_arguments, load_parameters
from .estimate import load_config, model_shape
from .plan import PlanInputs, build_plan, plan_run

DESCRIPTION = "Memory plan of the GPU stages, from the model's configuration alone (no weights)."

TABLE_MODELS = ("Salesforce/codegen-350M-mono", "Salesforce/codegen-2B-mono")
TABLE_MODELS += ("Salesforce/codegen-6B-mono",)
TABLE_DEVICES_GIB = (24, 48, 80, 141)


def paper_table(
    models: Sequence[str] = TABLE_MODELS, devices: Sequence[float] = TABLE_DEVICES_GIB
) -> pd.DataFrame:
    """Need per device of each GPU stage at the paper's settings (30 samples of 512 new
    tokens after 1024-token prompts; fine-tune at 1x1024 tokens, bf16, checkpointing),
    and whether it fits devices of each size."""
    sampling = {"batch_size": 30, "max_new_tokens": 512}
    base_ft = {"per_device_batch_size": 1, "max_seq_length": 1024}
    settings = [
        ("sampling", None),
        ("full", {}),
        ("full", {"num_processes": 2, "distributed": "fsdp"}),
        ("full", {"num_processes": 4, "distributed": "fsdp"}),
        ("lora", {"strategy": "lora", "lora": {"r": 16}}),
    ]
    rows = []
    for spec in models:
        shape = model_shape(load_config(spec), name=spec)
        for _name, extra in settings:
            ft = {**base_ft, **(extra or {})}
            inputs = PlanInputs(
                sampling=parameters.Sampling(**sampling),
                finetune=parameters.Finetune(**ft),
                device="cuda",
                dtype="bfloat16",
            )
            plan = build_plan(shape, inputs, device_gib=None)
            stage = plan.stages[0] if extra is None else plan.stages[1]
            row = {
                "model": spec.split("/")[-1],
                "params (B)": round(shape.n_params / 1e9, 2),
                "stage": stage.stage,
                "setting": stage.setting,
                "GiB per device": round(stage.need_gib, 1),
            }
            row.update({f"{d} GB": "yes" if stage.need_gib <= d else "no" for d in devices})
            rows.append(row)
    return pd.DataFrame(rows)


def markdown_table(frame: pd.DataFrame) -> str:
    """``frame`` as a GitHub Markdown table (no extra dependency)."""
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |"]
    lines.append("|" + "|".join("---" for _ in frame.columns) + "|")
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m ilf_kedro.models.memory_plan``: docs/gpus.md's table, or one model's plan
    under the project's parameters (``--env``, ``--params``)."""
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument("--table", action="store_true", help="print the table of docs/gpus.md")
    parser.add_argument("--model", help="plan one model (hub id, directory or tiny-random)")
    parser.add_argument("--device-memory-gib", type=float, default=None)
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.table:
        print(markdown_table(paper_table()))
    if args.model:
        params = load_parameters(args.env, args.params)
        plan = plan_run(
            args.model,
            {**params["model"], "device": "cuda"},
            params["sampling"],
            params["finetune"],
            {"device_memory_gib": args.device_memory_gib},
        )
        print(plan.to_frame().T.to_string())
