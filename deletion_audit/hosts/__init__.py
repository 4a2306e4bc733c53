"""The server side of agents: enrollment, signed requests, heartbeats, challenges, tasks."""
