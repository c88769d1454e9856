"""The first records projection schema, with each backend's own full-text index.

Revision ID: 0001
Revises:
"""

from alembic import op

from athar.records import store

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    store.metadata.create_all(bind)
    if bind.dialect.name == "postgresql":
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
    op.execute("DROP TABLE records_fts")
    store.metadata.drop_all(op.get_bind())
