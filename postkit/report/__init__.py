"""Self-contained HTML reports (inline CSS and SVG, no scripts) that reviewers can open offline."""
