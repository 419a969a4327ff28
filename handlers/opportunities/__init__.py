"""Opportunities (deals): stage rules, amounts, revert. No chat commands of its own yet; notes, leads and escalations use the service."""
