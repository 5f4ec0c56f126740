"""Catalog import: a merchant's CSV, ZIP or photos become products, as a job with a report.

``archives`` opens uploads safely, ``rows`` reads and checks CSV rows (both plain Python, no
database), ``services`` runs a job, ``selectors`` reads jobs and their progress.
"""
