"""Shopper forms."""

from __future__ import annotations

from django import forms
from django.conf import settings

from embeddings import ImageRejected
from shop.images import decode_upload


class PhotoSearchForm(forms.Form):
    photo = forms.FileField(
        error_messages={
            "required": "Choose a photo of a shoe to search with.",
            "empty": "The file is empty. Upload a JPEG, PNG, WebP or GIF photo.",
        },
    )
    category = forms.SlugField(required=False)

    def clean_photo(self):
        upload = self.cleaned_data["photo"]
        if upload.size > settings.LOOKALIKE_MAX_UPLOAD_BYTES:
            limit = settings.LOOKALIKE_MAX_UPLOAD_BYTES / 1e6
            raise forms.ValidationError(
                f"The file is {upload.size / 1e6:.1f} MB; the limit is {limit:.0f} MB. "
                "Upload a smaller JPEG, PNG, WebP or GIF photo."
            )
        try:
            return decode_upload(upload.read())
        except ImageRejected as exc:
            raise forms.ValidationError(str(exc)) from None
