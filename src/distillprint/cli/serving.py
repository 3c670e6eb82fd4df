"""``distillprint serve``: any backend behind an OpenAI-compatible endpoint."""

from __future__ import annotations

from typing import Annotated

import typer

from distillprint.cli.common import seconds_option


def serve(
    model: Annotated[str, typer.Option("--model", help="Any model spec to serve.")],
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free one).")] = 8000,
    max_batch: Annotated[int | None, typer.Option(min=1, help="Requests per model call.")] = None,
    batch_window_ms: Annotated[float, typer.Option(
        min=0.0, help="Wait to fill a batch, ms.")] = 5.0,
    concurrency: Annotated[int | None, typer.Option(
        min=1, help="Concurrent model calls.")] = None,
    served_model_name: Annotated[
        str | None,
        typer.Option(help="The name clients must ask for (listed in /v1/models); a request "
                     "for another model gets 404. Default: the backend's model name."),
    ] = None,
    api_key_env: Annotated[
        str | None, typer.Option(help="Require the key held in this environment variable.")
    ] = None,
    base_url: Annotated[str | None, typer.Option(help="Upstream base URL (openai:).")] = None,
    timeout: Annotated[float, typer.Option(
        help="Upstream timeout, seconds.", callback=seconds_option)] = 120.0,
    fault_script: Annotated[
        str,
        typer.Option(help="Faults in order, e.g. 429x3,500,reset. Kinds: 429, 500, 502, 503, "
                     "reset, stall, truncated, cut, non-json, empty."),
    ] = "",
    fault_rate: Annotated[
        list[str] | None, typer.Option(help="Random fault rate, e.g. 429=0.1 (repeatable).")
    ] = None,
    fault_retry_after: Annotated[str, typer.Option(help="Retry-After on 429s.")] = "1",
    fault_stall_s: Annotated[float, typer.Option(
        min=0.0, help="Length of a stall fault.")] = 30.0,
    fault_latency_ms: Annotated[float, typer.Option(
        min=0.0, help="Latency added to every reply.")] = 0.0,
    fault_seed: Annotated[int, typer.Option(help="Seed for random faults.")] = 0,
) -> None:
    """Serve any backend as an OpenAI-compatible /v1/chat/completions endpoint."""
    from distillprint.backends import BackendOptions
    from distillprint.serve import ServeSettings, run_server
    from distillprint.serve_faults import fault_plan_from_cli

    run_server(
        model,
        backend_options=BackendOptions(base_url=base_url, timeout_s=timeout, batch_size=max_batch),
        host=host,
        port=port,
        settings=ServeSettings(
            max_batch=max_batch, batch_window_s=batch_window_ms / 1000, concurrency=concurrency,
            served_model_name=served_model_name, api_key_env=api_key_env,
        ),
        fault_plan=fault_plan_from_cli(
            fault_script, fault_rate or [], retry_after=fault_retry_after,
            stall_s=fault_stall_s, latency_ms=fault_latency_ms, seed=fault_seed,
        ),
    )
