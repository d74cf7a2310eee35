"""KPI reports: the sections of a report and their table, CSV and HTML (inline SVG charts) forms."""
