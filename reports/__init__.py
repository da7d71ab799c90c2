"""reports: pure functions from results tables (pandas) to figures and tables. No torch, no Ray."""
