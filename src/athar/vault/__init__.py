"""The evidence vault: encrypted content-addressed blobs and a signed, append-only ledger."""
