"""`depth-estimation demo`: the whole system on one machine, measured, for a bounded time.

`command` runs it; `sources` says what feeds the node, `model` which model it runs, `graph` is
the demo's own ROS node, `report` measures throughput, latency and accuracy and writes the
images, plots and report.md.
"""
