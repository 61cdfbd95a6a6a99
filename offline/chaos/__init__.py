"""The fault campaign (``make chaos``): every path under injected faults, counted.

:mod:`offline.chaos.plan` draws the requests and their faults,
:mod:`offline.chaos.campaign` sends them through an offline stack of its own and
watches what comes back, and :mod:`offline.chaos.tally` counts the outcomes.
"""
