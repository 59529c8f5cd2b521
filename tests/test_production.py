"""Served as in production: `manage.py check --deploy` passes under the production settings, the admin
keeps its static files with DEBUG off, and nginx in front of gunicorn (deploy/serve-production) keeps
slow clients from holding gunicorn's workers. Also the password reset when mail cannot be sent."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from django.core import mail

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DJANGO_ALLOWED_HOSTS": "annotate.example.org,127.0.0.1",
    "DJANGO_HTTPS": "1",
    "DJANGO_PROXY_SSL_HEADER": "1",
}


def machine_env(**extra: str) -> dict[str, str]:
    """This machine's environment without what the browser tests set for their own process."""
    env = {name: value for name, value in os.environ.items() if name != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    return {**env, **extra}


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=machine_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_passes_under_the_production_settings() -> None:
    done = run(["check", "--deploy", "--fail-level", "WARNING"], PRODUCTION)
    assert done.returncode == 0, done.stdout + done.stderr
    plain = run(["check", "--deploy", "--fail-level", "WARNING"], {**PRODUCTION, "DJANGO_HTTPS": "0"})
    assert plain.returncode != 0 and "SECURE_SSL_REDIRECT" in plain.stdout + plain.stderr


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str, timeout: float) -> tuple[int, float]:
    start = time.monotonic()
    request = urllib.request.Request(url, headers={"Host": "127.0.0.1", "X-Forwarded-Proto": "https"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback
        response.read()
        return response.status, time.monotonic() - start


def trickle(port: int, stop: threading.Event) -> None:
    """A client that sends its request one byte a second, as the slow clients of the issue did: a sync
    worker that accepted it waits for the headers' end, serving no one else meanwhile."""
    request = (
        b"POST /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded"
        b"\r\nContent-Length: 200\r\n\r\n" + b"u" * 200
    )
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        for byte in request:
            if stop.wait(1.0):
                return
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                return


@pytest.mark.slow
@pytest.mark.skipif(
    not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()),
    reason="nginx is not installed (make test and .ci/run install Debian's nginx-light)",
)
def test_nginx_keeps_four_slow_clients_from_delaying_anyone(tmp_path: Path) -> None:
    listen, app = free_port(), free_port()
    # Plain HTTP on loopback (no certificate here): HTTPS itself is check_deploy's part.
    env = {
        **machine_env(),
        **PRODUCTION,
        "DJANGO_HTTPS": "0",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "LISTEN": f"127.0.0.1:{listen}",
        "APP_PORT": str(app),
        "RUN_DIR": str(tmp_path / "nginx"),
        "GUNICORN_WORKERS": "4",
        "STATIC_ROOT": str(tmp_path / "static"),
        "PY": sys.executable,
    }
    log = tmp_path / "serve.log"
    server = subprocess.Popen(
        ["bash", "deploy/serve-production"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    stop = threading.Event()
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                get(f"http://127.0.0.1:{listen}/accounts/login/", 60)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail(f"the production server did not start: {log.read_text()[-3000:]}")
                time.sleep(0.5)
        # Each gunicorn worker imports the app on its first request: warm all four before timing anything.
        warm = [threading.Thread(target=get, args=(f"http://127.0.0.1:{app}/accounts/login/", 120)) for _ in range(12)]
        for thread in warm:
            thread.start()
        for thread in warm:
            thread.join()
        # The admin's static files are there with DEBUG off.
        assert get(f"http://127.0.0.1:{listen}/static/admin/css/base.css", 5)[0] == 200
        for target in (app, listen):  # gunicorn alone first: the slow clients hold its four workers
            clients = [threading.Thread(target=trickle, args=(target, stop), daemon=True) for _ in range(4)]
            for client in clients:
                client.start()
            time.sleep(2.5)
            try:
                status, seconds = get(f"http://127.0.0.1:{target}/accounts/login/", 3)
            except OSError:  # timed out
                status, seconds = 0, 3.0
            stop.set()
            for client in clients:
                client.join(5)
            stop.clear()
            print(
                f"{'gunicorn alone' if target == app else 'behind nginx'}: a normal request with four slow "
                f"clients took {seconds:.2f} s (status {status or 'timed out'})"
            )
            if target == app:
                assert seconds > 1.0, "without nginx the slow clients should have delayed the request"
                time.sleep(1.0)  # let gunicorn's workers drop the abandoned connections
            else:
                assert status == 200 and seconds < 1.0, f"behind nginx the request took {seconds:.2f} s"
    finally:
        stop.set()
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(20)


@pytest.mark.django_db
def test_a_password_reset_says_when_mail_cannot_be_sent(client, settings, django_user_model) -> None:
    django_user_model.objects.create_user("ann", email="ann@example.org", password="pw-pw-pw-42")
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2  # nobody listens
    refused = client.post("/accounts/password_reset/", {"email": "ann@example.org"})
    assert refused.status_code == 503 and "could not be sent" in refused.content.decode()
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    sent = client.post("/accounts/password_reset/", {"email": "ann@example.org"})
    assert sent.status_code == 302 and len(mail.outbox) == 1


@pytest.mark.slow
def test_make_serves_development_server_is_not_stalled_by_six_slow_clients(tmp_path: Path) -> None:
    """`make serve` (Django's threaded development server: a thread a connection) for trying things out
    on one machine: six clients sending a byte a second delay no one."""
    port = free_port()
    env = {**machine_env(), "DJANGO_DEBUG": "1", "DJANGO_ALLOWED_HOSTS": "127.0.0.1"}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], env)
    log = tmp_path / "serve.log"
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    stop = threading.Event()
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                get(f"http://127.0.0.1:{port}/accounts/login/", 30)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail(f"make serve's server did not start: {log.read_text()[-3000:]}")
                time.sleep(0.5)
        clients = [threading.Thread(target=trickle, args=(port, stop), daemon=True) for _ in range(6)]
        for client in clients:
            client.start()
        time.sleep(2.5)
        status, seconds = get(f"http://127.0.0.1:{port}/accounts/login/", 5)
        print(f"make serve: a normal request with six slow clients took {seconds:.2f} s")
        assert status == 200 and seconds < 1.0, f"the request took {seconds:.2f} s"
    finally:
        stop.set()
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(20)
