"""The Runs dock: every run in the studio's home, compared side by side."""
