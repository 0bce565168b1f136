"""Theft reports (接警登记) and the cases filed on them (立案): intake, decision, filing, links,
solving and closing; the public stolen check."""
