"""The catalogue team's dashboard in the admin: intake volume, matcher quality, the review queue, models."""
