"""Create a partner API key for a merchant's catalog and print it (it is shown only once)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from recommender.keys import api_key_create
from shop.models import Merchant


class Command(BaseCommand):
    help = "Create an API key for a merchant's catalog and print it once."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--merchant", help="The merchant's slug (optional with one merchant).")
        parser.add_argument("--name", default="command line", help="What the key is for.")
        parser.add_argument(
            "--origin", action="append", default=[], help="An allowed browser origin (repeatable)."
        )

    def handle(self, *args, merchant: str | None, name: str, origin: list[str], **options) -> None:
        owner = self._merchant(merchant)
        try:
            new = api_key_create(merchant=owner, name=name, allowed_origins="\n".join(origin))
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write(f"Key '{name}' for {owner.name}; copy it now, it is not shown again:")
        self.stdout.write(new.full_key)

    def _merchant(self, slug: str | None) -> Merchant:
        if slug:
            merchant = Merchant.objects.filter(slug=slug).first()
            if merchant is None:
                raise CommandError(f"There is no merchant {slug!r}; see the admin for slugs.")
            return merchant
        merchants = list(Merchant.objects.all()[:2])
        if len(merchants) != 1:
            raise CommandError(
                "Name the merchant with --merchant <slug>"
                + (
                    " (there is none yet: run `python manage.py demo --no-serve`)."
                    if not merchants
                    else "."
                )
            )
        return merchants[0]
