"""Compare the catalog with the index and repair the difference (what the beat job runs)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from recommender.indexing import index_reconcile


class Command(BaseCommand):
    help = "Embed products without a vector; remove stale index entries; add missing ones."

    def handle(self, *args, **options) -> None:
        report = index_reconcile()
        self.stdout.write(
            f"Embedded {report.embedded} (failed {report.failed}); index: "
            f"{report.missing} missing added, {report.stale} stale replaced, "
            f"{report.removed} removed; version {report.version}."
        )
        for problem in report.problems:
            self.stdout.write(self.style.WARNING(problem))
