"""Procedurally generated demo catalogue: garments drawn with OpenCV, studio shots and phone snapshots.

Nothing here is a real product: every row and photo it creates is marked ``is_synthetic``.
"""
