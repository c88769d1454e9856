"""Records: incidents, people, sources, testimonies, claims and missing-person reports.

Every change is a signed ledger event; the records you query are a projection of those
events into SQL (an encrypted SQLite file by default, PostgreSQL on a team server).
"""
