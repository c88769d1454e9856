"""Moving evidence between devices: bundles, receipts, membership (issue 5)."""
