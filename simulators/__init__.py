"""Protocol-level simulators of remote services (Claude API, Google OAuth and Sheets).

Tests and the demo reach them through the real SDKs by their endpoint settings.
"""
