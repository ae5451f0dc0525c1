"""The smart mirror: a shopper-facing API and kiosk page on the same match service (docs/mirror.md).

A Django app of its own inside ``matching`` (label ``mirror``): it owns device keys, fitting-room
shortlists and a colour cache, with its own migrations, while the matching it relies on stays in
``matching.services``.
"""
