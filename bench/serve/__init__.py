"""Sieve's targets behind HTTP, and Sieve's attacks against any HTTP endpoint.

``app`` serves one target of a grid (``bench serve``); ``codec`` reads and writes images on the
wire; ``guards`` makes the access defenses real per API key; ``target`` picks and loads the
served target; ``client`` is the :class:`~bench.serve.client.HttpOracle` attacks query through;
``remote`` runs a cell against a URL (``bench attack --url``).
"""
