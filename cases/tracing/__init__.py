"""Tracing a bike: where it is, where it went and stayed, who may look (the duty behind each look),
and the record and review of every look."""
