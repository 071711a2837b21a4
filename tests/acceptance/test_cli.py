"""The command line as scripts and deployments use it: compose commands, tenant create, relay dev."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import jsonschema
import pytest
import yaml

from relay.cli import build_parser
from tests.receiver import Receiver
from tests.support import REPO, RelayProcess, free_port, relay_env, wait_for_http, wait_until


def relay_commands() -> list[tuple[str, list[str]]]:
    """Every `relay …` command that compose.yaml and the Dockerfile run."""
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    found = [(name, service["command"]) for name, service in compose["services"].items() if "build" in service]
    cmd = re.search(r"^CMD (\[.*\])$", (REPO / "Dockerfile").read_text(), re.MULTILINE)
    assert cmd, "the Dockerfile has no exec-form CMD"
    found.append(("Dockerfile", json.loads(cmd.group(1))))
    return found


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    # tests/data/compose-spec.json: the official schema (compose-spec/compose-spec, schema/compose-spec.json).
    schema = json.loads((REPO / "tests" / "data" / "compose-spec.json").read_text())
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=str)
    assert not errors, [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


def test_compose_has_the_documented_services() -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    services = compose["services"]
    built = {name: service for name, service in services.items() if "build" in service}
    assert set(built) == {"migrate", "api", "worker"}
    assert len({service["image"] for service in built.values()}) == 1, "the services built from . share one image"
    assert services["api"]["restart"] == services["worker"]["restart"] == "unless-stopped"
    assert "/health/ready" in " ".join(services["api"]["healthcheck"]["test"])
    assert {"postgres", "migrate", "api", "worker"} <= set(services)
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["environment"]["DATABASE_URL"].startswith("postgresql://")
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"] and services["postgres"]["healthcheck"]
    assert services["prometheus"]["profiles"] == services["grafana"]["profiles"] == ["monitoring"]


def bind_mounts(service: dict) -> dict[str, Path]:
    """Map each container path a service mounts from the repository to the repository path it comes from."""
    mounts = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            source, target = volume["source"], volume["target"]
        else:
            source, target = volume.split(":")[:2]
        if source.startswith("."):
            mounts[target] = (REPO / source).resolve()
    return mounts


def test_monitoring_profile_mounts_files_that_exist_and_agree() -> None:
    services = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]
    monitoring = {name: s for name, s in services.items() if "monitoring" in s.get("profiles", [])}
    assert set(monitoring) == {"prometheus", "grafana"}
    for name, service in monitoring.items():
        mounts = bind_mounts(service)
        assert mounts, f"{name} mounts nothing from deploy/"
        for target, source in mounts.items():
            assert source.exists(), f"{name} mounts {source.relative_to(REPO)} at {target}, which is not in the repo"
            assert source.is_relative_to(REPO / "deploy"), f"{name}: monitoring files live in deploy/, not {source}"
    # Prometheus scrapes the api service on the port its command listens on.
    prometheus = yaml.safe_load(bind_mounts(services["prometheus"])["/etc/prometheus/prometheus.yml"].read_text())
    api_command = services["api"]["command"]
    api_target = f"api:{api_command[api_command.index('--port') + 1]}"
    targets = [target for job in prometheus["scrape_configs"] for c in job["static_configs"] for target in c["targets"]]
    assert targets == [api_target]
    # Grafana's datasource is that Prometheus, and its dashboard provider reads the folder mounted with relay.json.
    grafana = bind_mounts(services["grafana"])
    datasources = yaml.safe_load((grafana["/etc/grafana/provisioning/datasources"] / "prometheus.yml").read_text())
    assert [d["url"] for d in datasources["datasources"]] == ["http://prometheus:9090"]
    providers = yaml.safe_load((grafana["/etc/grafana/provisioning/dashboards"] / "relay.yml").read_text())
    [provider_path] = [p["options"]["path"] for p in providers["providers"]]
    assert (grafana[provider_path] / "relay.json").is_file()
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider_path}/relay.json"


@pytest.mark.parametrize(("where", "command"), relay_commands(), ids=[c[0] for c in relay_commands()])
def test_deployment_commands_exist_in_the_real_cli(where: str, command: list[str]) -> None:
    assert command[0] == "relay", where
    build_parser().parse_args(command[1:])  # every flag and value is accepted (argparse exits otherwise)
    subcommand = [part for part in command[1:] if not part.startswith("-")][:1]
    result = subprocess.run([sys.executable, "-m", "relay", *subcommand, "--help"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for flag in (part for part in command[1:] if part.startswith("--")):
        assert flag in result.stdout, f"{where}: {flag} is not in `relay {subcommand[0]} --help`"


def test_tenant_create_prints_one_json_object_with_a_working_key(conninfo: str, relay_stack: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "relay", "tenant", "create", "acme"],
        env=relay_env(conninfo), capture_output=True, text=True, cwd=REPO, check=True,
    )
    created = json.loads(result.stdout)
    assert set(created) == {"tenant_id", "api_key"}
    assert created["tenant_id"].startswith("ten_") and created["api_key"].startswith("rly_")
    response = httpx.get(f"{relay_stack}/v1/endpoints", headers={"Authorization": f"Bearer {created['api_key']}"})
    assert response.status_code == 200 and response.json() == {"data": [], "next_cursor": None}


def test_relay_dev_runs_on_embedded_postgres_and_delivers(tmp_path) -> None:
    """The README's quickstart: no DATABASE_URL, one command, a delivery arrives, Ctrl-C stops it all."""
    home = tmp_path / "relay-home"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith("RELAY_")}
    env["RELAY_HOME"] = str(home)
    port = free_port()
    dev = RelayProcess(["dev", "--port", str(port)], env, tmp_path / "dev.log")
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", dev, timeout=90)
        created = json.loads(
            subprocess.run([sys.executable, "-m", "relay", "tenant", "create", "dev"], env=env,
                           capture_output=True, text=True, cwd=REPO, check=True).stdout
        )
        headers = {"Authorization": f"Bearer {created['api_key']}"}
        with Receiver() as receiver, httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
            assert client.post("/v1/endpoints", json={"url": receiver.url()}).status_code == 201
            event = client.post("/v1/events", json={"type": "hello.world", "payload": {"hi": 1}}).json()
            wait_until(lambda: receiver.received(), what="the delivery", timeout=30)
            assert receiver.received()[0].headers["webhook-id"] == event["id"]

        def logged_attempts() -> int:
            psql = subprocess.run(
                [sys.executable, "-m", "relay", "psql", "-At", "-c", "select count(*) from relay.delivery_log"],
                env=env, capture_output=True, text=True, cwd=REPO,
            )
            assert psql.returncode == 0, psql.stderr
            return int(psql.stdout.strip())

        wait_until(lambda: logged_attempts() == 1, what="the attempt row, read with psql")
        assert (home / "pgdata" / "PG_VERSION").exists()
    finally:
        dev.proc.send_signal(signal.SIGINT)
        code = dev.proc.wait(60)
        log = dev.output()
        dev.stop()
    assert code == 0, log
    assert "relay.dev.stopped" in log
    assert "relay.dev.ssrf_relaxed" in log and "127.0.0.0/8" in log  # it says it delivers to local networks
    assert not (home / "pgdata" / "postmaster.pid").exists(), "the embedded PostgreSQL is still running"


def test_the_embedded_postgres_stops_after_a_killed_user_too(tmp_path) -> None:
    """A process using the embedded server killed with SIGKILL must not keep it running for ever after."""
    home = tmp_path / "relay-home"
    start = ("import sys, time; from pathlib import Path; from relay.embedded import embedded_url;"
             " embedded_url(Path(sys.argv[1])); print('up', flush=True); time.sleep(float(sys.argv[2]))")
    victim = subprocess.Popen([sys.executable, "-c", start, str(home), "600"], cwd=REPO, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert victim.stdout is not None and victim.stdout.readline().strip() == "up"
        assert (home / "pgdata" / "postmaster.pid").exists()
    finally:
        victim.kill()  # no atexit: it stays on the server's list of users
        victim.wait(30)
    postmaster = home / "pgdata" / "postmaster.pid"
    try:
        # The next user joins the running server and, leaving as the last live user, stops it.
        subprocess.run([sys.executable, "-c", start, str(home), "0"], cwd=REPO, check=True, timeout=120,
                       capture_output=True)
        assert not postmaster.exists(), "the embedded PostgreSQL is still running"
    finally:
        if postmaster.exists():  # the test failed: do not leave the server behind
            os.kill(int(postmaster.read_text().split()[0]), signal.SIGQUIT)


def test_the_embedded_postgres_checkpoints_rarely_and_has_a_buffer_cache_sized_to_the_machine(tmp_path) -> None:
    """The embedded server gets the WAL settings that keep checkpoints from firing every two minutes,
    and a buffer cache of a quarter of the machine's memory (128 MB to 1 GB), which takes a restart
    that its first start does by itself."""
    from relay.embedded import SETTINGS, shared_buffers_mb

    code = ("import sys, json, psycopg; from pathlib import Path; from relay.embedded import embedded_url, SETTINGS;"
            " url = embedded_url(Path(sys.argv[1]));"
            " c = psycopg.connect(url); names = [*SETTINGS, 'shared_buffers'];"
            " print(json.dumps({n: c.execute('SHOW ' + n).fetchone()[0] for n in names}))")
    shown = json.loads(subprocess.run([sys.executable, "-c", code, str(tmp_path / "relay-home")], cwd=REPO,
                                      check=True, timeout=120, capture_output=True, text=True).stdout)
    buffers = shown.pop("shared_buffers")
    assert shown == SETTINGS == {"max_wal_size": "8GB", "checkpoint_timeout": "15min"}
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    expected = shared_buffers_mb()
    assert 128 <= expected <= 1024
    assert buffers == (f"{expected // 1024}GB" if expected % 1024 == 0 else f"{expected}MB")
    assert buffers != "128MB" or memory < 600 * 2**20, "the buffer cache kept PostgreSQL's default"
    assert not (tmp_path / "relay-home" / "pgdata" / "postmaster.pid").exists()


def test_an_embedded_postgres_that_cannot_have_its_buffer_cache_starts_with_the_default(tmp_path) -> None:
    """A memory limit Relay cannot see must not leave `relay dev` without a database: the server
    starts with PostgreSQL's default buffer cache, and says so."""
    if Path("/proc/sys/vm/overcommit_memory").read_text().strip() == "1":
        pytest.skip("this kernel maps any amount of memory (vm.overcommit_memory = 1): nothing makes the start fail")
    code = ("import sys, psycopg; from pathlib import Path; import relay.embedded as e;"
            " e.shared_buffers_mb = lambda: 2 * 2**20;"  # 2 TB: more shared memory than this machine can map
            " url = e.embedded_url(Path(sys.argv[1]));"
            " print(psycopg.connect(url).execute('SHOW shared_buffers').fetchone()[0])")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "relay-home")], cwd=REPO, check=True,
                          timeout=120, capture_output=True, text=True)
    assert done.stdout.strip().splitlines()[-1] == "128MB"
    assert "embedded.shared_buffers_refused" in done.stdout + done.stderr
    assert not (tmp_path / "relay-home" / "pgdata" / "postmaster.pid").exists()
