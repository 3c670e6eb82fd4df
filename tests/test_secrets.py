from __future__ import annotations

import logging

import pytest

from distillprint.errors import InputError
from distillprint.secrets import (
    REDACTED,
    RedactingFilter,
    Secret,
    known_secrets,
    read_secret,
    redact,
    redact_values,
)


def test_redact_known_values_and_key_shapes() -> None:
    text = "key=my-own-secret-value, other=sk-proj-AbCdEf123456789, hf=hf_abcdefghijklmnopqrstu"
    cleaned = redact(text, ["my-own-secret-value"])
    assert cleaned == f"key={REDACTED}, other={REDACTED}, hf={REDACTED}"
    assert redact("a short one: abc", ["abc", None, ""]) == "a short one: abc"  # too short
    # as a URL carries it, in either case of hex digit
    encoded = redact_values("url ?k=tok%2FSEC%2bRET%3D123 and tok/SEC+RET=123", ["tok/SEC+RET=123"])
    assert encoded == f"url ?k={REDACTED} and {REDACTED}"


def test_secret_hides_itself() -> None:
    secret = Secret("sk-canary-hidden-999")
    assert (
        "canary" not in repr(secret) and "canary" not in str(secret) and "canary" not in f"{secret}"
    )
    assert secret.reveal() == "sk-canary-hidden-999"
    assert redact("x sk-canary-hidden-999 y", [secret]) == f"x {REDACTED} y"


def test_read_and_known_secrets() -> None:
    env = {"OPENAI_API_KEY": "  value-123456 ", "EMPTY_API_KEY": " ", "HOME": "/home/x-123456"}
    assert read_secret("OPENAI_API_KEY", env).reveal() == "value-123456"  # type: ignore[union-attr]
    assert read_secret("EMPTY_API_KEY", env) is None and read_secret("NOPE", env) is None
    assert known_secrets(env) == ["  value-123456 "]
    # every credential a user may hold for the services a run talks to, not only API keys
    named = {"HF_TOKEN": "hf-token-value", "AWS_SECRET": "aws-secret-value",
             "DB_PASSWORD": "db-password-value", "ANTHROPIC_APIKEY": "anthropic-value",
             "TOKENIZERS_PARALLELISM": "false-ish-value"}
    assert sorted(known_secrets(named)) == [
        "anthropic-value", "aws-secret-value", "db-password-value", "hf-token-value"]


def test_a_key_read_from_a_variable_of_any_name_is_known(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MY_VLLM_CREDENTIAL", "vllm-credential-8472")
    assert "vllm-credential-8472" not in known_secrets()  # not named like a key
    assert read_secret("MY_VLLM_CREDENTIAL") is not None  # as --api-key-env reads it
    assert "vllm-credential-8472" in known_secrets()
    assert "vllm-credential-8472" not in redact("failed: vllm-credential-8472", known_secrets())


def test_redacting_filter_covers_messages_args_and_tracebacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("distillprint.test_secrets")
    caplog.handler.addFilter(RedactingFilter(["canary-secret-42"]))
    with caplog.at_level(logging.INFO, logger=logger.name):
        logger.info("sending %s", "canary-secret-42")
        try:
            raise RuntimeError("failed with canary-secret-42")
        except RuntimeError:
            logger.exception("boom")
    assert "canary-secret-42" not in caplog.text
    assert f"sending {REDACTED}" in caplog.text
    assert f"RuntimeError: failed with {REDACTED}" in caplog.text


ENTRY_SECRET = "entry-point-canary-7f3a9c1e5b"


@pytest.mark.parametrize(
    "error",
    [
        InputError(f"bad base URL https://u:{ENTRY_SECRET}@host/v1"),
        OSError(13, "Permission denied", f"/keys/{ENTRY_SECRET}.txt"),
        RuntimeError(f"unexpected reply echoing {ENTRY_SECRET}"),
    ],
    ids=["user error", "os error", "internal error"],
)
def test_the_command_line_entry_point_never_prints_a_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], error: Exception
) -> None:
    import distillprint.cli as cli

    monkeypatch.setenv("SUSPECT_API_KEY", ENTRY_SECRET)

    def fail() -> None:
        raise error

    monkeypatch.setattr(cli, "app", fail)
    with pytest.raises(SystemExit):
        cli.main()
    shown = capsys.readouterr().err
    assert ENTRY_SECRET not in shown and "[REDACTED]" in shown


def test_the_entry_points_log_handler_redacts_keys_from_every_library(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import distillprint.cli as cli

    monkeypatch.setenv("SUSPECT_API_KEY", ENTRY_SECRET)
    root, ours = logging.getLogger(), logging.getLogger("distillprint")
    monkeypatch.setattr(root, "handlers", [])  # as in a fresh process: basicConfig installs
    monkeypatch.setattr(root, "level", root.level)  # restored after the test, as are these
    monkeypatch.setattr(ours, "level", ours.level)
    cli._configure_logging()
    logging.getLogger("httpx").warning("GET https://api.example/v1?key=%s", ENTRY_SECRET)
    shown = capsys.readouterr().err
    assert "GET https://api.example/v1?key=" in shown and ENTRY_SECRET not in shown


def test_a_key_variable_may_serve_one_host_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from distillprint.backends import Backend, BackendOptions, create_backend
    from distillprint.backends.keys import check_keys_stay_with_their_hosts

    monkeypatch.setenv("OPENAI_API_KEY", "sk-one-key-123456")
    monkeypatch.setenv("OTHER_KEY", "sk-other-key-12345")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)

    def backend(url: str | None, key_env: str | None = None) -> Backend:
        return create_backend("openai:m", BackendOptions(base_url=url, api_key_env=key_env))

    local = [backend("http://127.0.0.1:8001/v1"), backend("http://localhost:8002/v1")]
    check_keys_stay_with_their_hosts(local, "")  # both on this machine
    remote = backend("https://api.vendor.example/v1", "OTHER_KEY")
    check_keys_stay_with_their_hosts([*local, remote], "")  # a key of its own
    with pytest.raises(InputError, match=r"OPENAI_API_KEY would be sent to 2 hosts \(api\.openai"):
        check_keys_stay_with_their_hosts([*local, backend(None)], "--api-key-env")
    monkeypatch.delenv("OPENAI_API_KEY")
    keyless = backend("http://127.0.0.1:8003/v1")  # a loopback server may run without one
    check_keys_stay_with_their_hosts([keyless, remote], "")


def test_a_base_url_error_never_shows_a_key_and_a_key_shaped_host_is_a_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from distillprint.backends._http import normalise_base_url

    monkeypatch.setenv("OPENAI_API_KEY", "Zq8v7XwP2mK9rT4yL6nB")
    with pytest.raises(InputError, match="Port out of range") as info:
        normalise_base_url("http://127.0.0.1:99999/Zq8v7XwP2mK9rT4yL6nB/v1")
    assert "Zq8v7XwP2mK9rT4yL6nB" not in str(info.value)
    assert normalise_base_url("https://sk-llmgateway.corp.example/v1").startswith("https://sk-")
    with pytest.raises(InputError, match="carries a key"):
        normalise_base_url("http://127.0.0.1:8000/Zq8v7XwP2mK9rT4yL6nB/v1")


def test_a_placeholder_key_is_no_secret_but_a_short_key_of_ones_own_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Ollama takes the key "ollama": the word stays in what models say, and in its host's name
    from distillprint.backends._http import normalise_base_url

    monkeypatch.setenv("OPENAI_API_KEY", "Ollama")
    assert normalise_base_url("http://ollama:11434/v1") == "http://ollama:11434/v1"
    assert redact("served via ollama serve", known_secrets()) == "served via ollama serve"
    monkeypatch.setenv("OPENAI_API_KEY", "mysecret123")  # a short key of one's own is a key
    assert redact("echoed MySecret123", known_secrets()) == f"echoed {REDACTED}"
