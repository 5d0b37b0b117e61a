"""Long-running soak scripts (run by hand, not collected by pytest); short versions run in tests/reader."""
