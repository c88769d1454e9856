"""The match and review thresholds every face uses by default, in a module of their own so
the CLI can show them in its help without importing Splink (a second of start-up)."""

MATCH_AT = 0.3  # pairs at or above are joined (see docs/linkage.md for the choice)
REVIEW_FROM = 0.2  # pairs from here up to MATCH_AT go to the review queue
REVIEW_REFUSED = 0.9  # strong pairs the clustering kept apart, from here: to review
