"""``distillprint verify``: recompute a report's evidence digests from the store."""

from __future__ import annotations

from pathlib import Path

from distillprint.report.load import parse_any_report, read_report_text
from distillprint.report.manifest import (
    DigestKey,
    VerifyResult,
    report_hash,
    response_digest,
    verify_manifest,
)
from distillprint.report.schema import ResponseDigest
from distillprint.report.seal import page_intact
from distillprint.store import ResponseStore


def verify_report(report_path: Path, store_path: Path) -> VerifyResult:
    text = read_report_text(report_path)  # once: the seal and the data are of one text
    report = parse_any_report(text, source=report_path)
    manifest = report.manifest
    wanted = {DigestKey(d.model, d.probe_id, d.sample_index): d.sha256
              for d in manifest.responses}
    # one model name may be stored from several endpoints: the one the report asked counts
    endpoints = {entry.label: entry.base_url for entry in manifest.models}
    current: list[ResponseDigest] = []
    rekeyed: list[ResponseDigest] = []
    with ResponseStore(store_path, read_only=True) as store:
        # every probe set's rows: a run reuses answers stored under another set's name when
        # its prompts are the same (a renamed copy of a set, a second log of the same prompts)
        for record in store.responses():
            label = record.identity.label
            key = DigestKey(label, record.probe_id, record.sample_index)
            endpoint = endpoints.get(label, "")
            # Only the evidence the report used: answers collected later are not a change.
            if key in wanted and endpoint in (None, record.base_url):
                digest = response_digest(label, record.probe_id, record.sample_index,
                                         record.response)
                current.append(digest)
                # the row that is the report's evidence (others under its key, of other
                # settings or sets, are no part of this report)
                if digest.sha256 == wanted[key] and not record.key_matches:
                    rekeyed.append(digest)
    result = verify_manifest(manifest, current)
    if rekeyed:
        result = result.model_copy(update={"rekeyed": rekeyed, "ok": False})
    # A report without its hash (or a page without its seal) cannot show that its verdict is
    # as written: whether the hash was removed or the report predates it (schema < 1.3), the
    # report's own claim about its version could be edited too, so neither passes.
    page = page_intact(text)  # None: no seal (or a JSON report, which cannot hold one)
    unsealed = page is None and text.lstrip().startswith("<")
    if unsealed:
        page = False
    if page is not None:
        result = result.model_copy(update={"page_intact": page, "ok": result.ok and page})
    intact = report.report_sha256 is not None and report_hash(report) == report.report_sha256
    return result.model_copy(update={"report_intact": intact, "ok": result.ok and intact,
                                     "unhashed": report.report_sha256 is None,
                                     "unsealed": unsealed})
