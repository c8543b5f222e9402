"""Reports: self-contained HTML with embedded figures."""
