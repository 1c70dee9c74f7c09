"""A time-compressed production run on a simulated clock, through the real components.

Seed 003 simulated 12 months of production with data drift (shifting feature means) and concept
drift (labels flipped for high-value transactions). Here every simulated day's transactions come
from the traffic sampler (drifted from the scenario's onsets: ``traffic``), go through the serving
app in-process (the ASGI app, its micro-batching service and the durable spool log, with the
request time taken from the simulated clock: ``world``), and are committed to the lake by the
spool writer. Their real outcomes are confirmed with the label simulator's delays and ingested as
label events once the clock passes their confirmation time (``outcomes``). Every
``monitor_every_days`` a monitoring run checks drift and mature performance and alerts to the
simulation's alert log; the retrain policy may then retrain, and a promoted challenger is
hot-reloaded by the serving process's model holder before the next day's traffic (``run``). The
month table and the verdict (``months``), the chart (``chart``) and the typed results
(``results``) close the run; ``readings`` is where the results of the services are read.

A simulation lives in its own home (default ``<home>/simulations/<scenario>``, recreated each
run) with embedded lake and MLflow, so it never mixes with real predictions.
"""
