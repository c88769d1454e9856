"""Linking records of the same person across lists (issue 7).

Name handling lives in `athar.linkage.names`; its helpers in `arabic` (cleaning and
normalisation), `translit` (cross-script keys) and `nameparse` (full names into parts).
"""
