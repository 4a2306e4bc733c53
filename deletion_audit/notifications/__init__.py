"""Notifications: recipients per case and role with escalation steps, Chinese-first
templates, and an outbox sent by the sender job over SMTP and signed webhooks."""
