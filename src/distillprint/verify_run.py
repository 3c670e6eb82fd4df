"""``distillprint verify``: recompute a report's evidence digests from the store."""

from __future__ import annotations

from pathlib import Path

from distillprint.errors import InputError
from distillprint.report.load import read_report
from distillprint.report.manifest import DigestKey, VerifyResult, response_digest, verify_manifest
from distillprint.report.schema import ResponseDigest
from distillprint.store import ResponseStore


def verify_report(report_path: Path, store_path: Path) -> VerifyResult:
    report = read_report(report_path)
    if not store_path.exists():
        raise InputError("no such store", path=store_path)
    manifest = report.manifest
    wanted = {DigestKey(d.model, d.probe_id, d.sample_index) for d in manifest.responses}
    labels = {entry.label for entry in manifest.models}
    current: list[ResponseDigest] = []
    with ResponseStore(store_path) as store:
        for record in store.responses(probe_set=manifest.probe_set):
            label = record.identity.label
            key = DigestKey(label, record.probe_id, record.sample_index)
            # Only the evidence the report used: answers collected later are not a change.
            if label in labels and key in wanted:
                current.append(
                    response_digest(label, record.probe_id, record.sample_index, record.response)
                )
    return verify_manifest(manifest, current)
