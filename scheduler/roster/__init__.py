"""Roster import: CSV bytes in, validated entries and every problem out."""

from scheduler.roster.parser import RosterEntry, RosterReport, parse_roster

__all__ = ["RosterEntry", "RosterReport", "parse_roster"]
