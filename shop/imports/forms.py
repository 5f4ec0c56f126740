"""The catalog import form: checks the upload's shape now; rows are checked by the job."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from embeddings.images import human_size
from shop.imports.archives import ImportRejected, csv_entries, open_zip
from shop.imports.rows import decode_csv, read_records
from shop.imports.services import zip_limits
from shop.models import Category

# Reading the header is enough to refuse a CSV that is not UTF-8 or lacks columns.
CSV_SNIFF_BYTES = 64 * 1024


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Any number of files in one field."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": "image/*"}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None) -> list[UploadedFile]:
        files = data if isinstance(data, list | tuple) else [data] if data else []
        return [super(MultipleFileField, self).clean(f, initial) for f in files]


class CatalogImportForm(forms.Form):
    csv_file = forms.FileField(
        required=False,
        label="Catalog CSV",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )
    zip_file = forms.FileField(
        required=False,
        label="ZIP of photos (may hold the CSV too)",
        widget=forms.ClearableFileInput(attrs={"accept": ".zip,application/zip"}),
    )
    photos = MultipleFileField(required=False, label="Photos (choose many at once)")
    category = forms.ModelChoiceField(
        Category.objects.all(), required=False, to_field_name="slug", empty_label="Choose…"
    )
    price = forms.DecimalField(required=False, min_value=0, max_digits=10, decimal_places=2)
    stock = forms.IntegerField(required=False, min_value=0, initial=1)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.zip_has_csv = False

    def clean_csv_file(self) -> UploadedFile | None:
        upload = self._within_limit("csv_file")
        if upload is not None:
            head = upload.read(CSV_SNIFF_BYTES)
            upload.seek(0)
            self._checked(lambda: _check_csv_head(head))
        return upload

    def clean_zip_file(self) -> UploadedFile | None:
        upload = self._within_limit("zip_file")
        if upload is not None:
            self.zip_has_csv = self._checked(lambda: _zip_has_csv(upload))
            upload.seek(0)
        return upload

    def clean_photos(self) -> list[UploadedFile]:
        photos = self.cleaned_data["photos"]
        limit = settings.LOOKALIKE_MAX_UPLOAD_BYTES
        for photo in photos:
            if photo.size > limit:
                raise forms.ValidationError(
                    f"{photo.name} is {human_size(photo.size)}; photos may be up to "
                    f"{human_size(limit)}. Resize it and upload again."
                )
        return photos

    def clean(self) -> dict:
        data = super().clean()
        csv_file, zip_file, photos = (data.get(n) for n in ("csv_file", "zip_file", "photos"))
        if self.errors:
            return data
        if not (csv_file or zip_file or photos):
            raise forms.ValidationError(
                "Choose a catalog CSV with a ZIP of its photos, a ZIP holding both, or photos."
            )
        if zip_file and photos:
            raise forms.ValidationError(
                "Upload the photos either in a ZIP or one by one, not both."
            )
        if csv_file and zip_file and self.zip_has_csv:
            raise forms.ValidationError(
                "The ZIP holds a CSV too. Upload one catalog CSV: either inside the ZIP or "
                "beside it."
            )
        has_csv = csv_file or (zip_file and self.zip_has_csv)
        if not has_csv and (data.get("category") is None or data.get("price") is None):
            raise forms.ValidationError(
                "Photos without a CSV become products named after their files: choose their "
                "category and price."
            )
        return data

    def _within_limit(self, field: str) -> UploadedFile | None:
        upload = self.cleaned_data.get(field)
        limit = settings.LOOKALIKE_IMPORT_MAX_UPLOAD_BYTES
        if upload is not None and upload.size > limit:
            raise forms.ValidationError(
                f"{upload.name} is {human_size(upload.size)}; the limit is {human_size(limit)}. "
                "Split the catalog and import it in parts."
            )
        return upload

    @staticmethod
    def _checked(check):
        try:
            return check()
        except ImportRejected as exc:
            raise forms.ValidationError(str(exc)) from None


def _whole_lines(head: bytes) -> bytes:
    # The sniffed bytes may end inside a multi-byte character: keep complete lines only.
    if len(head) < CSV_SNIFF_BYTES:
        return head
    return head[: head.rfind(b"\n") + 1] or head


def _check_csv_head(head: bytes) -> None:
    text = decode_csv(_whole_lines(head))
    read_records(text.split("\n", 1)[0], max_rows=1)


def _zip_has_csv(upload: UploadedFile) -> bool:
    with open_zip(upload, zip_limits()) as archive:
        entries = csv_entries(archive)
        if len(entries) > 1:
            names = ", ".join(entry.filename for entry in entries)
            raise ImportRejected(f"The ZIP holds several CSV files ({names}). Keep one.")
        if entries:
            with archive.open(entries[0]) as handle:
                _check_csv_head(handle.read(CSV_SNIFF_BYTES))
    return bool(entries)
