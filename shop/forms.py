"""Shopper forms."""

from __future__ import annotations

from django import forms

from embeddings import ImageRejected
from embeddings.preprocess import parse_box
from shop.images import decode_uploaded_file


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
            return decode_uploaded_file(self.cleaned_data["photo"])
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
