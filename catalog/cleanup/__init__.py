"""Catalogue cleanup: scans that find duplicates, wrong labels, bad photos and gaps, and the fixes for them.

Modules: ``photos`` (per-photo signatures), ``duplicates`` (hash banding, pair verification, clusters),
``scans`` (the scans over the database), ``services`` (findings, merge and relabel with their undo),
``selectors`` (reads, SKU resolution), ``tasks`` and ``signals`` (background and incremental runs),
``admin`` and ``evaluation`` (``manage.py evaluate_cleanup``).
"""
