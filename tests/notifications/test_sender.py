"""The sender job against real receivers: an SMTP server process (aiosmtpd) and a webhook
endpoint checking Standard Webhooks signatures; retries on the transport clock; refused
destinations — on both engines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from deletion_audit.config import Settings
from deletion_audit.errors import Unprocessable
from deletion_audit.models import OutboxMessage, Recipient
from deletion_audit.notifications import service as notifications
from deletion_audit.notifications.destinations import DestinationRefused, check_url
from deletion_audit.notifications.sender import send_pending
from deletion_audit.scheduling.tick import tick
from tests.conftest import T0
from tests.support.log import LogEnv
from tests.support.receivers import SECRET, smtp_server, webhook_receiver
from tests.support.world import World, add_agent

LATE = T0 + timedelta(minutes=15)


def settings_for(env: LogEnv, *, environment: str = "development",
                 smtp_port: int | None = None) -> Settings:
    return Settings(environment=environment,  # type: ignore[arg-type]
                    data_dir=env.settings.data_dir, db_url=env.settings.db_url,
                    smtp_host="127.0.0.1" if smtp_port else None, smtp_port=smtp_port or 25,
                    smtp_from="notify@audit.example")


def recipient(env: LogEnv, world: World, channel: str, address: str,
              secret: str | None = None) -> None:
    with env.db.write() as session:
        notifications.add_recipient(session, case_id=world.case_id, role="prosecutor",
                                    channel=channel, address=address, secret=secret,
                                    created_by=None, development=True, now=env.clock.now())


def late_agent(env: LogEnv, world: World) -> list[OutboxMessage]:
    add_agent(world)
    tick(env.db, service_key=env.ctx.keys.service_key, now=LATE)
    return rows(env)


def rows(env: LogEnv) -> list[OutboxMessage]:
    with env.db.read() as session:
        return list(session.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars())


def real_now() -> datetime:
    return datetime.now(UTC)


class TestEmail:
    def test_delivered_over_smtp_with_its_stable_id(self, env: LogEnv, world: World,
                                                    tmp_path: Path) -> None:
        recipient(env, world, "email", "prosecutor@procuratorate.example")
        [queued] = late_agent(env, world)
        with smtp_server(tmp_path) as smtp:
            report = send_pending(env.db, settings=settings_for(env, smtp_port=smtp.port),
                                  now=real_now())
            assert report.sent == [queued.message_id]
            [mail] = smtp.messages()
        assert mail["Message-ID"] == f"<{queued.message_id}@audit.example>"
        assert mail["To"] == "prosecutor@procuratorate.example"
        body = mail.get_payload(decode=True).decode("utf-8")
        assert body.index("代理程序") < body.index("The agent")
        assert "3 个心跳周期" in body
        [row] = rows(env)
        assert row.sent_at is not None
        assert row.attempts == 1

    def test_retried_after_the_server_was_down(self, env: LogEnv, world: World,
                                               tmp_path: Path) -> None:
        recipient(env, world, "email", "prosecutor@procuratorate.example")
        [queued] = late_agent(env, world)
        with smtp_server(tmp_path, start=False) as smtp:
            settings = settings_for(env, smtp_port=smtp.port)
            first = real_now()
            assert send_pending(env.db, settings=settings, now=first).retrying == [
                queued.message_id]
            [row] = rows(env)
            assert (row.attempts, row.sent_at) == (1, None)
            assert row.next_attempt_at == first + timedelta(seconds=5)
            smtp.start()
            # Not before its backoff, then once.
            assert send_pending(env.db, settings=settings, now=first).sent == []
            later = first + timedelta(seconds=5)
            assert send_pending(env.db, settings=settings, now=later).sent == [
                queued.message_id]
            assert send_pending(env.db, settings=settings, now=later).sent == []
            assert len(smtp.messages()) == 1


    def test_one_message_that_cannot_be_built_does_not_stall_the_others(
            self, env: LogEnv, world: World, tmp_path: Path) -> None:
        # A row written past the recipient checks (a header break in the address).
        with env.db.write() as session:
            session.add(Recipient(case_id=world.case_id, role="prosecutor", channel="email",
                                  address="a@example.org\nBcc: x@example.org", step=0,
                                  after_hours=0, created_at=T0))
        recipient(env, world, "email", "prosecutor@procuratorate.example")
        broken, good = late_agent(env, world)
        with smtp_server(tmp_path) as smtp:
            report = send_pending(env.db, settings=settings_for(env, smtp_port=smtp.port),
                                  now=real_now())
            assert report.retrying == [broken.message_id]
            assert report.sent == [good.message_id]
            assert len(smtp.messages()) == 1
        assert (rows(env)[0].last_error or "").startswith("ValueError")


class TestWebhook:
    def test_signed_per_standard_webhooks(self, env: LogEnv, world: World) -> None:
        with webhook_receiver() as (url, received):
            recipient(env, world, "webhook", url, SECRET)
            [queued] = late_agent(env, world)
            report = send_pending(env.db, settings=settings_for(env), now=real_now())
            assert report.sent == [queued.message_id]
        assert received.refused == []
        [(message_id, payload)] = received.received
        assert message_id == queued.message_id
        assert payload["type"] == "judgment.late"
        assert payload["data"]["caseId"] == world.case_id
        assert payload["data"]["subject"].startswith("【迟报】")

    def test_a_wrong_secret_is_refused_by_the_receiver(self, env: LogEnv,
                                                      world: World) -> None:
        with webhook_receiver() as (url, received):
            recipient(env, world, "webhook", url, "whsec_" + "A" * 32)
            late_agent(env, world)
            report = send_pending(env.db, settings=settings_for(env), now=real_now())
        assert len(report.retrying) == 1
        assert received.received == []
        assert received.refused == ["No matching signature found"]

    def test_loopback_refused_at_send_outside_development(self, env: LogEnv,
                                                          world: World) -> None:
        with webhook_receiver() as (url, received):
            recipient(env, world, "webhook", url, SECRET)  # registered in development
            late_agent(env, world)
            report = send_pending(env.db, settings=settings_for(env, environment="test"),
                                  now=real_now())
            assert len(report.failed) == 1
            assert received.received == []
        [row] = rows(env)
        assert row.failed_at is not None
        assert "outside development" in (row.last_error or "")
        # A refused destination is not retried.
        later = real_now() + timedelta(days=1)
        assert send_pending(env.db, settings=settings_for(env), now=later).sent == []


NON_PUBLIC = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8",
              "169.254.0.0/16", "100.64.0.0/10", "::1/128", "fc00::/7", "fe80::/10"]


class TestDestinations:
    @given(st.sampled_from(NON_PUBLIC).flatmap(lambda net: st.ip_addresses(network=net)))
    def test_no_non_public_address_passes(self, address: IPv4Address | IPv6Address) -> None:
        host = f"[{address}]" if address.version == 6 else str(address)
        with pytest.raises(DestinationRefused):
            check_url(f"https://{host}:8443/hook", development=False)

    @pytest.mark.parametrize("url", [
        "https://127.0.0.1/hook", "https://10.1.2.3/hook", "https://192.168.0.9/x",
        "https://[::1]/x", "https://169.254.169.254/latest", "https://localhost/x",
        "http://hooks.example.com/x", "https://user:pw@hooks.example.com/x", "ftp://x/y",
    ])
    def test_refused_outside_development(self, url: str) -> None:
        with pytest.raises(DestinationRefused):
            check_url(url, development=False)

    def test_public_https_and_development_loopback_accepted(self) -> None:
        assert check_url("https://hooks.example.com/x", development=False) == (
            "hooks.example.com", 443)
        assert check_url("http://127.0.0.1:8080/x", development=True) == ("127.0.0.1", 8080)

    def test_recipient_checks(self, env: LogEnv, world: World) -> None:
        cases = [
            {"channel": "webhook", "address": "https://10.0.0.1/x", "secret": SECRET},
            {"channel": "webhook", "address": "https://hooks.example.com/x", "secret": None},
            {"channel": "email", "address": "not-an-address"},
            {"channel": "sms", "address": "13800000000"},
        ]
        for case in cases:
            with env.db.write() as session, pytest.raises(Unprocessable):
                notifications.add_recipient(session, case_id=world.case_id, role="prosecutor",
                                            created_by=None, development=False,
                                            now=env.clock.now(), **case)  # type: ignore[arg-type]
