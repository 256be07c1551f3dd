"""The attacker's own process: the threat model as a process boundary (see ``host`` and ``worker``)."""
