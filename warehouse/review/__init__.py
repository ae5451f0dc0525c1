"""The catalogue team's review queue: snapshots that need a human, and the labelled pairs their decisions make."""
