"""Reports: the audit as data, and the formats that render it."""
