"""Campaign reports: KPIs, charts, exports."""
