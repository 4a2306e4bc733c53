"""The scheduler: the leader's lease, ``tick(now)`` over the due instants stored in the
domain (agent liveness, obligation deadlines, escalation steps), and the jobs' runner."""
