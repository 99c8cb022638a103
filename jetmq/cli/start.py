"""jet-start: start a jetmq cluster (a master that forks its members), or join one.

Usage:
  jet-start [options]
  jet-start -h | --help
  jet-start --version

With --join, one member starts and joins a running master, on this host or another;
the options of a master (--members, --port, --scale-up-delay-ms, --snapshot-dir) do
not apply to it. A member binds its data socket on --bind (default: the address of
the interface that reaches the master) and tells its peers --advertise (default: the
bound address; when bound to 0.0.0.0, the interface that reaches the master, or for
the members a master forks, this host's first non-loopback address).

Options:
  -m N, --members N           Members to fork (default: the number of CPUs, at least 2).
  --port P                    The master's control port; 0 picks a free one [default: 5701].
  --bind ADDR                 The address to bind (a master's default: 127.0.0.1).
  --advertise HOST            The address peers reach this host's members at (see above).
  --data-dir DIR              Job state, snapshots, logs and the pid file; with --join, the
                              member's logs (default: $XDG_STATE_HOME/jetmq/<cluster-name>).
  --no-respawn                Do not replace forked members that die (Jet's behaviour: a lost
                              member stays lost). By default a replacement is forked, after a backoff.
  --no-auth                   Run without the cluster key: no authentication, no encryption. Only
                              with a loopback --bind (anyone who reaches the port could run code).
  --key-file FILE             With --join: the cluster key (default: $JET_KEY_FILE, else the
                              default data dir's cluster.key). A master makes <data-dir>/cluster.key.
  --snapshot-dir DIR          The snapshot store, a directory every host mounts (e.g. NFS), where
                              members write and read snapshots themselves (default:
                              <data-dir>/snapshots; members that cannot reach it send their
                              files through the master's store service).
  --cluster-name NAME         The cluster's name; members of another name are refused [default: jet].
  --daemon                    Detach, and return once the cluster (or the joining member) is ready.
  --join HOST:PORT            Start one member that joins the master at HOST:PORT.
  --log-file FILE             With --join: where the member logs (default: <data-dir>/logs/
                              member-<uuid8>.log with --data-dir, else stderr).
  --scale-up-delay-ms MS      Delay before jobs scale up onto a new member [default: 10000].
  --heartbeat-interval-ms MS  How often members and master heartbeat [default: 500].
  --heartbeat-timeout-ms MS   Silence after which a peer counts as gone [default: 3000].
  --job-nice N                How much nicer (lower priority) than its I/O threads and the master a
                              member runs the thread that runs its jobs, 0-19 [default: 10].
  --job-result-ttl-s S        How long finished jobs stay listed [default: 604800].
  --metrics-collection-interval S
                              How often members report the metrics of their jobs, in seconds
                              (fractions allowed) [default: 5].
  --max-job-results N         How many finished jobs stay listed at most [default: 1000].
  --web-port P                The HTTP port of the dashboard, its JSON API and Prometheus's /metrics;
                              0: none (default: 5780, and when that is taken, a warning and none).
  --web-bind ADDR             The address the HTTP server binds [default: 127.0.0.1]; on any other
                              than a loopback one, every request needs the cluster key's token.
  --ready-fd FD               (internal) Write "READY <address>" or "ERROR <message>" to this fd.
  -h, --help                  Show this help.
  --version                   Show the version.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid as uuidlib
from pathlib import Path


from jetmq.version import __version__
from jetmq.cli.common import parse_args, RET_OK, fail
from jetmq.config import (DEFAULT_BIND_HOST, ClusterConfig, MemberConfig, check_cluster_name, check_job_nice,
                          default_data_dir, default_member_count, parse_address)
from jetmq.embedded import START_TIMEOUT_S, read_ready_line
from jetmq import clusterkey
from jetmq.errors import ClusterKeyError, ClusterStartError
from jetmq.logs import configure_logging
from jetmq.master.server import SHUTDOWN_LINGER_MS, MasterServer
from jetmq.netaddr import is_loopback, route_source_address
from jetmq.member.runtime import MemberRuntime
from jetmq.transport import context, tcp_endpoint
from jetmq.transport.security import ZapHandler
from jetmq.web.master import MasterWeb, WebStartError, read_url


def _int(args: dict, option: str) -> int:
    try:
        return int(args[option])
    except ValueError:
        raise SystemExit(fail(f"{option} takes a whole number, not '{args[option]}'", code=2)) from None


def _interval_ms(args: dict, option: str) -> int:
    """A positive number of seconds (fractions allowed), in whole milliseconds."""
    try:
        seconds = float(args[option])
    except ValueError:
        seconds = float("nan")
    if not seconds >= 0.001 or seconds == float("inf"):
        raise SystemExit(fail(f"{option} takes a positive number of seconds, not '{args[option]}'", code=2))
    return round(seconds * 1000)


def _ready_reporter(fd_text: str | None):
    """Callbacks that write the READY/ERROR line to the readiness fd, once."""
    fd = int(fd_text) if fd_text is not None else None

    def report(line: str) -> None:
        nonlocal fd
        if fd is not None:
            os.write(fd, (line + "\n").encode())
            os.close(fd)
            fd = None

    return (lambda address: report(f"READY {address}")), (lambda message: report(f"ERROR {message}"))


def _daemonize(argv: list[str], log_path: Path) -> tuple[str, int]:
    """Run this command detached, without --daemon; (address, pid) once it is ready.

    Raises ClusterStartError with the detached process's own words when it fails.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    read_fd, write_fd = os.pipe()
    command = [sys.executable, "-m", "jetmq.cli.start", *[a for a in argv if a != "--daemon"],
               "--ready-fd", str(write_fd)]
    with open(log_path, "ab") as out:
        process = subprocess.Popen(command, pass_fds=(write_fd,), stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    os.close(write_fd)
    try:
        address = read_ready_line(read_fd, process, START_TIMEOUT_S + 10, log_path)
    except ClusterStartError:
        if process.poll() is None:
            process.kill()
        raise
    return address, process.pid


def start_master(args: dict, argv: list[str]) -> int:
    members = _int(args, "--members") if args["--members"] is not None else default_member_count()
    try:
        config = ClusterConfig(
            cluster_name=args["--cluster-name"], bind_host=args["--bind"] or DEFAULT_BIND_HOST,
            port=_int(args, "--port"), advertise_host=args["--advertise"],
            member_count=members, data_dir=Path(args["--data-dir"]) if args["--data-dir"] else None,
            snapshot_dir=Path(args["--snapshot-dir"]) if args["--snapshot-dir"] else None,
            no_auth=bool(args["--no-auth"]), respawn=not args["--no-respawn"],
            heartbeat_interval_ms=_int(args, "--heartbeat-interval-ms"),
            heartbeat_timeout_ms=_int(args, "--heartbeat-timeout-ms"),
            scale_up_delay_ms=_int(args, "--scale-up-delay-ms"),
            job_result_ttl_ms=_int(args, "--job-result-ttl-s") * 1000,
            max_job_results=_int(args, "--max-job-results"),
            metrics_collection_interval_ms=_interval_ms(args, "--metrics-collection-interval"),
            web_port=_int(args, "--web-port") if args["--web-port"] is not None else None,
            web_bind=args["--web-bind"], job_nice=_int(args, "--job-nice"))
    except ValueError as e:
        return fail(str(e), code=2)
    data_dir = config.resolved_data_dir
    if args["--daemon"]:
        started = time.time() - 1
        try:
            address, pid = _daemonize(argv, data_dir / "logs" / "master.out")
        except ClusterStartError as e:
            return fail(str(e))
        print(f"jetmq cluster '{config.cluster_name}' is ready at {address}: master pid {pid}, "
              f"{members} members, data dir {data_dir}")
        if (url := read_url(data_dir, since=started)) is not None:
            print(f"dashboard and /metrics at {url}")
        return RET_OK
    on_ready, on_failure = _ready_reporter(args["--ready-fd"])
    configure_logging("master", stream=sys.stderr if args["--ready-fd"] is None else None,
                      path=data_dir / "logs" / "master.log")
    try:
        web = MasterWeb.bind(config)
    except WebStartError as e:
        on_failure(str(e))
        return fail(str(e)) if args["--ready-fd"] is None else 1

    def ready(address: str) -> None:
        url = web.serve(address, config) if web is not None else None
        on_ready(address)
        if args["--ready-fd"] is None:
            print(f"jetmq cluster '{config.cluster_name}' is ready at {address}: master pid {os.getpid()}, "
                  f"{members} members, data dir {data_dir} (Ctrl-C stops it)", flush=True)
            if url is not None:
                print(f"dashboard and /metrics at {url}", flush=True)

    server = MasterServer(config, on_ready=ready, on_failure=on_failure)
    code = server.run()
    if web is not None:
        web.stop()  # before the sockets' context goes: its requests use a socket of that context
    ZapHandler.stop()
    # sockets close with a linger, but it holds only while the context terminates: without
    # this the process exits with its last StopClusterReply and Shutdowns still queued
    context().destroy(linger=SHUTDOWN_LINGER_MS)
    if code != RET_OK and args["--ready-fd"] is None:
        fail(server.failure or "the master failed; see its log")
    return code


def start_member(args: dict, argv: list[str]) -> int:
    try:
        host, port = parse_address(args["--join"])
        check_cluster_name(args["--cluster-name"])
        job_nice = check_job_nice(_int(args, "--job-nice"))
    except ValueError as e:
        return fail(str(e), code=2)
    data_dir = Path(args["--data-dir"]) if args["--data-dir"] else None
    member_uuid = str(uuidlib.uuid4())
    log_file = (Path(args["--log-file"]) if args["--log-file"] else
                data_dir / "logs" / f"member-{member_uuid[:8]}.log" if data_dir is not None else None)
    if args["--daemon"]:
        if args["--log-file"]:
            member_log = out = Path(args["--log-file"])
        elif data_dir is not None:  # the detached member logs to member-<uuid8>.log there, itself
            member_log, out = data_dir / "logs" / "member-*.log", data_dir / "logs" / "joined-member.out"
        else:
            member_log = out = default_data_dir(args["--cluster-name"]) / "logs" / f"joined-member-{os.getpid()}.log"
        try:
            _, pid = _daemonize(argv, out)
        except ClusterStartError as e:
            return fail(str(e))
        print(f"jetmq member (pid {pid}) joined the cluster at {host}:{port}; log {member_log}")
        return RET_OK
    try:  # the key must be there and be one; its path (never the key) travels on
        key_path = clusterkey.find(args["--key-file"], args["--cluster-name"])
        if key_path is not None:
            clusterkey.load(key_path)
    except ClusterKeyError as e:
        return fail(str(e))
    # by default a joined member binds (and advertises) the interface its traffic to the master leaves from
    bind = args["--bind"] or (route_source_address(host, port) if not is_loopback(host) else DEFAULT_BIND_HOST)
    config = MemberConfig(
        master_endpoint=tcp_endpoint(host, port), uuid=member_uuid, forked=False,
        cluster_name=args["--cluster-name"], bind_host=bind, advertise_host=args["--advertise"],
        key_file=str(key_path) if key_path is not None else None,
        heartbeat_interval_ms=_int(args, "--heartbeat-interval-ms"),
        heartbeat_timeout_ms=_int(args, "--heartbeat-timeout-ms"), job_nice=job_nice)
    configure_logging(f"member-{config.uuid[:8]}", stream=sys.stderr if log_file is None else None, path=log_file)
    on_ready, on_failure = _ready_reporter(args["--ready-fd"])
    runtime = MemberRuntime(config, on_joined=lambda: on_ready(f"{host}:{port}"))
    code = runtime.run()
    if runtime.refusal is not None:
        on_failure(f"the master refused this member: {runtime.refusal}")
        if log_file is not None:  # else the log on stderr said it already
            fail(f"the master refused this member: {runtime.refusal}")
    return code


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(__doc__, argv, f"jetmq {__version__}")
    if args["--join"]:
        return start_member(args, argv)
    return start_master(args, argv)


if __name__ == "__main__":
    sys.exit(main())
