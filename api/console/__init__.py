"""The support console: server-rendered pages for agents, partners and customers (issue 11)."""
