"""Each API key goes to one host only.

A key variable such as ``OPENAI_API_KEY`` is the default of every ``openai:`` spec, so a
teacher or background model at another base URL (or at the default, api.openai.com) would
otherwise be sent the suspect's key. Before anything is sent, a run checks that every key
variable in use reaches a single host; loopback addresses count as one host, this machine.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from urllib.parse import urlsplit

from distillprint.backends._http import is_loopback
from distillprint.backends.base import Backend
from distillprint.errors import InputError


def _host(base_url: str) -> str:
    return "this machine (loopback)" if is_loopback(base_url) else urlsplit(base_url).hostname or ""


def check_keys_stay_with_their_hosts(backends: Iterable[Backend], how_to_split: str) -> None:
    """Refuse a run that would send one key variable's value to several hosts.

    ``how_to_split`` names the options that give a model its own key variable."""
    hosts: dict[str, set[str]] = defaultdict(set)
    for backend in backends:
        if backend.sends_key_from is not None:
            hosts[backend.sends_key_from].add(_host(backend.identity.base_url))
    for variable, where in sorted(hosts.items()):
        if len(where) > 1:
            raise InputError(
                f"the key in {variable} would be sent to {len(where)} hosts "
                f"({', '.join(sorted(where))}); a key goes to one host only: give the others "
                f"their own key variable ({how_to_split}; a loopback server needs none: "
                "name an unset variable) or point them at one host",
                field=variable,
            )
