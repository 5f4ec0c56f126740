"""Counts, model, version and drift of the serving index."""

from __future__ import annotations

import json
from dataclasses import asdict

from django.core.management.base import BaseCommand

from recommender.index_kinds import IndexSpec
from recommender.indexing import index_status


class Command(BaseCommand):
    help = "Show the serving index against the catalog: counts, model, version and drift."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", dest="as_json", action="store_true", help="Print JSON.")

    def handle(self, *args, as_json: bool = False, **options) -> None:
        status = index_status()
        if as_json:
            data = {
                **asdict(status),
                "drift": status.drift,
                "upgrade_pending": status.upgrade_pending,
            }
            self.stdout.write(_dumps(data))
            return
        lines = [
            f"Index version:     {status.version if status.version is not None else 'none'}",
            f"Serving model:     {status.model_id or 'none'}",
            f"Configured model:  {status.configured_model_id}"
            + ("  (upgrade pending: run reindex)" if status.upgrade_pending else ""),
            f"Index kind:        {_kind(status)}",
            f"Written at:        {status.created_at or '-'}",
            f"Indexed products:  {status.indexed}",
            f"Active products:   {status.active_products} "
            f"({status.with_vector} with a vector, {status.pending} pending, "
            f"{status.failed} failed)",
            f"Drift:             {status.drift} "
            f"({status.missing} missing from the index, {status.stale} stale entries)",
        ]
        self.stdout.write("\n".join(lines))


def _kind(status) -> str:
    """The serving kind with its parameters, and the configured choice."""
    if status.index_kind is None:
        return f"none (configured: {status.configured_kind})"
    spec = IndexSpec(status.index_kind, status.index_params)
    return f"{spec.describe()}  (configured: {status.configured_kind})"


def _dumps(data: dict) -> str:
    return json.dumps(data, indent=2)
