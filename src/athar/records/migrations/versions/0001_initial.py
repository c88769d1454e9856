"""The first records projection schema, with each backend's own full-text index.

The tables are spelled out here (not taken from athar.records.store) so that this
revision creates the same schema forever, whatever later revisions change.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ROWID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "meta", sa.Column("key", sa.Text, primary_key=True), sa.Column("value", sa.Text)
    )
    op.create_table(
        "records",
        sa.Column("rid", _ROWID, primary_key=True, autoincrement=False),
        sa.Column("id", sa.Text, nullable=False, unique=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("title", sa.Text),
        sa.Column("date_start", sa.Text),
        sa.Column("date_end", sa.Text),
        sa.Column("place", sa.Text),
        sa.Column("admin_area", sa.Text),
        sa.Column("lat", sa.Float),
        sa.Column("lon", sa.Float),
        sa.Column("status", sa.Text),
        sa.Column("parent", sa.Text),
        sa.Column("created", sa.Text, nullable=False),
        sa.Column("updated", sa.Text, nullable=False),
        sa.Column("author", sa.Text, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("clocks", sa.Text, nullable=False),
    )
    op.create_index("records_type_date", "records", ["type", "date_start"])
    op.create_index("records_parent", "records", ["parent"])
    op.create_index("records_status", "records", ["type", "status"])
    # Tables whose rows are found by their key alone are clustered on it (SQLite's
    # WITHOUT ROWID): one B-tree to write instead of a table and an index.
    op.create_table(
        "terms",
        sa.Column("rid", _ROWID, primary_key=True),
        sa.Column("vocabulary", sa.Text, primary_key=True),
        sa.Column("term", sa.Text, primary_key=True),
        sqlite_with_rowid=False,
    )
    op.create_index("terms_lookup", "terms", ["vocabulary", "term", "rid"])
    op.create_table(
        "links",
        sa.Column("src", sa.Text, primary_key=True),
        sa.Column("rel", sa.Text, primary_key=True),
        sa.Column("dst", sa.Text, primary_key=True),
        sa.Column("present", sa.Boolean, nullable=False),
        sa.Column("attrs", sa.Text, nullable=False),
        sa.Column("clock", sa.Text, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("links_dst", "links", ["dst"])
    op.create_table(
        "history",
        sa.Column("record", sa.Text, primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("clock", sa.Text, nullable=False),
        sa.Column("device", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "vocab_terms",
        sa.Column("vocabulary", sa.Text, primary_key=True),
        sa.Column("term", sa.Text, primary_key=True),
        sa.Column("ar", sa.Text, nullable=False),
        sa.Column("en", sa.Text, nullable=False),
        sa.Column("clock", sa.Text, nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE TABLE records_fts (rid BIGINT PRIMARY KEY, tsv TSVECTOR NOT NULL)")
        op.execute("CREATE INDEX records_fts_tsv ON records_fts USING GIN (tsv)")
    else:
        # Terms are folded by athar.records.textnorm before they get here, identically for
        # both backends; detail=none keeps the index small (no phrase queries needed).
        op.execute(
            "CREATE VIRTUAL TABLE records_fts USING fts5("
            "terms, content='', contentless_delete=1, detail=none, "
            "tokenize='unicode61 remove_diacritics 0')"
        )


def downgrade() -> None:
    for table in ("records_fts", "vocab_terms", "history", "links", "terms", "records", "meta"):
        op.drop_table(table)
