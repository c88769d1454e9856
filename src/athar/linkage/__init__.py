"""Linking records of the same person across lists (issue 7).

Name handling lives in `athar.linkage.names`; its helpers in `arabic` (cleaning and
normalisation), `translit` (cross-script keys) and `nameparse` (full names into parts).
Linkage is built on it: `lists` (CSV lists in), `features` (the comparison table),
`model` (Splink: comparisons, blocking, training), `clusters` (pairs into people, with
reviewers' decisions), `service` (all of it as one call), `files` (clusters, review
queue and decisions files), `vault` (person records and signed decisions), `trace`
(family tracing), `synth` and `evaluate` (measuring against known truth).
"""
