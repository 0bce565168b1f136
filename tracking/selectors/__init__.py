"""Reads of tracking's tables for the apps above it: a bike's positions, tracks and stops, the
terminals near a place, the last positions and the alarms. Every SQL statement on tracking_ping,
tracking_pingcell, tracking_lastposition, tracking_terminalinstallation and tracking_alarm that
another app needs is here; the callers (cases, web, stats) add their own rows by id.

No access rule and no audit here: cases.tracing.access decides who may look and records every look.
"""
