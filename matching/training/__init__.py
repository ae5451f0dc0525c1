"""Metric learning for the embedder (``manage.py train_embedder``; docs/matching.md, "Trained embedder").

``data`` gathers labelled groups from every source through one function, ``views`` makes the training views
(the runtime view plus phone-like synthesis), ``trainer`` caches the frozen front of the backbone and trains the
rest with InfoNCE, ``promotion`` decides whether a trained version replaces the active one.
"""
