"""Shopper and merchant forms."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from embeddings import ImageRejected
from embeddings.preprocess import parse_box
from recommender.embedding import query_decode_side
from shop.images import decode_uploaded_file
from shop.models import Category


class PhotoSearchForm(forms.Form):
    photo = forms.FileField(
        error_messages={
            "required": "Choose a photo of a shoe to search with.",
            "empty": "The file is empty. Upload a JPEG, PNG, WebP or GIF photo.",
        },
    )
    category = forms.SlugField(required=False)
    box = forms.CharField(required=False, max_length=100)

    def clean_photo(self):
        try:
            return decode_uploaded_file(self.cleaned_data["photo"], query_decode_side())
        except ImageRejected as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_box(self):
        text = self.cleaned_data.get("box", "").strip()
        if not text:
            return None
        try:
            return parse_box(text)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


class ProductEditForm(forms.Form):
    """A merchant's changes to one product; the photo is optional (keep the current one)."""

    title = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    category = forms.ModelChoiceField(
        queryset=Category.objects.all(),
        error_messages={"invalid_choice": "Choose one of the listed categories."},
    )
    price = forms.DecimalField(
        min_value=Decimal("0"),
        max_digits=10,
        decimal_places=2,
        error_messages={"invalid": "Enter a price such as 59.90 (a dot before the cents)."},
    )
    currency = forms.RegexField(
        regex=r"^[A-Z]{3}$",
        max_length=3,
        initial="EUR",
        error_messages={"invalid": "Use a three-letter currency code such as EUR or USD."},
    )
    stock = forms.IntegerField(
        min_value=0,
        max_value=10_000_000,
        error_messages={"min_value": "Stock cannot be negative; use 0 for out of stock."},
    )
    is_active = forms.BooleanField(required=False, label="Shown in the shop")
    photo = forms.FileField(
        required=False,
        error_messages={"empty": "The file is empty. Upload a JPEG, PNG, WebP or GIF photo."},
    )

    def clean_photo(self):
        upload = self.cleaned_data.get("photo")
        if not upload:
            return None
        try:
            return decode_uploaded_file(upload)
        except ImageRejected as exc:
            raise forms.ValidationError(str(exc)) from None


class ProductCreateForm(ProductEditForm):
    """A new product: the same fields, plus its SKU and a photo, both required."""

    sku = forms.RegexField(
        regex=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        max_length=64,
        error_messages={
            "invalid": "Use up to 64 letters, digits, dots, dashes or underscores for the SKU."
        },
    )
    field_order = ["sku"]

    def __init__(self, *args, merchant=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.merchant = merchant
        self.fields["photo"].required = True
        self.fields["photo"].error_messages["required"] = "Choose a photo of the product."

    def clean_sku(self) -> str:
        sku = self.cleaned_data["sku"]
        if self.merchant and self.merchant.products.filter(sku=sku).exists():
            raise forms.ValidationError(
                f"You already have a product with SKU {sku}; edit that one instead."
            )
        return sku
