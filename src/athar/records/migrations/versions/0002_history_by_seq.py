"""History rows keyed by ledger position first, with an index by record.

Keyed (record, seq), every applied event inserted at a random place in the table: a
rebuild of 1,000,000 events spent a tenth of its time on those scattered page writes.
Keyed (seq, record), history grows at its end like the ledger it indexes, and the lookup
by record (`athar history`) goes through an index that a rebuild creates once, sorted.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_COLUMNS = "record, seq, clock, device, kind"


def _create(name: str, first: str, second: str) -> None:
    op.create_table(
        name,
        sa.Column(first, sa.BigInteger if first == "seq" else sa.Text, primary_key=True),
        sa.Column(second, sa.BigInteger if second == "seq" else sa.Text, primary_key=True),
        sa.Column("clock", sa.Text, nullable=False),
        sa.Column("device", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sqlite_with_rowid=False,
    )


def _swap(first: str, second: str) -> None:
    _create("history_new", first, second)
    op.execute(f"INSERT INTO history_new ({_COLUMNS}) SELECT {_COLUMNS} FROM history")  # noqa: S608
    op.drop_table("history")
    op.rename_table("history_new", "history")


def upgrade() -> None:
    _swap("seq", "record")
    op.create_index("history_record", "history", ["record", "seq"])


def downgrade() -> None:
    op.drop_index("history_record", "history")
    _swap("record", "seq")
