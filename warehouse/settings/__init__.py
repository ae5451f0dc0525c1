"""Stockmatch settings, read from the environment (12-factor) and split by topic.

``DJANGO_ENV=production`` switches on the production profile, which must pass
``manage.py check --deploy``; anything else is development with safe local defaults.
"""
from .base import *  # noqa: F401,F403
from .database import *  # noqa: F401,F403
from .env import DJANGO_ENV
from .intake import *  # noqa: F401,F403
from .mirror import *  # noqa: F401,F403
from .ml import *  # noqa: F401,F403
from .tasks import *  # noqa: F401,F403

if DJANGO_ENV == "production":
    from .production import *  # noqa: F401,F403
